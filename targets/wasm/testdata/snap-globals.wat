;; snap-globals: the snapshot rewrites' main module. It imports an
;; immutable global, defines a mutable and an immutable global of each
;; number type (and an immutable v128, which a snapshot leaves alone), a
;; memory of 1 page (at most 8), two active data segments, a passive one
;; with a data count, a table, a start function and _initialize. The start
;; function counts its runs at address 16, _initialize its runs at 20;
;; _initialize also grows the memory to 3 pages, writes at its end, copies
;; the passive segment to 70000 and sets every mutable global (an f32 NaN
;; with a payload, to check that raw bits survive). Assembled with
;; --debug-names, so a "name" custom section follows the data section.
(module
  (import "env" "base" (global $base i32))
  (type $ii (func (param i32) (result i32)))
  (memory (export "memory") 1 8)
  (table 2 funcref)
  (elem (i32.const 0) $double $triple)
  (global $gi32 (mut i32) (i32.const 1))
  (global $gi64 (mut i64) (i64.const 2))
  (global $gf32 (mut f32) (f32.const 3.5))
  (global $gf64 (mut f64) (f64.const 4.25))
  (global $ci32 i32 (global.get $base))
  (global $ci64 i64 (i64.const -5))
  (global $cf32 f32 (f32.const 6.5))
  (global $cf64 f64 (f64.const 7.75))
  (global $cv128 v128 (v128.const i32x4 1 2 3 4))
  (data $hello (i32.const 0) "hello")
  (data $p "passive bytes")
  (data $world (i32.const 100) "world")
  (func $double (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
  (func $triple (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))
  (func $start
    (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
    (global.set $gi32 (i32.add (global.get $gi32) (i32.const 10))))
  (start $start)
  (func (export "_initialize")
    (i32.store (i32.const 20) (i32.add (i32.load (i32.const 20)) (i32.const 1)))
    (drop (memory.grow (i32.const 2)))
    (i32.store (i32.const 196604) (i32.const 0xdeadbeef))
    (memory.init $p (i32.const 70000) (i32.const 0) (i32.const 13))
    (global.set $gi32 (i32.const -123456789))
    (global.set $gi64 (i64.const -81985529216486896))
    (global.set $gf32 (f32.const -nan:0x200001))
    (global.set $gf64 (f64.const -1.5e300)))
  ;; copies the passive segment to dst (kept by the rewrite)
  (func (export "init_p") (param $dst i32)
    (memory.init $p (local.get $dst) (i32.const 0) (i32.const 13)))
  ;; copies a byte of the first active segment: traps once it is dropped
  ;; (after instantiation), before and after the rewrite alike
  (func (export "init_hello")
    (memory.init $hello (i32.const 0) (i32.const 0) (i32.const 1)))
  ;; calls through the table: 0 doubles, 1 triples
  (func (export "call") (param $i i32) (param $x i32) (result i32)
    (call_indirect (type $ii) (local.get $x) (local.get $i)))
  ;; the immutable globals, for checking that they keep their initialisers
  (func (export "consts") (result i32 i64 f32 f64 i32)
    (global.get $ci32) (global.get $ci64) (global.get $cf32) (global.get $cf64)
    (i32x4.extract_lane 3 (global.get $cv128))))
