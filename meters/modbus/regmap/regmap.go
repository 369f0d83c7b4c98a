// Package regmap describes the Modbus register maps of metered PDUs as
// tables, and decodes and encodes their registers. A new PDU model is a new
// Map value, not new code.
//
// The package is pure: it turns register bytes into readings and back and
// never touches the network, so that the driver and the emulator share one
// definition of each register and tests can check it byte by byte.
package regmap

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Field is a quantity a PDU reports for one line or outlet.
type Field string

// The fields the harness reads. Their values are in the unit named by Unit
// after decoding, whatever the device's raw scale is.
const (
	ActiveEnergy Field = "active_energy" // Wh, an absolute counter
	ActivePower  Field = "active_power"  // W
	Voltage      Field = "voltage"       // V
	Current      Field = "current"       // A
	Frequency    Field = "frequency"     // Hz
	PowerFactor  Field = "power_factor"  // dimensionless
)

// Unit is the unit of a field's decoded value.
func (f Field) Unit() string {
	switch f {
	case ActiveEnergy:
		return "Wh"
	case ActivePower:
		return "W"
	case Voltage:
		return "V"
	case Current:
		return "A"
	case Frequency:
		return "Hz"
	}
	return ""
}

// Register is one value in a sensor block.
type Register struct {
	Field Field
	// Name is the vendor's name for the value.
	Name string
	// Offset is the value's first register, counted in 16-bit registers
	// from the start of its block.
	Offset uint16
	// Words is the width in 16-bit registers: 1 or 2.
	Words int
	// Signed says whether the raw integer is two's complement.
	Signed bool
	// Scale turns the raw integer into Field's unit: value = raw * Scale.
	Scale float64
}

// Kind selects which sensor blocks an index counts: line inputs or
// switched outlets (ports).
type Kind string

const (
	// Line is an input circuit of the PDU (the whole strip on a
	// single-line model).
	Line Kind = "line"
	// Outlet is one switched port with its own energy sensor.
	Outlet Kind = "outlet"
)

// Map is the register layout of one PDU model. The values of a sensor
// block are input registers at Base + index*Stride + phase*PhaseStride +
// Register.Offset, with index and phase counted from zero.
type Map struct {
	// Name is what the spec's map= option selects: "gude-1105".
	Name string
	// Model is the device's full name.
	Model string
	// LineBase and OutletBase are the first registers of the first line's
	// and the first outlet's blocks.
	LineBase, OutletBase uint16
	// Stride is the distance between two lines' (or two outlets') blocks.
	Stride uint16
	// PhaseStride is the distance between two phases of one block.
	PhaseStride uint16
	// LowWordFirst is true for devices that send the low 16 bits of a
	// 32-bit value first. Bytes within a register are always big-endian,
	// as the Modbus specification requires.
	LowWordFirst bool
	// Registers are the values the harness reads, in any order.
	Registers []Register
	// DefaultPort is the TCP port Modbus listens on by default.
	DefaultPort int
	// RelError is the maker's stated accuracy of a power or energy
	// reading, as a fraction (0.01 for 1 %); 0 where none is stated.
	// Accuracy says where it is stated, or that it is not.
	RelError float64
	Accuracy string
}

// Gude1105 is the Gude Expert Power Control 1105 (and, by Gude's manuals,
// every Gude PDU with energy sensors: the layout is shared across models).
// Signed 32-bit values, high word first, input registers; line blocks from
// 0x400 and outlet blocks from 0x3a00, 0x120 apart, phases 0x60 apart. See
// firmware-notes/gude-1105.md for the sources and what is inferred.
var Gude1105 = Map{
	Name:        "gude-1105",
	Model:       "Gude Expert Power Control 1105",
	LineBase:    0x0400,
	OutletBase:  0x3a00,
	Stride:      0x0120,
	PhaseStride: 0x0060,
	DefaultPort: 502,
	Accuracy:    "accuracy not stated in the Gude manuals examined (Expert Power Control 1104/1105, 2022; firmware-notes/gude-1105.md)",
	Registers: []Register{
		{Field: ActiveEnergy, Name: "Absolute Active Energy", Offset: 0x0, Words: 2, Signed: true, Scale: 1},
		{Field: ActivePower, Name: "Power Active", Offset: 0x2, Words: 2, Signed: true, Scale: 1},
		{Field: Voltage, Name: "Voltage", Offset: 0x4, Words: 2, Signed: true, Scale: 1},
		{Field: Current, Name: "Current", Offset: 0x6, Words: 2, Signed: true, Scale: 0.001},
		{Field: Frequency, Name: "Frequency", Offset: 0x8, Words: 2, Signed: true, Scale: 0.01},
		{Field: PowerFactor, Name: "Power Factor", Offset: 0xa, Words: 2, Signed: true, Scale: 0.001},
	},
}

var maps = map[string]*Map{
	Gude1105.Name: &Gude1105,
}

