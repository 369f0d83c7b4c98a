;; scan_clean: a module whose code changes nothing but memory and globals,
;; for instanceStateOutsideMemory (codescan.go). Its immediates hold the
;; bytes of the instructions that would be reported (0x26 table.set; 0xfc
;; 0x0f table.grow, 0xfc 0x09 data.drop, 0xfc 0x0c table.init, 0xfc 0x11
;; table.fill), which a scan for opcode bytes would find and a decoder must
;; not; and it uses every kind of immediate the decoder reads (block types
;; empty, a value type and a type index; br_table; call_indirect; typed
;; select; memargs; constants of each type; 0xfc instructions that only
;; read a table or segment). 93 instructions (wasm-objdump -d).
(module
  (type $pair (func (param i32) (result i32 i32)))
  (import "env" "f" (func $imp (param i32)))
  (memory 1)
  (table $tab 2 funcref)
  (global $g (mut i32) (i32.const 0))
  (elem (i32.const 0) $a $b)
  (func $a (param $x i32) (result i32)
    (local $y i64) (local $f f32) (local $d f64)
    local.get $x
    i32.const 38            ;; 41 26: table.set's opcode as an immediate
    i32.add
    i64.const 2044          ;; 42 fc 0f: table.grow
    i64.const 1276          ;; 42 fc 09: data.drop
    i64.add
    i64.const -1            ;; 42 7f
    i64.const 0x7fffffffffffffff
    i64.mul
    i64.add
    local.set $y
    i32.const 1660          ;; 41 fc 0c: table.init
    i32.load offset=2044    ;; memarg offset fc 0f
    i32.load8_u offset=38   ;; memarg offset 26
    drop
    f32.const nan:0xffc     ;; 43 fc 0f 80 7f
    local.set $f
    f64.const 0x1.0fc26p+0  ;; 8 bytes
    local.set $d
    i32.const 2300          ;; 41 fc 11: table.fill
    global.set $g
    global.get $g
    i32.add)
  (func $b (param $x i32) (result i32)
    (block $out
      (block $one
        (block $zero
          (br_table $zero $one $out (local.get $x)))
        (return (i32.const 0)))
      (loop $l
        (br_if $l (i32.eqz (local.get $x)))))
    (if (result i32) (local.get $x)
      (then (i32.const 1))
      (else (i32.const 2))))
  (func $c (param $x i32) (result i32)
    (local.get $x)
    (block (type $pair) (param i32) (result i32 i32)
      (local.tee $x)
      (local.get $x))
    (i32.add)
    (call_indirect (type $pair) (i32.const 0) (i32.const 1))
    (drop)
    (select (result i32) (i32.const 3) (i32.const 4))
    (select (i32.const 5))
    (call $imp (i32.const 7))
    (drop (table.get $tab (i32.const 0)))
    (drop (table.size $tab))
    (drop (ref.is_null (ref.func $a)))
    (drop (ref.null extern))
    (drop (memory.grow (memory.size)))
    (drop (i32.trunc_sat_f32_s (f32.const 1.5)))
    (memory.copy (i32.const 0) (i32.const 8) (i32.const 4))
    (memory.fill (i32.const 0) (i32.const 0) (i32.const 4))
    (nop)
    (if (i32.const 0) (then (unreachable))))
)
