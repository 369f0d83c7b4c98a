;; echo: answers text/plain with the request body; a command and a warm handler.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "Content-Type: text/plain\r\n\r\n")
  ;; iovec at 64: {ptr,len}; nread/nwritten at 80; body buffer from 1024
  (func $echo
    (local $n i32)
    (i32.store (i32.const 64) (i32.const 0))
    (i32.store (i32.const 68) (i32.const 28))
    (drop (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 80)))
    (block $done
      (loop $more
        (i32.store (i32.const 64) (i32.const 1024))
        (i32.store (i32.const 68) (i32.const 64512))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 80)))
        (local.set $n (i32.load (i32.const 80)))
        (br_if $done (i32.eqz (local.get $n)))
        (i32.store (i32.const 68) (local.get $n))
        (drop (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 80)))
        (br $more))))
  (func (export "_start") (call $echo))
  (func (export "purify_handle") (call $echo)))
