;; snap-shared: a shared memory (threads), which a snapshot refuses.
(module
  (memory 1 2 shared))
