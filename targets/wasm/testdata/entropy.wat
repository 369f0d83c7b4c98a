;; entropy: reads its input, then answers 16 bytes of random_get and the
;; 8-byte realtime clock_time_get: what purity makes deterministic.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "Content-Type: text/plain\r\n\r\n")
  ;; iovec at 64: {ptr,len}; nread/nwritten at 80; input drained into 1024..
  (func (export "_start")
    (block $done
      (loop $more
        (i32.store (i32.const 64) (i32.const 1024))
        (i32.store (i32.const 68) (i32.const 4096))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 80)))
        (br_if $done (i32.eqz (i32.load (i32.const 80))))
        (br $more)))
    (drop (call $random_get (i32.const 28) (i32.const 16)))
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 44)))
    (i32.store (i32.const 64) (i32.const 0))
    (i32.store (i32.const 68) (i32.const 52))
    (drop (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 80)))))
