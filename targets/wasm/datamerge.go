package wasm

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"slices"
)

// Data segment merging (RATIONALE.md, "Merged data segments").
//
// wazero applies a module's active data segments one by one at every
// instantiation, and each costs an evaluation of its offset expression
// (with allocations) and a slice header in the instance. Go's linker
// splits its data at every run of more than a few zero bytes, so a Go
// wasip1 module has ~29k segments of ~25 bytes and spends ~3 ms of its
// ~5 ms start applying them. mergeDataSegments rewrites such a module at
// deploy so that the same bytes land in memory from a few large segments:
// it lays the active segments out as the memory image they produce (in
// order, so a later segment overwrites an earlier one as at
// instantiation) and emits that image's non-zero runs, joining runs
// separated by fewer than mergeGap zero bytes (memory starts zeroed, so a
// longer zero run is left out).
//
// It rewrites only when the result is certain to be the same memory at
// instantiation: one memory, defined by the module (not imported), with
// 32-bit limits, not shared; every active segment targets it at an
// i32.const offset and fits within its initial size (so no segment can
// fail at instantiation). Anything else leaves the module as it is.
//
// It also rewrites only a module that is valid in every part the rewrite
// touches, so that it can never turn a module the compiler refuses into
// one it accepts (validate): the known sections each at most once and in
// the specification's order, every integer in the canonical bounds of its
// LEB128 encoding, a data count that is the number of segments, and no
// memory.init or data.drop naming a segment past that count (the merged
// segments are appended, so such an index would come to exist).
//
// Passive segments are kept. When the module has a data count section its
// code may name segments by index (memory.init, data.drop), so every
// original segment keeps its index: an active one becomes an empty passive
// segment, which behaves as a dropped active segment does in the
// specification (memory.init of zero bytes succeeds, of more traps), and
// the merged segments are appended after them, with the count updated.

// mergeGap is the longest run of zero bytes copied inside a merged segment
// rather than left out (splitting the segment there). Copying 4 KiB costs
// about as much as one more segment.
const mergeGap = 4 << 10

// maxMergeImage bounds the memory image built at deploy.
const maxMergeImage = 64 << 20

// Wasm section ids (https://webassembly.github.io/spec/core/binary/modules.html).
const (
	secCustom    = 0
	secImport    = 2
	secMemory    = 5
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13 // exception handling
)

// sectionRank is where each known section may appear: the specification's
// order (the data count section between elements and code, tags between
// memory and globals). Custom sections may appear anywhere.
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, secTag: 6, 6: 7, 7: 8, 8: 9, 9: 10, secDataCount: 11, secCode: 12, secData: 13}

// mergeStats says what mergeDataSegments did, for the deploy log.
type mergeStats struct {
	Before, After int    // active segments for memory 0
	Skipped       string // why the module was left alone; "" if rewritten
}

// mergeDataSegments returns module with its active data segments merged,
// or module itself (and the reason in Skipped) where that does not apply
// or would not help. It never fails: bytes it cannot parse are returned
// unchanged for the compiler to judge.
func mergeDataSegments(module []byte) ([]byte, mergeStats) {
	out, st, err := rewriteData(module)
	if err != nil {
		st.Skipped = err.Error()
		return module, st
	}
	return out, st
}

type section struct {
	id         byte
	start, end int // the contents, module[start:end]
	head       int // where the section's id byte is
}

type dataSeg struct {
	active bool
	offset uint32
	init   []byte
	raw    []byte // the segment's encoding, to copy a passive one as is
}

