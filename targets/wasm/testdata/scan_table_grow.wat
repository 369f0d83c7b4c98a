;; scan_table_grow: table.grow (0xfc 0x0f) in function 3 (two imported
;; functions), after an i64.const 2044 (0x42 0xfc 0x0f) that is not one.
(module
  (import "env" "f" (func))
  (import "env" "g" (func))
  (table 1 funcref)
  (func)
  (func (result i32)
    (drop (i64.const 2044))
    (table.grow 0 (ref.null func) (i32.const 1))))
