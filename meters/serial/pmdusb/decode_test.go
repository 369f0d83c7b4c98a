package pmdusb

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/academemes/harness/meters/serial/serialtest"
)

func stream(l Layout, n int, period uint32) ([]byte, []Record) {
	var out []byte
	var recs []Record
	for i := 0; i < n; i++ {
		r := Record{TS: uint32(i) * period}
		for ch := 0; ch < AdcChannels; ch++ {
			if ch%2 == 0 {
				r.Raw[ch] = int16(1585 + i%3) // 12 V
			} else {
				r.Raw[ch] = int16(205 + (i*7+ch)%40) // ~10 A, varying
			}
		}
		recs = append(recs, r)
		out = EncodeRecord(out, l, &r)
	}
	return out, recs
}

func TestRaw12(t *testing.T) {
	cases := []struct {
		name   string
		lo, hi byte
		want   int16
	}{{"12 V", 0x10, 0x63, 1585}, {"10 A", 0xD0, 0x0C, 205}, {"-3 LSB", 0xD0, 0xFF, -3}}
	for _, tc := range cases {
		if got := Raw12(tc.lo, tc.hi); got != tc.want {
			t.Errorf("%s: Raw12(%#x, %#x) = %d, want %d", tc.name, tc.lo, tc.hi, got, tc.want)
		}
	}
}

func TestDecodeLockAndResync(t *testing.T) {
	layouts := []struct {
		name string
		l    Layout
	}{
		{"u32 timestamp, all channels", Layout{TSBytes: 4, Mask: 0xFF}},
		{"u16 timestamp, EPS1", Layout{TSBytes: 2, Mask: 0x30}},
		// Without a timestamp, a record of several connectors can lock on a
		// rotation by whole connectors (every word stays plausible); one
		// connector has no such ambiguity. See firmware-notes/pmd-usb.md.
		{"no timestamp, EPS1", Layout{TSBytes: 0, Mask: 0x30}},
	}
	faults := []struct {
		name string
		edit func([]byte) []byte
	}{
		{"clean", func(b []byte) []byte { return b }},
		{"starts mid-record", func(b []byte) []byte { return b[3:] }},
		{"one byte lost at 1000", func(b []byte) []byte { return append(append([]byte(nil), b[:1000]...), b[1001:]...) }},
		{"three bytes lost at 1500", func(b []byte) []byte { return append(append([]byte(nil), b[:1500]...), b[1503:]...) }},
	}
	for _, lt := range layouts {
		for _, ft := range faults {
			t.Run(lt.name+"/"+ft.name, func(t *testing.T) {
				clean, recs := stream(lt.l, 400, 651)
				in := ft.edit(clean)
				d := Decoder{Layout: lt.l}
				var got []Record
				for i := 0; i < len(in); i += 37 {
					d.Feed(in[i:min(i+37, len(in))], func(r *Record) { got = append(got, *r) })
				}
				// Every delivered record must be a real one, but for the one
				// that straddles a loss: its head is right, its tail shifted,
				// and it may pass every check before the next one fails.
				bad := 0
				for _, g := range got {
					ok := false
					for _, r := range recs {
						if (lt.l.TSBytes == 0 || r.TS&(1<<(8*lt.l.TSBytes)-1) == g.TS) && sameData(lt.l, r, g) {
							ok = true
							break
						}
					}
					if !ok {
						bad++
					}
				}
				// Without timestamps the jump check needs three records running.
				allowed := 0
				if lt.l.TSBytes == 0 && ft.name != "clean" {
					allowed = 0
				}
				if bad > allowed {
					t.Fatalf("%d decoded records were never sent, allowed %d (stats %+v)", bad, allowed, d.Stats)
				}
				if len(got) < len(recs)-2*(d.Layout.RecordLen()+d.LockRecords) {
					t.Errorf("%d of %d records delivered; stats %+v", len(got), len(recs), d.Stats)
				}
				if ft.name != "clean" && d.Stats.DroppedBytes == 0 && d.Stats.RejectedRecords == 0 {
					t.Errorf("fault not noticed: %+v", d.Stats)
				}
			})
		}
	}
}

func sameData(l Layout, a, b Record) bool {
	for ch := 0; ch < AdcChannels; ch++ {
		if l.Mask&(1<<ch) != 0 && a.Raw[ch] != b.Raw[ch] {
			return false
		}
	}
	return true
}

