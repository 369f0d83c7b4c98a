;; sleep: sleeps an hour (poll_oneoff with one relative clock subscription),
;; then answers "awake"; a command and a warm handler. Impure, it waits on
;; the platform's sleeper, which its timeout cuts short; pure, it does not
;; wait at all (its clock is fake).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "Content-Type: text/plain\r\n\r\nawake")
  ;; subscription at 256 (48 bytes: userdata, tag 0 = clock, clock id at
  ;; +16, timeout at +24, precision, flags 0 = relative); event at 512;
  ;; nevents at 600; iovec at 64; nwritten at 80. The answer is written
  ;; after a loop header, which is where an interruptible guest notices
  ;; that its instance was closed under it (as computing code soon does).
  (func $sleep
    (i32.store (i32.const 272) (i32.const 1))
    (i64.store (i32.const 280) (i64.const 3600000000000))
    (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 600)))
    (call $answer))
  (func $answer
    (loop $check)
    (i32.store (i32.const 64) (i32.const 0))
    (i32.store (i32.const 68) (i32.const 33))
    (drop (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 80))))
  (func (export "_start") (call $sleep))
  (func (export "purify_handle") (call $sleep)))
