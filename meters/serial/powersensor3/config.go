package powersensor3

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// RecordSize is the size of one sensor's configuration record ("EEPROM")
// since firmware v1.3.0: type[16], pairName[16], vref f32, sensitivity f32,
// inUse u8, packed, little-endian.
const RecordSize = 41

// Sensor is one sensor's stored calibration.
type Sensor struct {
	Type     string  // "MLX10", "voltage", ...
	PairName string  // the same on both sensors of a pair
	Vref     float32 // zero-offset voltage at the ADC input, V
	// Sensitivity is V/A for current sensors and V_adc/V_rail for voltage
	// sensors; a negative value inverts the polarity.
	Sensitivity float32
	InUse       bool
	// Raw is the record as read, bytes after the strings' NUL included.
	Raw [RecordSize]byte
}

// Config is the 8 sensor records the device stores.
type Config [Sensors]Sensor

// ParseSensor decodes one 41-byte record. A name without a NUL in its 16
// bytes becomes "INVALID", as the host library does.
func ParseSensor(rec []byte) (Sensor, error) {
	if len(rec) != RecordSize {
		return Sensor{}, fmt.Errorf("powersensor3 sensor record: %d bytes, want %d", len(rec), RecordSize)
	}
	var s Sensor
	copy(s.Raw[:], rec)
	s.Type = cstring(rec[0:16])
	s.PairName = cstring(rec[16:32])
	s.Vref = math.Float32frombits(binary.LittleEndian.Uint32(rec[32:36]))
	s.Sensitivity = math.Float32frombits(binary.LittleEndian.Uint32(rec[36:40]))
	s.InUse = rec[40] != 0
	return s, nil
}

func cstring(b []byte) string {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "INVALID"
	}
	return string(b[:i])
}

// EncodeSensor builds a 41-byte record with zero padding after the names.
func EncodeSensor(typ, pair string, vref, sensitivity float32, inUse bool) []byte {
	rec := make([]byte, RecordSize)
	copy(rec[0:15], typ)
	copy(rec[16:31], pair)
	binary.LittleEndian.PutUint32(rec[32:], math.Float32bits(vref))
	binary.LittleEndian.PutUint32(rec[36:], math.Float32bits(sensitivity))
	if inUse {
		rec[40] = 1
	}
	return rec
}

// Value converts a raw level to amperes (even sensors) or volts (odd), in
// single precision as the host library's Sensor::updateLevel does:
// (3.3f * level / 1023u - vref) / sensitivity, then widened to double.
func (s Sensor) Value(level uint16) float64 {
	const voltage float32 = 3.3
	v := (voltage*float32(level)/float32(1023) - s.Vref) / s.Sensitivity
	return float64(v)
}

// ActivePairs lists the pairs whose current and voltage sensors are both in
// use: the host library's rule. A half-enabled pair is reported in warn.
func (c *Config) ActivePairs() (pairs []int, warn []string) {
	for p := 0; p < Pairs; p++ {
		i, v := c[2*p].InUse, c[2*p+1].InUse
		switch {
		case i && v:
			pairs = append(pairs, p)
		case i != v:
			warn = append(warn, fmt.Sprintf("pair %d: only one of sensors %d and %d is in use; pair ignored (the host library calls this an incompatible pair)", p, 2*p, 2*p+1))
		}
	}
	return pairs, warn
}

// PairName is the name of pair p: the current sensor's pair name, as
// getPairName returns, or "pair p" when empty.
func (c *Config) PairName(p int) string {
	if n := c[2*p].PairName; n != "" && n != "INVALID" {
		return n
	}
	return fmt.Sprintf("pair %d", p)
}

// Watts converts a frame's levels for pair p to power, as the host's
// updateSensorPairs does: current * voltage in double precision.
func (c *Config) Watts(f *Frame, p int) float64 {
	return c[2*p].Value(f.Levels[2*p]) * c[2*p+1].Value(f.Levels[2*p+1])
}

// adcVolts is one step of the 10-bit ADC on its 3.3 V reference.
const adcVolts = 3.3 / 1023

// span is what one step of a sensor's level is in its unit (A or V), and
// the largest magnitude it can read, from level 0 or 1023. Both are 0 for
// a sensor without a sensitivity.
func (s Sensor) span() (step, full float64) {
	sens := math.Abs(float64(s.Sensitivity))
	if sens == 0 {
		return 0, 0
	}
	vref := float64(s.Vref)
	return adcVolts / sens, max(math.Abs(3.3-vref), math.Abs(vref)) / sens
}

// PairScale is what pair p can resolve and reach, from its calibration:
// fullScaleW is the power at both sensors' full scale, and stepW the
// largest change one ADC step of current and one of voltage make to a
// reading's power anywhere in that range (ΔI·V_full + ΔV·I_full). Both 0
// when a sensitivity is 0.
func (c *Config) PairScale(p int) (stepW, fullScaleW float64) {
	di, fi := c[2*p].span()
	dv, fv := c[2*p+1].span()
	return di*fv + dv*fi, fi * fv
}

// Saturated reports whether a sensor of pair p reads level 0 or 1023 in
// f: at the end of its range, where the reading may be clipped.
func (c *Config) Saturated(f *Frame, p int) bool {
	for _, l := range f.Levels[2*p : 2*p+2] {
		if l == 0 || l == 1023 {
			return true
		}
	}
	return false
}
