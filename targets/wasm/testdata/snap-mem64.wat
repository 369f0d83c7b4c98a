;; snap-mem64: a 64-bit memory (memory64), which a snapshot refuses.
(module
  (memory i64 1))
