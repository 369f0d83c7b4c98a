package wasm

import "fmt"

// Code scan: may an instance change anything but its memory and globals?
//
// The snapshot mode keeps an instance and, between requests, puts its
// linear memory and mutable globals back as they were in a snapshot. That
// restores the whole instance only if nothing else in it can change: its
// tables (contents and size) and which of its data and element segments
// are dropped. The module's code decides that, so it is decoded, one
// instruction after another, as the specification's binary format says
// (https://webassembly.github.io/spec/core/binary/instructions.html): a
// scan for opcode bytes would find them inside other instructions'
// immediates (i32.const 38 is 0x41 0x26, and 0x26 is table.set) and could
// not tell them apart. Anything the decoder does not know, it reports
// too: what it cannot read, it has not proven harmless.

// instanceStateOutsideMemory decodes every function body in module m's code
// section and reports the first instruction that can change an instance's
// state other than its linear memory and globals, as "table.set in function
// 12 at byte 0x1234" (function index in the module's function index space,
// imports counted; byte offset in the module), or "" when there is none.
// Such instructions: table.set, table.fill, table.copy, table.grow,
// table.init, elem.drop, data.drop (memory.init is fine: it only reads a
// segment that nothing can drop). An instruction it does not know (SIMD 0xFD,
// threads 0xFE, exceptions, tail calls, GC, anything else) is reported the
// same way ("unknown instruction 0xfd 0x0c in function ..."): unknown means
// not proven. It also reports a table or global that is imported or a table
// that is exported (the host or another module could change it). It returns
// an error only for bytes it cannot decode as a module (malformed LEB128,
// a body running past its section, sections out of order...).
//
// What it reports first is the first in the module's order (imports,
// exports, then code); the bytes after it are not read, so a module may
// have both a finding and malformed bytes further on, which the compiler
// then refuses. Its cost is linear in len(m).
func instanceStateOutsideMemory(m []byte) (string, error) {
	s, err := scanModule(m)
	return s.finding, err
}

// moduleScan is what scanModule found.
type moduleScan struct {
	finding      string // as instanceStateOutsideMemory reports it
	functions    int    // function bodies decoded to their end
	instructions int    // instructions decoded, each body's final end included
}

// scanModule does instanceStateOutsideMemory's work, and counts what it
// decoded (for tests and logs).
func scanModule(m []byte) (moduleScan, error) {
	var s moduleScan
	var importedFuncs, declaredFuncs uint32
	for sc, err := range sections(m) {
		if err != nil {
			return s, err
		}
		id, head, end := sc.id, sc.head, sc.end
		sec := &codeReader{reader{b: m[:end], i: sc.start, hex: true}}
		switch id {
		case secCustom:
			sec.name()
			sec.i = end // the rest is the custom section's own
		case secImport:
			importedFuncs, s.finding = sec.imports()
		case 3: // function
			declaredFuncs = sec.u32()
			for k := declaredFuncs; k > 0 && sec.err == nil; k-- {
				sec.u32() // its type index
			}
		case 7: // export
			s.finding = sec.exports()
		case secCode:
			s.finding = sec.code(&s, importedFuncs, declaredFuncs)
			declaredFuncs = 0 // all have bodies
		default:
			sec.i = end // nothing in it can change state after instantiation
		}
		if sec.err != nil {
			return s, fmt.Errorf("section %d at byte %#x: %w", id, head, sec.err)
		}
		if s.finding != "" {
			return s, nil
		}
		if sec.i != end {
			return s, fmt.Errorf("section %d at byte %#x: %d bytes left over at its end", id, head, end-sec.i)
		}
	}
	if declaredFuncs != 0 {
		return s, fmt.Errorf("%d functions declared and no code section", declaredFuncs)
	}
	return s, nil
}

// maxLocalsTotal bounds one function's locals, all its declarations
// together: the same bound as checkModuleShape's, which the platform
// applies first, so nothing the platform accepts is refused here.
const maxLocalsTotal = maxLocals

// codeReader is the code scan's reader: it words its errors with offsets
// in hex, and has its own name and limits, whose errors are worded so too.
type codeReader struct{ reader }

// signed reads a signed LEB128 integer of the given width (33 for block
// types, 32 and 64 for constants).
func (r *codeReader) signed(bits int) int64 {
	v, next, err := readSigned(r.b, r.i, bits)
	if err != nil {
		r.failf("%v", err)
		return 0
	}
	r.i = next
	return v
}

// name reads a name (a vector of bytes) and returns it, as a view of b.
func (r *codeReader) name() []byte {
	n := r.u32()
	start := r.i
	r.skip(n)
	if r.err != nil {
		return nil
	}
	return r.b[start:r.i]
}

// limits reads a table's or memory's limits: 32-bit, shared (threads) or
// 64-bit (memory64).
func (r *codeReader) limits() {
	flags := r.byte()
	if flags > 7 {
		r.failf("limits flags %#x at byte %#x", flags, r.i-1)
		return
	}
	n := 1 + int(flags&1)
	for ; n > 0; n-- {
		if flags&4 != 0 {
			r.u64()
		} else {
			r.u32()
		}
	}
}

