package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Snapshot rewrites (the snapshot mode: a fresh instance per request that
// starts in the state _initialize left, as Wizer does).
//
// At deploy the platform makes one instance, runs its initialisation (the
// start section, then _initialize), and reads its state: the linear
// memory, and every mutable global the module defines. wazero's
// api.Module reads only exported globals, so exportGlobals first rewrites
// the module to export each of them under snapGlobalPrefix and its index.
// bakeSnapshot then rewrites the module as deployed so that its
// instantiation is that state with no guest code run: the memory's
// initial size is the snapshot's, each mutable global's initialiser is
// its value, the data segments are the memory image's non-zero runs (or
// none, where the host maps the image in itself), and the start section
// is gone. Immutable globals are not snapshotted: their initialisers
// cannot change (an imported immutable global is read from the same import
// again).
//
// A snapshot of memory and globals is the whole state only for some
// modules; the others are refused, each with the reason:
//   - an imported memory: its contents are the host's;
//   - several memories, a shared or a 64-bit one: only one 32-bit memory
//     is captured and restored (and a shared one may be written by
//     others while it is read);
//   - an imported mutable global: the host's to change, not the module's;
//   - a mutable global of type v128 (api.Global reads only 64 bits of it)
//     or of a reference type (a reference is no constant a module can
//     hold);
//   - an export whose name starts with snapGlobalPrefix (the names added
//     would clash);
//   - bytes that are not a module in every part the rewrites read or
//     rewrite (the sections in order, the import, memory, global, export
//     and data sections well formed; a data count that is the number of
//     segments; no memory.init or data.drop naming a segment past it), so
//     that a rewrite never turns a module the compiler refuses into one it
//     accepts.
//
// What a snapshot does not hold, and the modules it is therefore wrong
// for:
//   - tables: the restored instance's tables are the module's as
//     instantiated (element segments applied again). A module whose
//     initialisation changes a table (table.set, table.grow, table.init,
//     table.copy, table.fill, or the host through an exported table) is not
//     supported: its restored instance would call through the old entries;
//   - dropped segments: a passive data (or element) segment that
//     initialisation drops (data.drop, elem.drop) is not dropped in the
//     restored instance, so a later memory.init of it copies its bytes
//     where the original instance would trap;
//   - the host's state (WASI file offsets, the clock, randomness read
//     during initialisation): the snapshot holds what the guest made of
//     them, as of the deploy.
//
// wazero keeps an active data segment's bytes after instantiation, where
// the specification drops the segment: memory.init of an active segment's
// index copies them in an instance of the original module and traps in a
// restored one (which has an empty passive segment there, as datamerge.go
// leaves), as it would in both by the specification. Compilers emit
// memory.init only for passive segments.

// snapGlobal is a global the module defines (not imports).
type snapGlobal struct {
	Index   uint32 // in the module's global index space (imported globals first)
	Type    byte   // value type: 0x7f i32, 0x7e i64, 0x7d f32, 0x7c f64
	Mutable bool
	Export  string // the name exportGlobals exports it under; "" for an immutable global (not exported, not snapshotted: its initialiser cannot change)
}

// snapGlobalPrefix begins the export names exportGlobals adds.
const snapGlobalPrefix = "purify.snapshot.global."

// More section ids.
const (
	secGlobal = 6
	secExport = 7
	secStart  = 8
)

// Value types (https://webassembly.github.io/spec/core/binary/types.html).
const (
	valI32       = 0x7f
	valI64       = 0x7e
	valF32       = 0x7d
	valF64       = 0x7c
	valV128      = 0x7b
	valFuncref   = 0x70
	valExternref = 0x6f
	valRef       = 0x64 // (ref ht), typed references
	valRefNull   = 0x63 // (ref null ht)
)

// snapModule is what both rewrites read of a module.
type snapModule struct {
	secs    []section
	globals []snapGlobal // the defined ones, in index order
	// globalEnc is each defined global's encoding in the global section.
	globalEnc [][]byte
	mem       *memLimits // nil: the module has no memory
	// exports is the number of the export section's entries, and
	// exportsAt where they begin in the module.
	exports   uint32
	exportsAt int
}

// parseSnapModule reads m and refuses what a snapshot cannot capture (see
// the top of this file).
func parseSnapModule(m []byte) (*snapModule, error) {
	secs, err := splitSections(m)
	if err != nil {
		return nil, fmt.Errorf("not a module: %v", err)
	}
	sm := &snapModule{secs: secs}
	var imported uint32 // globals
	for _, s := range secs {
		switch s.id {
		case secImport:
			imp, err := parseImports(m[:s.end], s.start)
			if err != nil {
				return nil, fmt.Errorf("import section: %v", err)
			}
			if imp.memories > 0 {
				return nil, errors.New("the memory is imported: its contents are the host's, which a snapshot of the module cannot restore")
			}
			if imp.mutableGlobal >= 0 {
				return nil, fmt.Errorf("global %d is an imported mutable global: the host's to change, which a snapshot of the module cannot restore", imp.mutableGlobal)
			}
			imported = imp.globals
		case secMemory:
			lim, ok, err := parseMemory(m[s.start:s.end])
			if err != nil {
				return nil, fmt.Errorf("memory section: %v: a snapshot captures one 32-bit memory, not shared", err)
			}
			if ok {
				sm.mem = &lim
			}
		case secGlobal:
			if err := sm.parseGlobals(m[:s.end], s.start, imported); err != nil {
				return nil, fmt.Errorf("global section: %v", err)
			}
		case secExport:
			if err := sm.parseExports(m[:s.end], s.start); err != nil {
				return nil, fmt.Errorf("export section: %v", err)
			}
		}
	}
	return sm, nil
}

// parseGlobals reads the global section m[start:len(m)], whose first
// global has index first.
func (sm *snapModule) parseGlobals(m []byte, start int, first uint32) error {
	r := &shapeReader{b: m, i: start, sec: secGlobal}
	n := r.count("globals", 3)
	for k := uint32(0); k < n && r.err == nil; k++ {
		at := r.i
		g := snapGlobal{Index: first + k, Type: r.byte()}
		switch g.Type {
		case valI32, valI64, valF32, valF64, valV128, valFuncref, valExternref:
		case valRef, valRefNull:
			r.leb(5) // the heap type
		default:
			r.failf("global %d: value type %#x", g.Index, g.Type)
		}
		switch mut := r.byte(); mut {
		case 0:
		case 1:
			g.Mutable = true
		default:
			r.failf("global %d: mutability %#x", g.Index, mut)
		}
		r.constExpr()
		if r.err != nil {
			break
		}
		if g.Mutable {
			switch g.Type {
			case valI32, valI64, valF32, valF64:
				g.Export = snapGlobalPrefix + strconv.FormatUint(uint64(g.Index), 10)
			case valV128:
				return fmt.Errorf("global %d is a mutable v128: api.Global reads only 64 of its bits, so a snapshot cannot capture it", g.Index)
			default:
				return fmt.Errorf("global %d is a mutable reference (type %#x): a reference is no constant a module can hold, so a snapshot cannot restore it", g.Index, g.Type)
			}
		}
		sm.globals = append(sm.globals, g)
		sm.globalEnc = append(sm.globalEnc, m[at:r.i])
	}
	if r.err == nil && r.left() != 0 {
		return errors.New("trailing bytes")
	}
	return r.err
}

// parseExports reads the export section m[start:len(m)].
func (sm *snapModule) parseExports(m []byte, start int) error {
	r := &shapeReader{b: m, i: start, sec: secExport}
	sm.exports = r.count("exports", 3)
	sm.exportsAt = r.i
	for k := uint32(0); k < sm.exports && r.err == nil; k++ {
		l := r.count("bytes of a name", 1)
		at := r.i
		r.skip(l)
		if r.err != nil {
			break
		}
		if name := string(m[at:r.i]); strings.HasPrefix(name, snapGlobalPrefix) {
			return fmt.Errorf("the module exports %q: names beginning with %q are the snapshot's", name, snapGlobalPrefix)
		}
		if kind := r.byte(); kind > 4 {
			r.failf("export kind %#x", kind)
		}
		r.u32()
	}
	if r.err == nil && r.left() != 0 {
		return errors.New("trailing bytes")
	}
	return r.err
}

// exportGlobals returns m with every mutable global it defines exported under
// snapGlobalPrefix+decimal index (so the platform can read it after _initialize),
// and the module's defined globals in index order. It refuses, with an error
// saying what and why, a module whose state a snapshot of memory and globals
// cannot capture faithfully: memory imported, more than one memory, a 64-bit or
// shared memory, a mutable global of type v128 or a reference type, an imported
// mutable global, an existing export name that starts with snapGlobalPrefix,
// malformed or out-of-order sections. A module with no memory is fine.
//
// A module with no mutable global comes back as m itself.
func exportGlobals(m []byte) ([]byte, []snapGlobal, error) {
	sm, err := parseSnapModule(m)
	if err != nil {
		return nil, nil, err
	}
	var add []byte
	n := sm.exports
	for _, g := range sm.globals {
		if g.Export == "" {
			continue
		}
		add = appendU32(add, uint32(len(g.Export)))
		add = append(add, g.Export...)
		add = append(add, 3) // a global
		add = appendU32(add, g.Index)
		n++
	}
	if n == sm.exports {
		return m, sm.globals, nil
	}
	body := appendU32(nil, n)
	if s := findSection(sm.secs, secExport); s != nil {
		body = append(body, m[sm.exportsAt:s.end]...)
	}
	body = append(body, add...)
	return assembleSections(m, sm.secs, map[byte][]byte{secExport: body}), sm.globals, nil
}

// bakeSnapshot returns m rewritten so that instantiating it gives the
// snapshot's state without running any guest code:
//   - the memory's initial size becomes pages (its maximum kept; error if pages exceed it);
//   - each mutable defined global's initialiser becomes the constant values[i]
//     (values is aligned with globals as exportGlobals returned them; the raw bits as
//     wazero's api.Global.Get returns them: i32 in the low 32 bits, f32 as float32 bits,
//     f64 as float64 bits); immutable globals keep their initialiser;
//   - the active data segments are removed (where the module has a data count section,
//     each becomes an empty passive segment so that segment indices used by
//     memory.init/data.drop still hold, as datamerge.go does), passive segments kept;
//     then, when image is not nil, image's non-zero runs (nonZeroRuns with mergeGap)
//     are appended as active segments at their offsets (image is the memory's contents
//     from byte 0; len(image) <= pages*65536); the data count is updated;
//     when image is nil the module has no active data segments at all (the host
//     provides the memory's contents, e.g. a copy-on-write mapping);
//   - the start section is removed (its effects are in the snapshot);
//   - everything else (exports, code, tables, elements, custom sections) is unchanged.
//
// m is the module as deployed (possibly already through mergeDataSegments), NOT the
// exportGlobals output. It fails rather than produce a module that would not be the snapshot.
//
// Of an i32 or f32 global's value only the low 32 bits are read (wazero's
// compiler may leave the high ones as they were); values of immutable
// globals are not read. pages may not be below the module's initial size,
// since a memory never shrinks.
func bakeSnapshot(m []byte, pages uint32, image []byte, globals []snapGlobal, values []uint64) ([]byte, error) {
	sm, err := parseSnapModule(m)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(sm.globals, globals) {
		return nil, fmt.Errorf("the globals given (%d) are not the module's (%d): not a snapshot of this module", len(globals), len(sm.globals))
	}
	if len(values) != len(globals) {
		return nil, fmt.Errorf("%d values for %d globals", len(values), len(globals))
	}
	repl := map[byte][]byte{secStart: nil}

	if uint64(len(image)) > uint64(pages)*65536 {
		return nil, fmt.Errorf("a memory image of %d bytes in %d pages", len(image), pages)
	}
	if lim := sm.mem; lim == nil {
		if pages != 0 {
			return nil, fmt.Errorf("a snapshot of %d pages of a module with no memory", pages)
		}
	} else {
		switch {
		case pages < lim.min:
			return nil, fmt.Errorf("a snapshot of %d pages, below the module's initial %d: a memory never shrinks, so not a snapshot of this module", pages, lim.min)
		case lim.flags&1 != 0 && pages > lim.max:
			return nil, fmt.Errorf("a snapshot of %d pages, over the memory's maximum of %d", pages, lim.max)
		case pages > 65536:
			return nil, fmt.Errorf("a snapshot of %d pages, over the 65536 of a 32-bit memory", pages)
		}
		mem := appendU32(nil, 1)
		mem = append(mem, lim.flags)
		mem = appendU32(mem, pages)
		if lim.flags&1 != 0 {
			mem = appendU32(mem, lim.max)
		}
		repl[secMemory] = mem
	}

	if len(globals) > 0 {
		body := appendU32(nil, uint32(len(globals)))
		for i, g := range globals {
			if !g.Mutable {
				body = append(body, sm.globalEnc[i]...)
				continue
			}
			body = append(body, g.Type, 1)
			v := values[i]
			switch g.Type {
			case valI32:
				body = appendS32(append(body, 0x41), int32(uint32(v)))
			case valI64:
				body = appendS64(append(body, 0x42), int64(v))
			case valF32:
				body = binary.LittleEndian.AppendUint32(append(body, 0x43), uint32(v))
			case valF64:
				body = binary.LittleEndian.AppendUint64(append(body, 0x44), v)
			}
			body = append(body, 0x0b)
		}
		repl[secGlobal] = body
	}

	data, count, code := findSection(sm.secs, secData), findSection(sm.secs, secDataCount), findSection(sm.secs, secCode)
	var segs []dataSeg
	if data != nil {
		if segs, err = parseData(m[data.start:data.end]); err != nil {
			return nil, fmt.Errorf("data section: %v", err)
		}
	}
	if count != nil {
		declared, i, err := readU32(m, count.start)
		if err != nil || i != count.end {
			return nil, errors.New("data count section: not one u32")
		}
		if int(declared) != len(segs) {
			return nil, fmt.Errorf("the data count section declares %d segments, the data section has %d", declared, len(segs))
		}
		if code != nil {
			if idx, ok := segmentIndexFrom(m[code.start:code.end], declared); ok {
				return nil, fmt.Errorf("the code may name data segment %d, past the %d there are", idx, declared)
			}
		}
	}
	var memBytes uint64
	if sm.mem != nil {
		memBytes = uint64(sm.mem.min) * 65536
	}
	for i, s := range segs {
		// Such a segment fails the module's instantiation, so there is no
		// snapshot of it, and leaving the segment out would make one.
		if s.active && (sm.mem == nil || uint64(s.offset)+uint64(len(s.init)) > memBytes) {
			return nil, fmt.Errorf("active data segment %d (offset %d, %d bytes) is outside the initial memory of %d bytes", i, s.offset, len(s.init), memBytes)
		}
	}
	body, n := keptSegments(segs, count != nil)
	for _, r := range nonZeroRuns(image, mergeGap) {
		body = append(body, 0, 0x41) // active, memory 0; i32.const
		body = appendS32(body, int32(uint32(r[0])))
		body = append(body, 0x0b)
		body = appendU32(body, uint32(r[1]-r[0]))
		body = append(body, image[r[0]:r[1]]...)
		n++
	}
	if data != nil || n > 0 {
		repl[secData] = append(appendU32(nil, uint32(n)), body...)
	}
	if count != nil {
		repl[secDataCount] = appendU32(nil, uint32(n))
	}
	return assembleSections(m, sm.secs, repl), nil
}
