;; scan_memory_init: memory.init (0xfc 0x08) of a passive data segment, which
;; only reads it: nothing in the module can drop it, so it is not reported.
;; 7 instructions (wasm-objdump -d).
(module
  (memory 1)
  (data $d "abc")
  (func (export "init")
    (memory.init $d (i32.const 0) (i32.const 0) (i32.const 3))
    (drop (i32.const 38))))
