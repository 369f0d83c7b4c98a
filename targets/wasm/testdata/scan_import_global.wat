;; scan_import_global: a mutable global imported from the host, which the
;; host may change between requests.
(module
  (import "env" "g" (global (mut i32)))
  (func (result i32) (global.get 0)))
