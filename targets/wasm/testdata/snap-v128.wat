;; snap-v128: a mutable v128 global, which a snapshot refuses (api.Global
;; reads only 64 of its bits).
(module
  (memory 1)
  (global (mut v128) (v128.const i64x2 1 2)))
