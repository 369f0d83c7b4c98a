;; scan_export_table: a table the module exports, so that the host (or a
;; module linked to it) may change it; no instruction changes it.
(module
  (table (export "tab") 1 funcref)
  (func))
