;; startloop: its start section never returns, so making an instance (a
;; cold request, a prewarmed pool's refill) loops until it is stopped.
(module
  (memory (export "memory") 1)
  (func $forever (loop $l (br $l)))
  (start $forever)
  (func (export "_start")))
