package wasm

import "fmt"

// Module shape check (RATIONALE.md, "Deployed bytes are checked before
// wazero reads them").
//
// wazero's decoder sizes its slices and maps from the counts a module
// declares before it reads what they count: a 63-byte module that
// declares 2^28 functions in its code section makes it allocate 13 GB and
// the process dies ("fatal error: runtime: out of memory", which no
// recover catches), and one local declaration of 2^32-1 locals makes it
// allocate 4 GB and append a byte 4 billion times. checkModuleShape walks
// the sections the way that decoder does and refuses a module whose
// declared counts and lengths claim more than its bytes can hold (each
// element takes at least so many bytes), whose functions declare more
// locals than browsers allow, or whose tables start larger than an
// instance should allocate. It is a bound on what decoding may cost, not
// a validator: what it lets through, wazero validates.

// maxLocals bounds the locals of one function; 50,000 is the limit of
// the browsers' engines (V8's kV8MaxWasmFunctionLocals), so no module
// built for the web exceeds it.
const maxLocals = 50000

// maxTableElems bounds a table's initial size: wazero allocates 8 bytes
// per element at every instantiation, and allows 2^27 (1 GiB).
const maxTableElems = 1 << 20

// checkModuleShape returns nil or an error wrapping ErrBadModule.
func checkModuleShape(m []byte) error {
	if len(m) < 8 {
		return nil // the compiler says what is wrong
	}
	r := &shapeReader{b: m, i: 8}
	for r.err == nil && r.left() > 0 {
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			break
		}
		if int64(size) > int64(r.left()) {
			r.failf("section %d declares %d bytes, %d remain", id, size, r.left())
			break
		}
		s := &shapeReader{b: m[:r.i+int(size)], i: r.i, sec: id}
		s.section()
		r.i += int(size)
		r.err = s.err
	}
	if r.err != nil {
		return fmt.Errorf("%w: %v", ErrBadModule, r.err)
	}
	return nil
}

// shapeReader is checkModuleShape's reader: sec names the section in its
// errors, whose offsets are in decimal.
type shapeReader = reader

// leb skips a signed or unsigned LEB128 integer of at most n bytes (its
// range is the decoder's to check).
func (r *shapeReader) leb(n int) {
	for k := 0; k < n; k++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.failf("section %d: integer longer than %d bytes at %d", r.sec, n, r.i)
}

// count reads a vector's length and refuses one whose elements, of at
// least minBytes each, cannot fit in what is left.
func (r *shapeReader) count(what string, minBytes int) uint32 {
	n := r.u32()
	if r.err == nil && int64(n)*int64(minBytes) > int64(r.left()) {
		r.failf("section %d: %d %s declared at byte %d, in the %d bytes left", r.sec, n, what, r.i, r.left())
		return 0
	}
	return n
}

func (r *shapeReader) name() { r.skip(r.count("bytes of a name", 1)) }

// valType reads a value type: one byte, or a reference prefix and a heap
// type (a signed 33-bit LEB128).
func (r *shapeReader) valType() {
	if b := r.byte(); b == 0x63 || b == 0x64 {
		r.leb(5)
	}
}

func (r *shapeReader) limits() (min uint32, max uint32, hasMax bool) {
	flags := r.byte()
	min = r.u32()
	if flags&1 != 0 {
		max, hasMax = r.u32(), true
	}
	return min, max, hasMax
}

func (r *shapeReader) tableType() {
	r.valType()
	if min, _, _ := r.limits(); min > maxTableElems {
		r.failf("a table of %d elements at its start; at most %d", min, maxTableElems)
	}
}

// constExpr skips a constant expression up to its end (0x0b), decoding
// each instruction's immediates, since they may hold the byte 0x0b.
func (r *shapeReader) constExpr() {
	for r.err == nil {
		switch op := r.byte(); op {
		case 0x0b: // end
			return
		case 0x41: // i32.const
			r.leb(5)
		case 0x42: // i64.const
			r.leb(10)
		case 0x43: // f32.const
			r.skip(4)
		case 0x44: // f64.const
			r.skip(8)
		case 0x23, 0xd2: // global.get, ref.func
			r.u32()
		case 0xd0: // ref.null heaptype
			r.leb(5)
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constants: add, sub, mul
		case 0xfd: // v128.const
			if r.u32() != 12 {
				r.failf("section %d: not a constant instruction at %d", r.sec, r.i)
			}
			r.skip(16)
		default:
			r.failf("section %d: not a constant instruction %#x at %d", r.sec, op, r.i-1)
		}
	}
}

func (r *shapeReader) funcType() {
	if b := r.byte(); b != 0x60 {
		r.failf("section 1: type form %#x", b)
		return
	}
	for range 2 { // parameters, results
		for n := r.count("value types", 1); n > 0 && r.err == nil; n-- {
			r.valType()
		}
	}
}

