;; snaptable: a reactor whose handler writes its table (table.set): state
;; outside memory and globals, so snapshot mode must not reset its
;; instances in place (it makes a fresh one for every request instead).
(module
  (table 2 funcref)
  (memory (export "memory") 1)
  (func $f)
  (elem declare func $f)
  (func (export "purify_handle")
    (table.set 0 (i32.const 1) (ref.func $f))))