func rewriteData(m []byte) ([]byte, mergeStats, error) {
	var st mergeStats
	leave := func(format string, args ...any) ([]byte, mergeStats, error) {
		return nil, st, fmt.Errorf(format, args...)
	}
	secs, err := splitSections(m)
	if err != nil {
		return leave("%v", err)
	}
	var mem, data, count, code *section
	for i := range secs {
		s := &secs[i]
		switch s.id {
		case secImport:
			imp, err := parseImports(m[:s.end], s.start)
			if err != nil {
				return leave("import section: %v", err)
			}
			if imp.memories > 0 {
				return leave("the memory is imported")
			}
		case secMemory:
			mem = s
		case secData:
			data = s
		case secDataCount:
			count = s
		case secCode:
			code = s
		}
	}
	if data == nil {
		return leave("no data section")
	}
	if mem == nil {
		return leave("no memory section")
	}
	lim, ok, err := parseMemory(m[mem.start:mem.end])
	if err == nil && !ok {
		err = errors.New("0 memories")
	}
	if err != nil {
		return leave("memory section: %v", err)
	}
	minPages := lim.min
	segs, err := parseData(m[data.start:data.end])
	if err != nil {
		return leave("data section: %v", err)
	}
	if count != nil {
		declared, i, err := readU32(m, count.start)
		if err != nil || i != count.end {
			return leave("data count section: not one u32")
		}
		if int(declared) != len(segs) {
			return leave("the data count section declares %d segments, the data section has %d", declared, len(segs))
		}
		if code != nil {
			if idx, ok := segmentIndexFrom(m[code.start:code.end], declared); ok {
				return leave("the code may name data segment %d, past the %d there are", idx, declared)
			}
		}
	}
	memBytes := uint64(minPages) * 65536
	lo, hi := uint64(1<<63), uint64(0)
	for i, s := range segs {
		if !s.active {
			continue
		}
		st.Before++
		end := uint64(s.offset) + uint64(len(s.init))
		if end > memBytes {
			return leave("segment %d (offset %d, %d bytes) is outside the initial memory of %d bytes", i, s.offset, len(s.init), memBytes)
		}
		if len(s.init) > 0 {
			lo, hi = min(lo, uint64(s.offset)), max(hi, end)
		}
	}
	if hi <= lo {
		return leave("no active segment with bytes")
	}
	if hi-lo > maxMergeImage {
		return leave("segments span %d bytes, over %d", hi-lo, maxMergeImage)
	}
	img := make([]byte, hi-lo)
	for _, s := range segs {
		if s.active && len(s.init) > 0 { // an empty one may lie outside [lo, hi)
			copy(img[uint64(s.offset)-lo:], s.init)
		}
	}
	runs := nonZeroRuns(img, mergeGap)
	st.After = len(runs)
	if st.After >= st.Before {
		return leave("merging would not lower the %d segments", st.Before)
	}

	// The new data section: the kept segments first, then the merged ones.
	body, n := keptSegments(segs, count != nil)
	for _, r := range runs {
		body = append(body, 0, 0x41) // active, memory 0; i32.const
		body = appendS32(body, int32(uint32(lo+uint64(r[0]))))
		body = append(body, 0x0b)
		body = appendU32(body, uint32(r[1]-r[0]))
		body = append(body, img[r[0]:r[1]]...)
		n++
	}
	dataSec := appendU32(nil, uint32(n))
	dataSec = append(dataSec, body...)

	repl := map[byte][]byte{secData: dataSec}
	if count != nil {
		repl[secDataCount] = appendU32(nil, uint32(n))
	}
	return assembleSections(m, secs, repl), st, nil
}

// keptSegments returns the encoding of the segments of segs that a
// rewritten data section keeps, in order, and their number n; the
// rewrite's own segments go after them. A passive segment is kept as it
// is. An active one, whose bytes the rewrite places itself, is left out,
// except where the module has a data count section (hasCount): then its
// code may name segments by index (memory.init and data.drop are valid
// only with that section), so every original segment must keep its index,
// and an active one becomes an empty passive segment, which behaves as a
// dropped active segment does in the specification (memory.init of zero
// bytes succeeds, of more traps; data.drop does nothing). The caller adds
// its own segments to n for the section's length and the data count.
func keptSegments(segs []dataSeg, hasCount bool) (body []byte, n int) {
	for _, s := range segs {
		switch {
		case !s.active:
			body = append(body, s.raw...)
		case hasCount:
			body = append(body, 1, 0) // passive, no bytes: the index holds
		default:
			continue
		}
		n++
	}
	return body, n
}

