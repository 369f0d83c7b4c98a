;; snap-env: the "env" module that snap-globals imports its immutable
;; global "base" from (the snapshot rewrites' tests instantiate it first).
(module
  (global (export "base") i32 (i32.const 4096)))
