;; scan_data_drop: data.drop (0xfc 0x09) in function 1, after a memory.init
;; of the same passive segment (which alone would not be reported).
(module
  (import "env" "f" (func))
  (memory 1)
  (data $d "abc")
  (func
    (memory.init $d (i32.const 0) (i32.const 0) (i32.const 3))
    (data.drop $d)))
