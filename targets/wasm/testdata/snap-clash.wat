;; snap-clash: already exports a name beginning with the prefix of the
;; names exportGlobals adds, which it refuses.
(module
  (global (mut i32) (i32.const 0))
  (func (export "purify.snapshot.global.0")))
