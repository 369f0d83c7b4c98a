;; snap-importmem: imports its memory, which a snapshot refuses (the
;; contents are the host's).
(module
  (import "env" "memory" (memory 1))
  (global (mut i32) (i32.const 0)))