// u64 reads an unsigned LEB128 u64: at most 10 bytes, the last holding
// its one remaining bit.
func (r *codeReader) u64() {
	for k := 0; k < 10; k++ {
		c := r.byte()
		if k == 9 && c > 1 {
			break
		}
		if c&0x80 == 0 {
			return
		}
	}
	r.failf("bad u64 before byte %#x", r.i)
}

// imports reads the import section, returning the number of imported
// functions, and a finding for the first imported table or global.
func (r *codeReader) imports() (funcs uint32, finding string) {
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		mod, name := r.name(), r.name()
		switch kind := r.byte(); kind {
		case 0: // function: a type index
			r.u32()
			funcs++
		case 1: // table
			return funcs, fmt.Sprintf("imported table %q %q", mod, name)
		case 2: // memory
			r.limits()
		case 3: // global: the host holds it, whether mutable or not
			return funcs, fmt.Sprintf("imported global %q %q", mod, name)
		case 4: // tag (exception handling): an attribute and a type index
			r.byte()
			r.u32()
		default:
			r.failf("import kind %#x at byte %#x", kind, r.i-1)
		}
	}
	return funcs, ""
}

// exports reads the export section, returning a finding for the first
// exported table (the host, or a module it is linked to, may change it).
func (r *codeReader) exports() string {
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		name := r.name()
		kind := r.byte()
		r.u32()
		switch {
		case r.err != nil:
		case kind == 1:
			return fmt.Sprintf("exported table %q", name)
		case kind > 4:
			r.failf("export kind %#x at byte %#x", kind, r.i-1)
		}
	}
	return ""
}

// code reads the code section, whose bodies are the functions from index
// imported on; declared is the function section's count.
func (r *codeReader) code(s *moduleScan, imported, declared uint32) string {
	n := r.u32()
	if r.err == nil && n != declared {
		r.failf("%d function bodies for %d functions declared", n, declared)
		return ""
	}
	var frames []byte // reused from body to body
	for k := uint32(0); k < n && r.err == nil; k++ {
		size := r.u32()
		start := r.i
		r.skip(size)
		if r.err != nil {
			return ""
		}
		fn := imported + k
		body := &codeReader{reader{b: r.b[:r.i], i: start, hex: true}}
		var finding string
		finding, frames = body.body(s, fn, frames[:0])
		if body.err != nil {
			r.failf("function %d: %v", fn, body.err)
			return ""
		}
		if finding != "" {
			return finding
		}
		s.functions++
	}
	return ""
}

// Block kinds, on body's stack of the blocks it is in.
const (
	frameBlock = iota // function, block, loop
	frameIf           // an if before its else
	frameElse         // an if after its else
)

// isValType reports whether b is a value type of Wasm 2.0, one byte each:
// i32, i64, f32, f64, v128, funcref, externref. (v128 values can be held
// and passed without SIMD instructions, which are unknown to body.)
func isValType(b byte) bool {
	return b >= 0x7b && b <= 0x7f || b == 0x70 || b == 0x6f
}

