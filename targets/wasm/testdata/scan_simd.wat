;; scan_simd: a SIMD instruction (v128.const, 0xfd 0x0c) in function 1, which
;; the decoder does not know and so reports as unknown.
(module
  (func)
  (func (result i32)
    (i32x4.extract_lane 0 (v128.const i32x4 1 2 3 4))))