// nonZeroRuns returns [start, end) of img's non-zero runs, joined across
// zero runs shorter than gap.
func nonZeroRuns(img []byte, gap int) [][2]int {
	var runs [][2]int
	i := 0
	for {
		for i < len(img) && img[i] == 0 {
			i++
		}
		if i == len(img) {
			return runs
		}
		start, end := i, i+1 // end: just past the last non-zero byte
		for ; i < len(img) && i-end < gap; i++ {
			if img[i] != 0 {
				end = i + 1
			}
		}
		runs = append(runs, [2]int{start, end})
	}
}

func appendSection(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(body)))
	return append(out, body...)
}

// splitSections returns m's sections in order, after checking them all as
// sections does.
func splitSections(m []byte) ([]section, error) {
	var secs []section
	for s, err := range sections(m) {
		if err != nil {
			return nil, err
		}
		secs = append(secs, s)
	}
	return secs, nil
}

// sections yields m's sections in order, after checking the header and,
// before each section, that it lies within m and that a known section
// comes at most once and in the specification's order (sectionRank); at
// the first problem it yields that as the error, with a zero section, and
// stops. It checks as it goes rather than all first so that a caller that
// stops early (instanceStateOutsideMemory at its first finding) reads
// nothing after the section it stopped in, and so that every reader of
// sections keeps these rules, and their error messages, in one place.
func sections(m []byte) iter.Seq2[section, error] {
	return func(yield func(section, error) bool) {
		if len(m) < 8 || !bytes.Equal(m[:8], []byte("\x00asm\x01\x00\x00\x00")) {
			yield(section{}, errors.New("not a version 1 wasm binary"))
			return
		}
		rank := 0
		for i := 8; i < len(m); {
			head := i
			id := m[i]
			n, start, err := readU32(m, i+1)
			if err != nil {
				yield(section{}, fmt.Errorf("section at byte %#x: %w", head, err))
				return
			}
			if int64(n) > int64(len(m)-start) {
				yield(section{}, fmt.Errorf("section %d at byte %#x declares %d bytes, %d remain", id, head, n, len(m)-start))
				return
			}
			if id != secCustom {
				r, known := sectionRank[id]
				if !known {
					yield(section{}, fmt.Errorf("unknown section %d at byte %#x", id, head))
					return
				}
				if r <= rank {
					yield(section{}, fmt.Errorf("section %d at byte %#x is out of order or repeated", id, head))
					return
				}
				rank = r
			}
			i = start + int(n)
			if !yield(section{id: id, start: start, end: i, head: head}, nil) {
				return
			}
		}
	}
}

// findSection returns the known section id of secs, or nil.
func findSection(secs []section, id byte) *section {
	for i := range secs {
		if secs[i].id == id && id != secCustom {
			return &secs[i]
		}
	}
	return nil
}

// assembleSections returns m (split into secs by splitSections) with the
// contents of each known section whose id is a key of repl replaced by
// repl's value, or the section left out where that value is nil. An id m
// has no section of is a new section, placed right after the last section
// that must precede it, so that the order stays the specification's.
func assembleSections(m []byte, secs []section, repl map[byte][]byte) []byte {
	type added struct {
		at   int // the index in secs it goes before
		id   byte
		body []byte
	}
	var adds []added
	size := len(m)
	for id, body := range repl {
		size += len(body) + 5
		if body == nil || findSection(secs, id) != nil {
			continue
		}
		at := 0
		for i, s := range secs {
			if s.id != secCustom && sectionRank[s.id] < sectionRank[id] {
				at = i + 1
			}
		}
		adds = append(adds, added{at, id, body})
	}
	slices.SortFunc(adds, func(a, b added) int { return cmp.Compare(sectionRank[a.id], sectionRank[b.id]) })
	out := make([]byte, 0, size)
	out = append(out, m[:8]...)
	for i := 0; i <= len(secs); i++ {
		for len(adds) > 0 && adds[0].at == i {
			out = appendSection(out, adds[0].id, adds[0].body)
			adds = adds[1:]
		}
		if i == len(secs) {
			break
		}
		s := secs[i]
		body, ok := repl[s.id]
		switch {
		case s.id == secCustom || !ok:
			out = append(out, m[s.head:s.end]...)
		case body != nil:
			out = appendSection(out, s.id, body)
		}
	}
	return out
}

