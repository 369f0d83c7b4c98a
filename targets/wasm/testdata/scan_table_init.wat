;; scan_table_init: table.init (0xfc 0x0c) of a passive element segment in
;; function 1.
(module
  (table 1 funcref)
  (elem $e func 0)
  (func)
  (func
    (table.init $e (i32.const 0) (i32.const 0) (i32.const 1))))
