;; snap-importmut: imports a mutable global, which a snapshot refuses (the
;; host's to change).
(module
  (import "env" "counter" (global (mut i32)))
  (memory 1))
