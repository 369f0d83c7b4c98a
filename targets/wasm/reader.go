package wasm

import "fmt"

// reader reads a module's bytes up to len(b), at offsets in the whole
// module, for checkModuleShape (as shapeReader) and the code scan (in
// codeReader). The first error stops it: it is kept in err, and the
// reader moves to the end, so every later read fails at once and returns
// zero.
//
// Each of its users words the errors of these reads its own way, as its
// callers and tests expect: checkModuleShape's begin "section sec: " and
// give offsets in decimal; the code scan's (hex set) give them in hex.
type reader struct {
	b   []byte
	i   int
	err error
	sec byte // the section read, named in checkModuleShape's errors
	hex bool // the code scan's wording
}

func (r *reader) failf(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
	r.i = len(r.b)
}

// readFailf records a read that failed, worded as shape (after the
// section) or as hex says, both given args.
func (r *reader) readFailf(shape, hex string, args ...any) {
	if r.hex {
		r.failf(hex, args...)
		return
	}
	r.failf("section %d: "+shape, append([]any{r.sec}, args...)...)
}

func (r *reader) left() int { return len(r.b) - r.i }

func (r *reader) byte() byte {
	if r.i >= len(r.b) {
		r.readFailf("unexpected end at byte %d", "unexpected end at byte %#x", r.i)
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *reader) u32() uint32 {
	if r.i < len(r.b) && r.b[r.i] < 0x80 { // most immediates are one byte
		r.i++
		return uint32(r.b[r.i-1])
	}
	if r.hex && r.i >= len(r.b) { // checkModuleShape's says "bad u32" here
		return uint32(r.byte()) // fails as an unexpected end
	}
	v, next, err := readU32(r.b, r.i)
	if err != nil {
		r.readFailf("%v", "%v", err)
		return 0
	}
	r.i = next
	return v
}

func (r *reader) skip(n uint32) {
	if int64(n) > int64(r.left()) {
		r.readFailf("%d bytes declared at %d, %d remain", "%d bytes at byte %#x, %d remain", n, r.i, r.left())
		return
	}
	r.i += int(n)
}