// body decodes one function body, r spanning exactly its bytes, and
// returns the first finding in it; frames is the stack to use (returned
// for reuse). Instructions are counted in s.
func (r *codeReader) body(s *moduleScan, fn uint32, frames []byte) (string, []byte) {
	found := func(what string, at int) string {
		return fmt.Sprintf("%s in function %d at byte %#x", what, fn, at)
	}
	unknown := func(op []byte, at int) string {
		what := "unknown instruction"
		for _, b := range op {
			what += fmt.Sprintf(" 0x%02x", b)
		}
		return found(what, at)
	}
	var total uint64
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		total += uint64(r.u32())
		at := r.i
		if t := r.byte(); r.err == nil && !isValType(t) {
			return found(fmt.Sprintf("unknown value type 0x%02x of a local", t), at), frames
		}
		if total > maxLocalsTotal {
			r.failf("more than %d locals", maxLocalsTotal)
		}
	}
	frames = append(frames, frameBlock) // the function's own block
	for r.err == nil {
		at := r.i
		if at >= len(r.b) {
			r.failf("the body ends inside %d blocks", len(frames))
			break
		}
		op := r.b[at]
		r.i++
		s.instructions++
		switch {
		case op == 0x00 || op == 0x01 || op == 0x0f || op == 0x1a || op == 0x1b || op == 0xd1 || op >= 0x45 && op <= 0xc4:
			// unreachable, nop, return, drop, select, ref.is_null,
			// numeric instructions: no immediates
		case op >= 0x02 && op <= 0x04: // block, loop, if: a block type
			if r.i < len(r.b) && (r.b[r.i] == 0x40 || isValType(r.b[r.i])) {
				r.i++
			} else if x := r.signed(33); r.err == nil && x < 0 {
				return unknown([]byte{op}, at), frames // a type of a later proposal
			}
			if op == 0x04 {
				frames = append(frames, frameIf)
			} else {
				frames = append(frames, frameBlock)
			}
		case op == 0x05: // else
			if top := len(frames) - 1; frames[top] == frameIf {
				frames[top] = frameElse
			} else {
				r.failf("else outside an if at byte %#x", at)
			}
		case op == 0x0b: // end
			frames = frames[:len(frames)-1]
			if len(frames) == 0 {
				if r.i != len(r.b) {
					r.failf("the body's final end at byte %#x is %d bytes before its size", at, len(r.b)-r.i)
				}
				return "", frames
			}
		case op == 0x0c || op == 0x0d || op == 0x10 || op >= 0x20 && op <= 0x25 || op == 0xd2:
			// br, br_if, call, local.get/set/tee, global.get/set,
			// table.get, ref.func: an index
			r.u32()
		case op == 0x0e: // br_table: a vector of labels and a default
			for k := uint64(r.u32()) + 1; k > 0 && r.err == nil; k-- {
				r.u32()
			}
		case op == 0x11: // call_indirect: a type and a table
			r.u32()
			r.u32()
		case op == 0x1c: // select with types
			for k := r.u32(); k > 0 && r.err == nil; k-- {
				if t := r.byte(); r.err == nil && !isValType(t) {
					return unknown([]byte{op}, at), frames
				}
			}
		case op == 0x26:
			return found("table.set", at), frames
		case op >= 0x28 && op <= 0x3e: // loads and stores: a memarg
			align := r.u32()
			if align&0x40 != 0 { // a memory index follows (multi-memory)
				return unknown([]byte{op}, at), frames
			}
			r.u32()
		case op == 0x3f || op == 0x40: // memory.size, memory.grow: memory 0
			if r.byte() != 0 && r.err == nil { // another memory (multi-memory)
				return unknown([]byte{op}, at), frames
			}
		case op == 0x41:
			r.signed(32)
		case op == 0x42:
			r.signed(64)
		case op == 0x43:
			r.skip(4)
		case op == 0x44:
			r.skip(8)
		case op == 0xd0: // ref.null: a reference type
			if t := r.byte(); r.err == nil && t != 0x70 && t != 0x6f {
				return unknown([]byte{op}, at), frames // a heap type of a later proposal
			}
		case op == 0xfc:
			if f := r.prefixed(at); f != "" {
				return found(f, at), frames
			}
		case op == 0xfb || op == 0xfd || op == 0xfe: // GC, SIMD, threads
			sub := r.u32()
			if r.err != nil {
				break
			}
			if sub > 0xff {
				return found(fmt.Sprintf("unknown instruction 0x%02x %#x", op, sub), at), frames
			}
			return unknown([]byte{op, byte(sub)}, at), frames
		default:
			return unknown([]byte{op}, at), frames
		}
	}
	return "", frames
}

// prefixed decodes an instruction of prefix 0xfc whose prefix byte is at
// at, and returns what it changes outside memory ("" if nothing).
func (r *codeReader) prefixed(at int) string {
	sub := r.u32()
	if r.err != nil {
		return ""
	}
	switch sub {
	case 0, 1, 2, 3, 4, 5, 6, 7: // saturating truncations
	case 8: // memory.init: a data segment and memory 0
		r.u32()
		if r.byte() != 0 && r.err == nil {
			return "unknown instruction 0xfc 0x08 with a memory index"
		}
	case 9:
		return "data.drop"
	case 10: // memory.copy: memories 0 and 0
		if a, b := r.byte(), r.byte(); (a != 0 || b != 0) && r.err == nil {
			return "unknown instruction 0xfc 0x0a with a memory index"
		}
	case 11: // memory.fill: memory 0
		if r.byte() != 0 && r.err == nil {
			return "unknown instruction 0xfc 0x0b with a memory index"
		}
	case 12:
		return "table.init"
	case 13:
		return "elem.drop"
	case 14:
		return "table.copy"
	case 15:
		return "table.grow"
	case 16: // table.size: a table
		r.u32()
	case 17:
		return "table.fill"
	default:
		if sub > 0xff {
			return fmt.Sprintf("unknown instruction 0xfc %#x", sub)
		}
		return fmt.Sprintf("unknown instruction 0xfc 0x%02x", sub)
	}
	return ""
}

// readSigned reads a signed LEB128 integer of the given width at b[i:]:
// like the specification, at most ceil(bits/7) bytes, the last with its
// unused bits all equal to the sign bit.
func readSigned(b []byte, i int, bits int) (int64, int, error) {
	n := (bits + 6) / 7
	var v int64
	for k := 0; k < n && i+k < len(b); k++ {
		c := b[i+k]
		if k == n-1 {
			// The last byte holds the width's top bits-7k bits, the
			// highest of them the sign; its bits above must repeat it.
			ext := byte(0x7f) &^ (byte(1)<<(bits-7*k-1) - 1)
			if c&0x80 != 0 || c&ext != 0 && c&ext != ext {
				break
			}
		}
		v |= int64(c&0x7f) << (7 * k)
		if c&0x80 == 0 {
			if shift := 7 * (k + 1); shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, i + k + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("bad s%d at %d", bits, i)
}
