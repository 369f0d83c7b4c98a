;; scan_table_set: table.set (0x26) in function 2, the imported function
;; counted, after an i32.const 38 (0x41 0x26) in the same function that is
;; not one; instanceStateOutsideMemory must report the table.set at its own
;; byte.
(module
  (import "env" "f" (func))
  (table 1 funcref)
  (func (result i32) (i32.const 38))
  (func
    (drop (i32.const 38))
    (table.set 0 (i32.const 0) (ref.null func))))
