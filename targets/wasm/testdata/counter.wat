;; counter: a reactor for the snapshot tests. A counter in memory (at 1024)
;; starts at 40 and a mutable i64 global at 999; _initialize adds one to
;; each (so they read 41 and 1000 only if it ran exactly once), and reads 8
;; bytes of random_get and the monotonic clock into memory (what a
;; snapshot freezes). purify_handle adds one to both counters and answers
;; "memory=M global=G random=R clock=C\n": in snapshot mode every request
;; prints memory=42 global=1001, in warm mode they count up. clock is the
;; handler's own clock reading minus the one _initialize made. A body
;; starting with "t" traps after counting (so the next request must start
;; pristine again), one starting with "l" loops forever (a timeout), "g"
;; grows the memory by a page and "c" closes stderr (each leaves state a
;; reset in place cannot undo, so the instance must not be kept).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i64) (i64.const 999))
  (data (i32.const 0) "Content-Type: text/plain\r\n\r\n")
  (data (i32.const 1024) "\28\00\00\00")
  ;; 1024: counter (i32); 1032: random (i64); 1040: init clock (i64);
  ;; 1048: handler clock (i64); 2048..: the answer; 64: iovec; 80: nwritten.
  (func (export "_initialize")
    (i32.store (i32.const 1024) (i32.add (i32.load (i32.const 1024)) (i32.const 1)))
    (global.set $g (i64.add (global.get $g) (i64.const 1)))
    (drop (call $random_get (i32.const 1032) (i32.const 8)))
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 1040))))
  ;; $put appends text [p, p+n) at *$at; $num appends v in decimal.
  (global $at (mut i32) (i32.const 2048))
  (func $put (param $p i32) (param $n i32)
    (memory.copy (global.get $at) (local.get $p) (local.get $n))
    (global.set $at (i32.add (global.get $at) (local.get $n))))
  (func $num (param $v i64)
    (local $buf i32) (local $len i32)
    ;; digits backwards into 3000..3020, then copied
    (local.set $buf (i32.const 3020))
    (loop $digit
      (local.set $buf (i32.sub (local.get $buf) (i32.const 1)))
      (i64.store8 (local.get $buf) (i64.add (i64.const 48) (i64.rem_u (local.get $v) (i64.const 10))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0))))
    (call $put (local.get $buf) (i32.sub (i32.const 3020) (local.get $buf))))
  (data (i32.const 512) "memory= global= random= clock=\n")
  (func (export "purify_handle")
    (i32.store (i32.const 1024) (i32.add (i32.load (i32.const 1024)) (i32.const 1)))
    (global.set $g (i64.add (global.get $g) (i64.const 1)))
    ;; the body's first byte, at 1056 (zero when empty)
    (i32.store8 (i32.const 1056) (i32.const 0))
    (i32.store (i32.const 64) (i32.const 1056))
    (i32.store (i32.const 68) (i32.const 1))
    (drop (call $fd_read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 80)))
    (if (i32.eq (i32.load8_u (i32.const 1056)) (i32.const 116)) (then unreachable))
    (if (i32.eq (i32.load8_u (i32.const 1056)) (i32.const 108)) (then (loop $forever (br $forever))))
    (if (i32.eq (i32.load8_u (i32.const 1056)) (i32.const 103)) (then (drop (memory.grow (i32.const 1)))))
    (if (i32.eq (i32.load8_u (i32.const 1056)) (i32.const 99)) (then (drop (call $fd_close (i32.const 2)))))
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 1048)))
    (global.set $at (i32.const 2048))
    (call $put (i32.const 0) (i32.const 28))
    (call $put (i32.const 512) (i32.const 7))
    (call $num (i64.extend_i32_u (i32.load (i32.const 1024))))
    (call $put (i32.const 519) (i32.const 8))
    (call $num (global.get $g))
    (call $put (i32.const 527) (i32.const 8))
    (call $num (i64.load (i32.const 1032)))
    (call $put (i32.const 535) (i32.const 7))
    (call $num (i64.sub (i64.load (i32.const 1048)) (i64.load (i32.const 1040))))
    (call $put (i32.const 542) (i32.const 1))
    (i32.store (i32.const 64) (i32.const 2048))
    (i32.store (i32.const 68) (i32.sub (global.get $at) (i32.const 2048)))
    (drop (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 80)))))
