;; scan_table_fill: table.fill (0xfc 0x11) in function 1, after an
;; i32.const 2300 (0x41 0xfc 0x11) that is not one.
(module
  (table 1 funcref)
  (func)
  (func
    (table.fill 0 (i32.const 2300) (ref.null func) (i32.const 0))))