// Lookup returns the map named name.
func Lookup(name string) (*Map, bool) {
	m, ok := maps[strings.ToLower(name)]
	return m, ok
}

// Names lists the known maps, sorted.
func Names() []string {
	var n []string
	for k := range maps {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Register returns the register of field f.
func (m *Map) Register(f Field) (Register, bool) {
	for _, r := range m.Registers {
		if r.Field == f {
			return r, true
		}
	}
	return Register{}, false
}

// Span is the smallest run of registers, relative to a block's start, that
// holds every register of the map: one request reads them all, so that the
// values of a reading come from one moment.
func (m *Map) Span() (first, count uint16) {
	if len(m.Registers) == 0 {
		return 0, 0
	}
	lo, hi := uint16(math.MaxUint16), uint16(0)
	for _, r := range m.Registers {
		lo = min(lo, r.Offset)
		hi = max(hi, r.Offset+uint16(r.Words))
	}
	return lo, hi - lo
}

// Base returns the first register of the block of the index-th line or
// outlet and its phase, both counted from zero.
func (m *Map) Base(k Kind, index, phase int) (uint16, error) {
	if index < 0 || phase < 0 {
		return 0, fmt.Errorf("regmap %s: negative %s index %d or phase %d", m.Name, k, index, phase)
	}
	var base uint16
	switch k {
	case Line:
		base = m.LineBase
	case Outlet:
		base = m.OutletBase
	default:
		return 0, fmt.Errorf("regmap %s: unknown block kind %q", m.Name, k)
	}
	addr := int(base) + index*int(m.Stride) + phase*int(m.PhaseStride)
	_, n := m.Span()
	if addr+int(n) > 0x10000 || (index > 0 && m.Stride == 0) || (phase > 0 && m.PhaseStride == 0) {
		return 0, fmt.Errorf("regmap %s: %s %d phase %d is outside the register space", m.Name, k, index+1, phase+1)
	}
	return uint16(addr), nil
}

// Reading is one decoded snapshot of a block: each field's value in its
// unit.
type Reading map[Field]float64

// Raw returns the raw integer of r in regs, the block's bytes as they came
// off the wire, starting at the block's first register.
func (m *Map) Raw(r Register, regs []byte) (int64, error) {
	at := 2 * int(r.Offset)
	if at+2*r.Words > len(regs) {
		return 0, fmt.Errorf("regmap %s: %s needs bytes [%d,%d), have %d", m.Name, r.Field, at, at+2*r.Words, len(regs))
	}
	b := regs[at : at+2*r.Words]
	switch r.Words {
	case 1:
		v := uint16(b[0])<<8 | uint16(b[1])
		if r.Signed {
			return int64(int16(v)), nil
		}
		return int64(v), nil
	case 2:
		hi := uint32(b[0])<<8 | uint32(b[1])
		lo := uint32(b[2])<<8 | uint32(b[3])
		if m.LowWordFirst {
			hi, lo = lo, hi
		}
		v := hi<<16 | lo
		if r.Signed {
			return int64(int32(v)), nil
		}
		return int64(v), nil
	}
	return 0, fmt.Errorf("regmap %s: %s has unsupported width %d registers", m.Name, r.Field, r.Words)
}

// Decode turns a block's bytes (from the first register of Span onward,
// as read off the wire) into a Reading.
func (m *Map) Decode(regs []byte) (Reading, error) {
	first, n := m.Span()
	if len(regs) != 2*int(n) {
		return nil, fmt.Errorf("regmap %s: got %d bytes, want %d (%d registers)", m.Name, len(regs), 2*n, n)
	}
	rd := Reading{}
	for _, r := range m.Registers {
		r.Offset -= first
		raw, err := m.Raw(r, regs)
		if err != nil {
			return nil, err
		}
		rd[r.Field] = float64(raw) * r.Scale
	}
	return rd, nil
}

// Encode is Decode's inverse, for emulators: it rounds each value of rd to
// its register's resolution and returns the Span's registers as 16-bit
// words in wire order. Fields absent from rd read as zero; values beyond a
// register's range saturate.
func (m *Map) Encode(rd Reading) []uint16 {
	first, n := m.Span()
	out := make([]uint16, n)
	for _, r := range m.Registers {
		v, ok := rd[r.Field]
		if !ok || math.IsNaN(v) {
			continue
		}
		raw := math.Round(v / r.Scale)
		bits := 16 * r.Words
		var lo, hi float64
		if r.Signed {
			lo, hi = -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1)-1
		} else {
			lo, hi = 0, math.Ldexp(1, bits)-1
		}
		raw = math.Max(lo, math.Min(hi, raw))
		u := uint32(int64(raw))
		at := int(r.Offset - first)
		switch r.Words {
		case 1:
			out[at] = uint16(u)
		case 2:
			hiw, low := uint16(u>>16), uint16(u)
			if m.LowWordFirst {
				hiw, low = low, hiw
			}
			out[at], out[at+1] = hiw, low
		}
	}
	return out
}
