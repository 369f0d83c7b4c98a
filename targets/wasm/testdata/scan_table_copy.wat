;; scan_table_copy: table.copy (0xfc 0x0e) in function 0, nested in a block
;; and an if.
(module
  (table 2 funcref)
  (func (param i32)
    (block
      (if (local.get 0)
        (then (table.copy (i32.const 0) (i32.const 1) (i32.const 1)))))))
