;; snap-start: a memory with no data segments (so a rewrite with a memory
;; image adds a data section, before the "name" section of --debug-names),
;; no global, and a start function that writes 40 KiB apart (two runs of
;; bytes after the rewrite, mergeGap being 4 KiB) and counts its runs at 8.
(module
  (memory (export "memory") 2)
  (func $start
    (i32.store (i32.const 8) (i32.add (i32.load (i32.const 8)) (i32.const 1)))
    (i64.store (i32.const 40960) (i64.const 0x0102030405060708))
    (i32.store8 (i32.const 131071) (i32.const 255)))
  (start $start)
  (func (export "_initialize")))
