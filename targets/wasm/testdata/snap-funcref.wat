;; snap-funcref: a mutable funcref global, which a snapshot refuses (no
;; constant can hold a reference taken at run time).
(module
  (global (mut funcref) (ref.null func)))
