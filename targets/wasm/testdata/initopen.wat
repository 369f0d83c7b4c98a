;; initopen: a reactor whose _initialize tries to open /etc/passwd (a
;; purity violation at deploy, which snapshot mode must refuse); its
;; handler answers nothing.
(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/etc/passwd")
  (func (export "_initialize")
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 11) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 64))))
  (func (export "purify_handle")))