func TestHandshakeTranscript(t *testing.T) {
	cfg := []byte{0x05, 0x00, 0xEB, 0x75, 1, 0xFE, 0, 3, 0xFF, 0, 2, 0xFD, 0x00, 0x00, 0x3C, 0x00, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	s := &serialtest.Script{Steps: []serialtest.Step{
		{Host: []byte{0x07, 0, 0, 0}},
		{Host: []byte{0x00}, Dev: []byte("ElmorLabs PMD-USB")},
		{Host: []byte{0x01}, Dev: []byte{0xEE, 0x0A, 0x06}},
		{Host: []byte{0x04}, Dev: cfg},
	}}
	info, err := Handshake(s, serialtest.NoSleep, 0)
	if err != nil {
		t.Fatalf("%v (script %v)", err, s.Err)
	}
	if !bytes.Equal(s.Wrote, s.HostBytes()) {
		t.Errorf("host wrote % X, want % X", s.Wrote, s.HostBytes())
	}
	if want := [8]int8{1, -2, 0, 3, -1, 0, 2, -3}; info.AdcOffset != want || info.Firmware != 6 {
		t.Errorf("offsets %v fw %d, want %v fw 6", info.AdcOffset, info.Firmware, want)
	}
	if got, want := UARTCommand(460800), []byte{0x08, 0x00, 0x08, 0x07, 0x00, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}; !bytes.Equal(got, want) {
		t.Errorf("UARTCommand(460800) = % X, want % X", got, want)
	}
	bad := []struct {
		name  string
		steps []serialtest.Step
	}{
		{"wrong welcome", []serialtest.Step{{Host: []byte{7, 0, 0, 0}}, {Host: []byte{0}, Dev: []byte("ElmorLabs BENCHLAB")}}},
		{"wrong id", []serialtest.Step{{Host: []byte{7, 0, 0, 0}}, {Host: []byte{0}, Dev: []byte("ElmorLabs PMD-USB")}, {Host: []byte{1}, Dev: []byte{0xEE, 0x10, 1}}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Handshake(&serialtest.Script{Steps: tc.steps}, serialtest.NoSleep, 0); err == nil {
				t.Error("handshake succeeded, want an error")
			}
		})
	}
}

func TestConvert(t *testing.T) {
	var off [8]int8
	off[0], off[1] = 1, -5
	if v := Convert(0, 1585, off); v < 11.99 || v > 12.01 {
		t.Errorf("V = %v, want (1585+1)*0.007568 = 12.003", v)
	}
	if a := Convert(1, 210, off); a-205*AmpLSB > 1e-9 || 205*AmpLSB-a > 1e-9 {
		t.Errorf("I = %v, want %v", a, 205*AmpLSB)
	}
}

// maxFuzzInput bounds FuzzDecoder's input. Every input that finds new
// coverage is minimized by a pass that is quadratic in its length
// (golang/go#48820), at about 0.1 ms a run under coverage instrumentation
// whatever the decoder costs: 1 KiB took the fuzzer's whole minute of
// minimization per input, and the fuzzer stood still after a few inputs.
// 512 bytes still hold a lock with every layout (17 records of at most
// 20 bytes) and the records after it; with LockRecords fuzzed down to 2,
// most inputs lock and lose the lock several times.
const maxFuzzInput = 512

func FuzzDecoder(f *testing.F) {
	// Seeds are a few records long, for the same reason.
	seed := func(l Layout, n int, skip int) []byte { s, _ := stream(l, n, 651); return s[skip:] }
	f.Add(seed(Layout{TSBytes: 4, Mask: 0xFF}, 20, 0), byte(2), byte(0xFF), byte(15))
	f.Add(seed(Layout{TSBytes: 4, Mask: 0xFF}, 6, 5), byte(2), byte(0xFF), byte(2))
	f.Add(seed(Layout{TSBytes: 2, Mask: 0x30}, 8, 0), byte(1), byte(0x30), byte(3))
	f.Add(seed(Layout{TSBytes: 0, Mask: 0x30}, 8, 1), byte(0), byte(0x30), byte(3))
	f.Add([]byte{}, byte(1), byte(0x03), byte(0))
	f.Fuzz(func(t *testing.T, p []byte, ts, mask, lock byte) {
		if len(p) > maxFuzzInput {
			p = p[:maxFuzzInput]
		}
		l := Layout{TSBytes: []int{0, 2, 4}[int(ts)%3], Mask: mask}
		lockRecords := 1 + int(lock)%16
		d := Decoder{Layout: l, LockRecords: lockRecords}
		var whole []Record
		d.Feed(p, func(r *Record) { whole = append(whole, *r) })
		if R := l.RecordLen(); R > 0 && len(whole)*R > len(p) {
			t.Fatalf("%d records of %d bytes from %d bytes", len(whole), R, len(p))
		}
		if d.Stats.Records != int64(len(whole)) {
			t.Fatalf("stats say %d records, delivered %d", d.Stats.Records, len(whole))
		}
		// Bytes arrive from the port in reads of any size: cut into
		// pieces, the stream decodes the same.
		c := Decoder{Layout: l, LockRecords: lockRecords}
		var pieces []Record
		for i := 0; i < len(p); i += 7 {
			c.Feed(p[i:min(i+7, len(p))], func(r *Record) { pieces = append(pieces, *r) })
		}
		if !slices.Equal(whole, pieces) || c.Stats != d.Stats {
			t.Fatalf("fed in 7-byte pieces: %d records, %+v; whole: %d, %+v", len(pieces), c.Stats, len(whole), d.Stats)
		}
	})
}

// TestLockRecordsOne: a decoder told to examine one record per hunt
// examines two, the fewest that show a timestamp step; one alone made the
// hunt index an empty list of steps and panic.
func TestLockRecordsOne(t *testing.T) {
	l := Layout{TSBytes: 4, Mask: 0xFF}
	s, want := stream(l, 10, 651)
	d := Decoder{Layout: l, LockRecords: 1}
	var got []Record
	d.Feed(s, func(r *Record) { got = append(got, *r) })
	if len(got) < 7 || got[0].TS != want[0].TS {
		t.Fatalf("decoded %d records from %d, first %+v; want the first of them on", len(got), len(want), got)
	}
}

// TestResyncAllocates: hunting through bytes that hold no record, which it
// does at every offset, allocates nothing.
func TestResyncAllocates(t *testing.T) {
	p := make([]byte, 1024)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	d := Decoder{Layout: Layout{TSBytes: 4, Mask: 0xFF}}
	d.Feed(p, func(*Record) {}) // grows the buffer once
	if n := testing.AllocsPerRun(20, func() { d.Feed(p, func(*Record) {}) }); n > 0 {
		t.Errorf("%v allocations per 1 KiB of garbage, want none", n)
	}
}

func BenchmarkDecode(b *testing.B) {
	l := Layout{TSBytes: 4, Mask: 0xFF}
	s, _ := stream(l, 4096, 651)
	b.SetBytes(int64(len(s)))
	d := Decoder{Layout: l}
	n := 0
	for i := 0; i < b.N; i++ {
		d.Feed(s, func(*Record) { n++ })
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(n*AdcChannels)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkResync feeds bytes with no record in them, as a line at the
// wrong baud gives: every offset is hunted and none locks. The fuzzer's
// inputs are mostly such, and its minimizer runs them by the hundred
// thousand.
func BenchmarkResync(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := make([]byte, 1024)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	for _, l := range []Layout{{TSBytes: 4, Mask: 0xFF}, {TSBytes: 2, Mask: 0x30}, {TSBytes: 0, Mask: 0xAA}} {
		b.Run(fmt.Sprintf("ts%d-mask%02x", l.TSBytes, l.Mask), func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				d := Decoder{Layout: l}
				d.Feed(p, func(*Record) {})
			}
		})
	}
}

// steadyStream is n records as the emulator sends them at a constant load:
// every voltage at 12 V and the currents of 50, 30, 20 and 10 W, dithered
// by one LSB. Such currents have low nibbles below 8, so a lock one byte
// early decodes as plausible words, unlike stream's varying currents.
func steadyStream(l Layout, n int, period uint32) ([]byte, []Record) {
	amps := [PowerChannels]int16{85, 51, 34, 17}
	var out []byte
	var recs []Record
	for i := 0; i < n; i++ {
		r := Record{TS: 0x01000000 + uint32(i)*period}
		for p := 0; p < PowerChannels; p++ {
			r.Raw[2*p] = 1585
			r.Raw[2*p+1] = amps[p] + int16(i%2)
		}
		recs = append(recs, r)
		out = EncodeRecord(out, l, &r)
	}
	return out, recs
}

// TestDecodeCorruptedBytes flips bits of single bytes, as a noisy line
// does (the emulator's -corrupt XORs 0xA5), rather than removing them. A
// corrupted byte may spoil the record that holds it (one record with wrong
// data per faulty byte is allowed), but no record may come out with a
// timestamp that was never sent, and the records must come out in order:
// either would move the meter's device time. The exception is a timestamp's
// low byte: XOR 0xA5 moves it by 91 to 165 ticks (55 us at most), within
// the jitter the lock must allow, so such a record may pass with that
// error.
func TestDecodeCorruptedBytes(t *testing.T) {
	layouts := []struct {
		name   string
		l      Layout
		period uint32 // ticks per record at 115200 baud: 10 bits x R / 115200 x 3 MHz
	}{
		{"u32 timestamp, all channels", Layout{TSBytes: 4, Mask: 0xFF}, 5208},
		{"u16 timestamp, EPS1", Layout{TSBytes: 2, Mask: 0x30}, 1562},
	}
	// Each fault returns the byte indexes it corrupted.
	type fault func(b []byte, l Layout) []int
	xorAt := func(b []byte, i int) []int { b[i] ^= 0xA5; return []int{i} }
	// byteWith finds the first record from k on whose byte off has bit 7
	// set (or clear): XOR 0xA5 then lowers (or raises) that byte.
	byteWith := func(b []byte, R, k, off int, set bool) int {
		for ; ; k++ {
			if (b[k*R+off]&0x80 != 0) == set {
				return k*R + off
			}
		}
	}
	faults := []struct {
		name     string
		tsFields bool // corrupts a timestamp: no record may carry it
		edit     fault
	}{
		{"timestamp byte 1 raised", true, func(b []byte, l Layout) []int { return xorAt(b, byteWith(b, l.RecordLen(), 100, 1, false)) }},
		{"timestamp byte 1 lowered", true, func(b []byte, l Layout) []int { return xorAt(b, byteWith(b, l.RecordLen(), 100, 1, true)) }},
		{"timestamp byte 0", true, func(b []byte, l Layout) []int { return xorAt(b, 120*l.RecordLen()) }},
		{"top timestamp byte", true, func(b []byte, l Layout) []int { return xorAt(b, 100*l.RecordLen()+l.TSBytes-1) }},
		// A lock one byte early is then the only offset whose window
		// holds no corrupted record, and its timestamps step steadily.
		{"last byte of a record", false, func(b []byte, l Layout) []int { return xorAt(b, 101*l.RecordLen()-1) }},
		{"voltage low byte", false, func(b []byte, l Layout) []int { return xorAt(b, 101*l.RecordLen()-4) }},
		{"one byte in 997", false, func(b []byte, l Layout) []int {
			var at []int
			for i := 996; i < len(b); i += 997 {
				at = append(at, xorAt(b, i)...)
			}
			return at
		}},
	}
	for _, lt := range layouts {
		for _, ft := range faults {
			t.Run(lt.name+"/"+ft.name, func(t *testing.T) {
				in, recs := steadyStream(lt.l, 1000, lt.period)
				hit := ft.edit(in, lt.l)
				d := Decoder{Layout: lt.l}
				var got []Record
				for i := 0; i < len(in); i += 37 {
					d.Feed(in[i:min(i+37, len(in))], func(r *Record) { got = append(got, *r) })
				}
				mask := uint32(1)<<(8*lt.l.TSBytes) - 1
				// Walk the sent records alongside: each delivered one must be
				// a later sent record, at most 40 on (under one u16 wrap).
				j, wrongData := -1, 0
				for n, g := range got {
					k, lowByte := j+1, false
					for ; k < len(recs) && k <= j+40; k++ {
						if recs[k].TS&mask == g.TS {
							break
						}
						if (recs[k].TS^g.TS)&mask&^0xFF == 0 {
							lowByte = true
							break
						}
					}
					if k >= len(recs) || k > j+40 {
						t.Fatalf("delivered record %d (after sent record %d) has timestamp %#x, never sent in order (stats %+v)", n, j, g.TS, d.Stats)
					}
					if lowByte || !sameData(lt.l, recs[k], g) {
						wrongData++
					}
					j = k
				}
				if wrongData > len(hit) {
					t.Errorf("%d records with wrong data for %d corrupted bytes", wrongData, len(hit))
				}
				if ft.tsFields && wrongData > 0 && ft.name != "timestamp byte 0" {
					t.Errorf("%d records with wrong data from a corrupted timestamp", wrongData)
				}
				if lost := len(recs) - len(got); lost > len(hit)*(2*d.LockRecords+2) {
					t.Errorf("%d of %d records lost for %d corrupted bytes; stats %+v", lost, len(recs), len(hit), d.Stats)
				}
				t.Logf("%d of %d records, stats %+v", len(got), len(recs), d.Stats)
			})
		}
	}
}

// TestDecodeLostByteStraddle removes one byte at every position of a
// record in turn. The record that holds the loss keeps its timestamp and
// reads its tail one byte on: a word built from the high byte of one value
// and the low byte of the next, or from the next record's timestamp, which
// can pass every check made on the record itself. Only the record after it
// shows the loss (its timestamp is misaligned), so no record may be
// delivered before the one after it has passed too. The loss is put in
// five records running, so that the next timestamp's low byte, which the
// last word then reads as its high byte, takes both signs.
func TestDecodeLostByteStraddle(t *testing.T) {
	layouts := []struct {
		name   string
		l      Layout
		period uint32
	}{
		{"u32 timestamp, all channels", Layout{TSBytes: 4, Mask: 0xFF}, 5208},
		{"u16 timestamp, EPS1", Layout{TSBytes: 2, Mask: 0x30}, 1562},
		{"u16 timestamp, PCIE1 and EPS2", Layout{TSBytes: 2, Mask: 0xC3}, 2604},
	}
	for _, lt := range layouts {
		R := lt.l.RecordLen()
		for k := 0; k < R; k++ {
			t.Run(fmt.Sprintf("%s/byte %d of %d", lt.name, k, R), func(t *testing.T) {
				for lostIn := 200; lostIn < 205; lostIn++ {
					clean, recs := steadyStream(lt.l, 400, lt.period)
					at := lostIn*R + k
					in := append(append([]byte(nil), clean[:at]...), clean[at+1:]...)
					d := Decoder{Layout: lt.l}
					var got []Record
					for i := 0; i < len(in); i += 37 {
						d.Feed(in[i:min(i+37, len(in))], func(r *Record) { got = append(got, *r) })
					}
					mask := uint32(1)<<(8*lt.l.TSBytes) - 1
					j := -1
					for n, g := range got {
						k := j + 1
						for k < len(recs) && recs[k].TS&mask != g.TS {
							k++
						}
						if k == len(recs) {
							t.Fatalf("byte lost in record %d: delivered record %d (after sent record %d) has timestamp %#x, never sent in order", lostIn, n, j, g.TS)
						}
						if !sameData(lt.l, recs[k], g) {
							t.Errorf("byte lost in record %d: delivered record %d is sent record %d with other data: %v, sent %v (stats %+v)", lostIn, n, k, g.Raw, recs[k].Raw, d.Stats)
						}
						j = k
					}
					if lost := len(recs) - len(got); lost > 2*d.LockRecords+2 {
						t.Errorf("byte lost in record %d: %d of %d records lost; stats %+v", lostIn, lost, len(recs), d.Stats)
					}
				}
			})
		}
	}
}

// TestDecodeHeld checks what the driver dates a read by: the record held
// back for its successor, and its step from the last one delivered.
func TestDecodeHeld(t *testing.T) {
	cases := []struct {
		name      string
		l         Layout
		records   int
		delivered int64
		step      uint64
		follows   bool
	}{
		{"u32 timestamp", Layout{TSBytes: 4, Mask: 0xFF}, 40, 39, 651, true},
		{"u16 timestamp", Layout{TSBytes: 2, Mask: 0x30}, 40, 39, 651, true},
		{"no timestamp", Layout{TSBytes: 0, Mask: 0x30}, 40, 39, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, _ := stream(tc.l, tc.records, 651)
			d := Decoder{Layout: tc.l}
			// Split mid-record: the hold carries across reads.
			half := len(in)/2 + 1
			d.Feed(in[:half], func(*Record) {})
			d.Feed(in[half:], func(*Record) {})
			n, step, ok := d.Held()
			if d.Stats.Records != tc.delivered || n != 1 || step != tc.step || ok != tc.follows {
				t.Errorf("delivered %d, Held() = %d, %d, %v; want %d, 1, %d, %v", d.Stats.Records, n, step, ok, tc.delivered, tc.step, tc.follows)
			}
		})
	}
}

// TestDecodeLockedAllocs keeps the locked path, holding back included,
// free of allocations: it runs on every byte at up to 10,000 records/s.
func TestDecodeLockedAllocs(t *testing.T) {
	for _, l := range []Layout{{TSBytes: 4, Mask: 0xFF}, {TSBytes: 0, Mask: 0x30}} {
		in, _ := stream(l, 4000, 651)
		d := Decoder{Layout: l}
		d.Feed(in[:100*l.RecordLen()+3], func(*Record) {})
		pos, n := 100*l.RecordLen()+3, 0
		allocs := testing.AllocsPerRun(100, func() {
			d.Feed(in[pos:pos+97], func(*Record) { n++ })
			pos += 97
		})
		if allocs != 0 || n == 0 || d.Stats.Locks != 1 {
			t.Errorf("%+v: %v allocations a read, %d records, %d locks", l, allocs, n, d.Stats.Locks)
		}
	}
}