// memLimits are a 32-bit memory's limits, in pages.
type memLimits struct {
	flags    byte // 0: no maximum; 1: a maximum
	min, max uint32
}

// parseMemory reads a memory section: the limits of its one memory, or
// ok false if it defines none. Other shapes (several memories, shared,
// 64-bit) are refused.
func parseMemory(b []byte) (lim memLimits, ok bool, err error) {
	n, i, err := readU32(b, 0)
	if err != nil {
		return lim, false, err
	}
	if n > 1 {
		return lim, false, fmt.Errorf("%d memories", n)
	}
	if n == 1 {
		if i >= len(b) {
			return lim, false, errors.New("truncated")
		}
		lim.flags = b[i]
		if lim.flags > 1 {
			return lim, false, fmt.Errorf("limits flags %#x (shared or 64-bit memory)", lim.flags)
		}
		if lim.min, i, err = readU32(b, i+1); err != nil {
			return lim, false, err
		}
		if lim.flags == 1 {
			if lim.max, i, err = readU32(b, i); err != nil {
				return lim, false, err
			}
		}
	}
	if i != len(b) {
		return lim, false, errors.New("trailing bytes")
	}
	return lim, n == 1, nil
}

// importCounts says what an import section imports.
type importCounts struct {
	memories, globals uint32
	// mutableGlobal is the index of the first mutable global imported,
	// or -1.
	mutableGlobal int64
}

// parseImports reads the import section m[start:len(m)].
func parseImports(m []byte, start int) (importCounts, error) {
	c := importCounts{mutableGlobal: -1}
	r := &shapeReader{b: m, i: start, sec: secImport}
	for n := r.count("imports", 4); n > 0 && r.err == nil; n-- {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // function: type index
			r.u32()
		case 0x01: // table: reference type, limits
			r.valType()
			r.anyLimits()
		case 0x02:
			r.anyLimits()
			c.memories++
		case 0x03: // global: value type, mutability
			r.valType()
			if mut := r.byte(); mut == 1 && c.mutableGlobal < 0 {
				c.mutableGlobal = int64(c.globals)
			} else if mut > 1 {
				r.failf("global mutability %#x", mut)
			}
			c.globals++
		case 0x04: // tag: attribute, type index
			r.byte()
			r.u32()
		default:
			r.failf("import kind %#x", kind)
		}
	}
	if r.err == nil && r.left() != 0 {
		r.failf("trailing bytes")
	}
	return c, r.err
}

// anyLimits skips the limits of an imported table or memory, of any
// shape: a maximum (flag 1), shared (2), 64-bit (4, its bounds u64).
func (r *shapeReader) anyLimits() {
	flags := r.byte()
	if flags > 7 {
		r.failf("section %d: limits flags %#x", r.sec, flags)
		return
	}
	for range 1 + flags&1 {
		if flags&4 != 0 {
			r.leb(10)
		} else {
			r.u32()
		}
	}
}

