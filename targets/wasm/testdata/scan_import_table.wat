;; scan_import_table: a table imported from the host, which the host may
;; change between requests; no instruction changes it.
(module
  (import "env" "tab" (table 1 funcref))
  (func))
