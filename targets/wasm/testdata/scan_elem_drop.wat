;; scan_elem_drop: elem.drop (0xfc 0x0d) of a passive element segment in
;; function 2, the last instruction before the function's end.
(module
  (elem $e func 0)
  (func)
  (func)
  (func (elem.drop $e)))