// parseData reads a data section. Active segments must target memory 0
// at an i32.const offset; anything else is refused.
func parseData(b []byte) ([]dataSeg, error) {
	n, i, err := readU32(b, 0)
	if err != nil {
		return nil, err
	}
	if n > uint32(len(b)) {
		return nil, fmt.Errorf("%d segments in %d bytes", n, len(b))
	}
	segs := make([]dataSeg, 0, n)
	for k := uint32(0); k < n; k++ {
		start := i
		var flags uint32
		if flags, i, err = readU32(b, i); err != nil {
			return nil, fmt.Errorf("segment %d: %w", k, err)
		}
		s := dataSeg{active: flags != 1}
		switch flags {
		case 0, 1:
		case 2:
			var memIdx uint32
			if memIdx, i, err = readU32(b, i); err != nil {
				return nil, fmt.Errorf("segment %d: %w", k, err)
			}
			if memIdx != 0 {
				return nil, fmt.Errorf("segment %d targets memory %d", k, memIdx)
			}
		default:
			return nil, fmt.Errorf("segment %d: flags %d", k, flags)
		}
		if s.active {
			// Only "i32.const N end": a global.get or an extended constant
			// expression depends on more than the bytes here.
			if i >= len(b) || b[i] != 0x41 {
				return nil, fmt.Errorf("segment %d: offset is not an i32.const", k)
			}
			var off int32
			if off, i, err = readS32(b, i+1); err != nil {
				return nil, fmt.Errorf("segment %d: %w", k, err)
			}
			if i >= len(b) || b[i] != 0x0b {
				return nil, fmt.Errorf("segment %d: offset expression is more than one i32.const", k)
			}
			i++
			s.offset = uint32(off)
		}
		var l uint32
		if l, i, err = readU32(b, i); err != nil {
			return nil, fmt.Errorf("segment %d: %w", k, err)
		}
		if uint64(i)+uint64(l) > uint64(len(b)) {
			return nil, fmt.Errorf("segment %d: %d bytes run past the end", k, l)
		}
		s.init = b[i : i+int(l)]
		i += int(l)
		s.raw = b[start:i]
		segs = append(segs, s)
	}
	if i != len(b) {
		return nil, errors.New("trailing bytes")
	}
	return segs, nil
}

// segmentIndexFrom reports a data segment index of at least n named by a
// memory.init (0xfc 8) or data.drop (0xfc 9) in code. It scans the bytes
// rather than decoding instructions, so it may also find such a pattern
// inside another instruction's immediates: that only leaves a module
// unmerged, while a real instruction is never missed.
func segmentIndexFrom(code []byte, n uint32) (uint32, bool) {
	for i := 0; i < len(code); i++ {
		if code[i] != 0xfc {
			continue
		}
		op, j, err := readU32(code, i+1)
		if err != nil || op != 8 && op != 9 {
			continue
		}
		if idx, _, err := readU32(code, j); err == nil && idx >= n {
			return idx, true
		}
	}
	return 0, false
}

// readU32 reads an unsigned LEB128 u32 at b[i:], returning the value and
// the index after it. Like the specification it takes at most 5 bytes,
// the last with no bits beyond the 32nd.
func readU32(b []byte, i int) (uint32, int, error) {
	var v uint32
	for k := 0; k < 5 && i+k < len(b); k++ {
		c := b[i+k]
		if k == 4 && c > 0x0f {
			break // a bit past the 32nd, or a sixth byte
		}
		v |= uint32(c&0x7f) << (7 * k)
		if c&0x80 == 0 {
			return v, i + k + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("bad u32 at %d", i)
}

// readS32 reads a signed LEB128 s32: at most 5 bytes, the last holding the
// 4 remaining bits and their sign extension.
func readS32(b []byte, i int) (int32, int, error) {
	var v uint32
	for k := 0; k < 5 && i+k < len(b); k++ {
		c := b[i+k]
		if k == 4 {
			if c&0x80 != 0 || c&0x78 != 0 && c&0x78 != 0x78 {
				break // a sixth byte, or unused bits that do not extend the sign
			}
			return int32(v | uint32(c&0x0f)<<28), i + 5, nil
		}
		v |= uint32(c&0x7f) << (7 * k)
		if c&0x80 == 0 {
			if shift := 7 * (k + 1); c&0x40 != 0 {
				v |= ^uint32(0) << shift
			}
			return int32(v), i + k + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("bad s32 at %d", i)
}

func appendU32(b []byte, v uint32) []byte {
	return binary.AppendUvarint(b, uint64(v))
}

func appendS32(b []byte, v int32) []byte { return appendS64(b, int64(v)) }

func appendS64(b []byte, x int64) []byte {
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if x == 0 && c&0x40 == 0 || x == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