// section checks the section r spans, of id r.sec.
func (r *shapeReader) section() {
	switch r.sec {
	case 0: // custom
		n := r.count("bytes of a name", 1)
		start := r.i
		r.skip(n)
		if r.err == nil && string(r.b[start:r.i]) == "name" {
			r.nameSection()
		}
	case 1: // type
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			if r.left() > 0 && r.b[r.i] == 0x4e { // a recursive group
				r.byte()
				for k := r.count("types of a group", 3); k > 0 && r.err == nil; k-- {
					r.funcType()
				}
				continue
			}
			r.funcType()
		}
	case 2: // import
		for n := r.count("imports", 4); n > 0 && r.err == nil; n-- {
			r.name()
			r.name()
			switch kind := r.byte(); kind {
			case 0: // function
				r.u32()
			case 1:
				r.tableType()
			case 2:
				r.limits()
			case 3: // global
				r.valType()
				r.byte()
			case 4: // tag
				r.byte()
				r.u32()
			default:
				r.failf("import kind %#x", kind)
			}
		}
	case 3: // function
		r.count("functions", 1)
	case 4: // table
		for n := r.count("tables", 3); n > 0 && r.err == nil; n-- {
			if r.left() > 0 && r.b[r.i] == 0x40 { // with an initialiser
				r.byte()
				r.byte()
				r.tableType()
				r.constExpr()
				continue
			}
			r.tableType()
		}
	case 6: // global
		for n := r.count("globals", 3); n > 0 && r.err == nil; n-- {
			r.valType()
			r.byte()
			r.constExpr()
		}
	case 7: // export
		for n := r.count("exports", 3); n > 0 && r.err == nil; n-- {
			r.name()
			r.byte()
			r.u32()
		}
	case 9: // element
		for n := r.count("element segments", 3); n > 0 && r.err == nil; n-- {
			r.elementSegment()
		}
	case 10: // code
		for n := r.count("function bodies", 3); n > 0 && r.err == nil; n-- {
			size := r.u32()
			body := &shapeReader{b: r.b, i: r.i, sec: r.sec}
			r.skip(size)
			if r.err != nil {
				return
			}
			body.b = body.b[:r.i]
			total := 0
			for k := body.count("local declarations", 2); k > 0 && body.err == nil; k-- {
				total += int(body.u32())
				body.valType()
				if total > maxLocals {
					body.failf("a function declares more than %d locals", maxLocals)
				}
			}
			r.err = body.err
		}
	case 11: // data
		for n := r.count("data segments", 2); n > 0 && r.err == nil; n-- {
			switch flags := r.u32(); flags {
			case 0:
				r.constExpr()
			case 1:
			case 2:
				r.u32()
				r.constExpr()
			default:
				r.failf("data segment flags %d", flags)
			}
			r.skip(r.count("bytes of a data segment", 1))
		}
	case 13: // tag
		r.count("tags", 2)
	}
}

func (r *shapeReader) elementSegment() {
	flags := r.u32()
	if flags > 7 {
		r.failf("element segment flags %d", flags)
		return
	}
	if flags&2 != 0 && flags&1 == 0 { // an explicit table index
		r.u32()
	}
	if flags&1 == 0 { // active: an offset
		r.constExpr()
	}
	if flags&3 != 0 { // an element kind (indices) or reference type (expressions)
		if flags&4 != 0 {
			r.valType()
		} else {
			r.byte()
		}
	}
	if flags&4 != 0 {
		for n := r.count("element expressions", 2); n > 0 && r.err == nil; n-- {
			r.constExpr()
		}
		return
	}
	for n := r.count("element indices", 1); n > 0 && r.err == nil; n-- {
		r.u32()
	}
}

// nameSection checks the "name" custom section's function and local name
// maps, which wazero decodes and sizes from their counts.
func (r *shapeReader) nameSection() {
	for r.err == nil && r.left() > 0 {
		id := r.byte()
		size := r.u32()
		sub := &shapeReader{b: r.b, i: r.i, sec: r.sec}
		r.skip(size)
		if r.err != nil {
			return
		}
		sub.b = sub.b[:r.i]
		switch id {
		case 1: // function names
			for n := sub.count("function names", 2); n > 0 && sub.err == nil; n-- {
				sub.u32()
				sub.name()
			}
		case 2: // local names
			for n := sub.count("functions with local names", 2); n > 0 && sub.err == nil; n-- {
				sub.u32()
				for k := sub.count("local names", 2); k > 0 && sub.err == nil; k-- {
					sub.u32()
					sub.name()
				}
			}
		}
		r.err = sub.err
	}
}
