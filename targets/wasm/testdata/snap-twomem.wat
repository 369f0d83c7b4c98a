;; snap-twomem: two memories (multi-memory), which a snapshot refuses.
(module
  (memory 1)
  (memory 1))
