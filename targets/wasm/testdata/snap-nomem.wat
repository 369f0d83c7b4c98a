;; snap-nomem: no memory, no data and no export section: its start function
;; adds 1 to a mutable global and to a mutable i64 (so a start that ran
;; again after the rewrite shows), and it has an immutable global. The
;; export section exportGlobals adds goes before the start section.
(module
  (global $n (mut i32) (i32.const 41))
  (global $k i32 (i32.const 7))
  (global $w (mut i64) (i64.const -1))
  (func $start
    (global.set $n (i32.add (global.get $n) (global.get $k)))
    (global.set $w (i64.add (global.get $w) (i64.const 1))))
  (start $start))
