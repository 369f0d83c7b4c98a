package powersensor3

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"

	"github.com/academemes/harness/meters/serial/emulate"
	"github.com/academemes/harness/meters/serial/serialtest"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "", "\n", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The example frame of the protocol notes: T = 0x2A5, S0..S3 = 512, 326,
// 510, 1000, the rest 0.
const exampleFrame = "FA 65 | 88 00 | 95 06 | A7 3E | BF 28 | C0 00 | D0 00 | E0 00 | F0 00"

func collect(d *Decoder, p []byte) (frames []Frame, stops int) {
	d.Feed(p, func(ev Event, f *Frame) {
		if ev == EventStop {
			stops++
			return
		}
		frames = append(frames, *f)
	})
	return
}

func TestDecodeKnownStreams(t *testing.T) {
	want := Frame{T: 0x2A5, Levels: [8]uint16{512, 326, 510, 1000}}
	marked := want
	marked.Marker = true
	cases := []struct {
		name   string
		stream string
		frames []Frame
		stops  int
		stats  Stats
	}{
		{"one frame", exampleFrame, []Frame{want}, 0, Stats{Frames: 1}},
		{"marker on sensor 0", strings.Replace(exampleFrame, "88 00", "88 40", 1), []Frame{marked}, 0, Stats{Frames: 1}},
		{"frame then stop sequence then trailing frame", exampleFrame + "FF 3F FF 3F" + exampleFrame, []Frame{want, want}, 2, Stats{Frames: 2, Stops: 2}},
		{"sensor 7 at 1023 inside a frame is a level", "FA 65 88 00 95 06 A7 3E BF 28 C0 00 D0 00 E0 00 FF 3F",
			[]Frame{{T: 0x2A5, Levels: [8]uint16{512, 326, 510, 1000, 0, 0, 0, 1023}}}, 0, Stats{Frames: 1}},
		{"words before the first timestamp are rejected", "C0 00 D0 00 " + exampleFrame, []Frame{want}, 0, Stats{Frames: 1, RejectedWords: 2}},
		{"lost first byte of a word: one byte dropped, frame broken", "FA 65 88 00 06 A7 3E BF 28 C0 00 D0 00 E0 00 F0 00" + exampleFrame,
			[]Frame{want}, 0, Stats{Frames: 1, DroppedBytes: 1, BrokenFrames: 1, RejectedWords: 6}},
		{"lost second byte: resync by one byte", "FA 65 88 95 06 A7 3E BF 28 C0 00 D0 00 E0 00 F0 00" + exampleFrame,
			[]Frame{want}, 0, Stats{Frames: 1, DroppedBytes: 1, BrokenFrames: 1, RejectedWords: 7}},
		{"missing sensor word", "FA 65 88 00 95 06 BF 28 C0 00 D0 00 E0 00 F0 00" + exampleFrame,
			[]Frame{want}, 0, Stats{Frames: 1, BrokenFrames: 1, RejectedWords: 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := unhex(t, tc.stream)
			for _, chunk := range []int{len(p), 1, 7} { // any chunking gives the same result
				var d Decoder
				var frames []Frame
				stops := 0
				for i := 0; i < len(p); i += chunk {
					f, s := collect(&d, p[i:min(i+chunk, len(p))])
					frames, stops = append(frames, f...), stops+s
				}
				if len(frames) != len(tc.frames) {
					t.Fatalf("chunk %d: %d frames %+v, want %d", chunk, len(frames), frames, len(tc.frames))
				}
				for i := range frames {
					if frames[i] != tc.frames[i] {
						t.Errorf("chunk %d: frame %d = %+v, want %+v", chunk, i, frames[i], tc.frames[i])
					}
				}
				d.Stats.Bytes = 0
				if stops != tc.stops || d.Stats != tc.stats {
					t.Errorf("chunk %d: stops %d stats %+v, want %d %+v", chunk, stops, d.Stats, tc.stops, tc.stats)
				}
			}
		})
	}
}

func TestEncodeFrameRoundTrip(t *testing.T) {
	f := Frame{T: 0x2A5, Levels: [8]uint16{512, 326, 510, 1000}}
	if got := EncodeFrame(nil, f); !bytes.Equal(got, unhex(t, exampleFrame)) {
		t.Errorf("EncodeFrame = % X, want %s", got, exampleFrame)
	}
}

// TestResyncAfterCorruption feeds a long stream with a byte dropped or
// flipped every so often: every frame the fault did not touch comes out.
func TestResyncAfterCorruption(t *testing.T) {
	var clean []byte
	const n = 2000
	for i := 0; i < n; i++ {
		f := Frame{T: uint16(i * 50 & 0x3FF)}
		for s := range f.Levels {
			f.Levels[s] = uint16((i*7 + s*100) % 1000)
		}
		clean = EncodeFrame(clean, f)
	}
	cases := []struct {
		name  string
		fault func(i int, b byte) (byte, bool)
		every int
	}{
		{"drop every 97th byte", func(int, byte) (byte, bool) { return 0, false }, 97},
		{"flip every 101st byte", func(_ int, b byte) (byte, bool) { return b ^ 0xA5, true }, 101},
		{"set top bit every 89th byte", func(_ int, b byte) (byte, bool) { return b | 0x80, true }, 89},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var bad []byte
			faults := 0
			for i, b := range clean {
				if i%tc.every == tc.every-1 {
					faults++
					if nb, keep := tc.fault(i, b); keep {
						bad = append(bad, nb)
					}
					continue
				}
				bad = append(bad, b)
			}
			var d Decoder
			frames, _ := collect(&d, bad)
			// Each fault costs at most two frames (the one it hits and, when
			// it forges a timestamp, the next); a flipped level inside the
			// sync rules may pass as a wrong level but never shifts frames.
			if len(frames) < n-2*faults {
				t.Errorf("%d frames out of %d with %d faults; stats %+v", len(frames), n, faults, d.Stats)
			}
			if d.Stats.BrokenFrames == 0 && d.Stats.DroppedBytes == 0 {
				t.Errorf("faults went unnoticed: %+v", d.Stats)
			}
		})
	}
}

func TestConversion(t *testing.T) {
	cur, _ := ParseSensor(EncodeSensor("MLX10", "GPU12V", 1.65, 0.120, true))
	volt, _ := ParseSensor(EncodeSensor("voltage", "GPU12V", 0, 0.0877, true))
	inv, _ := ParseSensor(EncodeSensor("MLX10", "GPU12V", 1.65, -0.120, true))
	cases := []struct {
		name  string
		s     Sensor
		level uint16
		want  float64
	}{
		{"current sensor at 512", cur, 512, 0.0134408474},
		{"voltage sensor at 326", volt, 326, 11.99102402},
		{"negative sensitivity inverts", inv, 512, -0.0134408474},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Value(tc.level); math.Abs(got-tc.want) > 1e-6 {
				t.Errorf("Value(%d) = %.10f, want %.10f", tc.level, got, tc.want)
			}
		})
	}
	if !bytes.Equal(EncodeSensor("MLX10", "GPU12V", 1.65, 0.120, true), unhex(t,
		"4D4C5831300000000000000000000000 47505531325600000000000000000000 3333D33F 8FC2F53D 01")) {
		t.Error("EncodeSensor differs from the protocol notes' example record")
	}
}

func TestUnwrap(t *testing.T) {
	var u Unwrapper
	steps := []struct {
		t       uint16
		hostGap int64
		want    int64
	}{{1000, 0, 0}, {26, 0, 50}, {76, 0, 100}, {76, 0, 100}, {100, 5000, 5244}}
	for i, s := range steps {
		if got := u.Next(s.t, s.hostGap); got != s.want {
			t.Errorf("step %d: Next(%d, %d) = %d, want %d", i, s.t, s.hostGap, got, s.want)
		}
	}
}

func TestHandshakeTranscript(t *testing.T) {
	cfg := emulate.DefaultPowerSensor3Config(2)
	steps := []serialtest.Step{{Host: []byte("T")}, {Host: []byte("V"), Dev: []byte("F411-1.6.1\r\n")}, {Host: []byte("R"), Dev: cfg[0][:]}}
	for i := 1; i < 8; i++ {
		steps = append(steps, serialtest.Step{Host: []byte("s"), Dev: cfg[i][:]})
	}
	steps = append(steps, serialtest.Step{Host: []byte("s"), Dev: []byte("D")})
	s := &serialtest.Script{Steps: steps}
	info, err := Handshake(s, serialtest.NoSleep)
	if err != nil {
		t.Fatalf("handshake: %v (script: %v)", err, s.Err)
	}
	if !bytes.Equal(s.Wrote, s.HostBytes()) {
		t.Errorf("host wrote %q, want %q", s.Wrote, s.HostBytes())
	}
	if want := "TVRssssssss"; string(s.Wrote) != want {
		t.Errorf("host wrote %q, want %q", s.Wrote, want)
	}
	if info.Version != "F411-1.6.1" {
		t.Errorf("version %q", info.Version)
	}
	pairs, warn := info.Config.ActivePairs()
	if len(pairs) != 2 || len(warn) != 0 || info.Config.PairName(1) != "EPS12V-2" {
		t.Errorf("pairs %v warn %v name %q", pairs, warn, info.Config.PairName(1))
	}

	bad := []struct {
		name  string
		steps []serialtest.Step
	}{
		{"old firmware", []serialtest.Step{{Host: []byte("T")}, {Host: []byte("V"), Dev: []byte("Firmware version: F411-1.2.1\r\n")}}},
		{"not a PowerSensor3", []serialtest.Step{{Host: []byte("T")}, {Host: []byte("V"), Dev: []byte("BENCHLAB\x00\r\n")}}},
		{"no D after the records", append(append([]serialtest.Step(nil), steps[:len(steps)-1]...), serialtest.Step{Host: []byte("s"), Dev: []byte("X")})},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Handshake(&serialtest.Script{Steps: tc.steps}, serialtest.NoSleep); err == nil {
				t.Error("handshake succeeded, want an error")
			}
		})
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add(unhex(f, exampleFrame))
	f.Add(unhex(f, exampleFrame+"FF 3F FF 3F"+exampleFrame))
	f.Add(unhex(f, "FA 65 88 95 06 A7 3E"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		var whole, split Decoder
		a, sa := collect(&whole, p)
		var b []Frame
		sb := 0
		for i := 0; i < len(p); i += 3 {
			fr, s := collect(&split, p[i:min(i+3, len(p))])
			b, sb = append(b, fr...), sb+s
		}
		if len(a) != len(b) || sa != sb || whole.Stats != split.Stats {
			t.Fatalf("chunking changed the result: %d/%d frames, %+v vs %+v", len(a), len(b), whole.Stats, split.Stats)
		}
		for _, fr := range a {
			if fr.T > 1023 {
				t.Fatalf("timestamp %d out of range", fr.T)
			}
			for _, l := range fr.Levels {
				if l > 1023 {
					t.Fatalf("level %d out of range", l)
				}
			}
			// A decoded frame re-encodes to bytes that decode to itself.
			var d Decoder
			again, _ := collect(&d, EncodeFrame(nil, fr))
			if len(again) != 1 || again[0] != fr {
				if fr.Levels[7] != 1023 || len(again) != 1 {
					t.Fatalf("round trip of %+v gave %+v", fr, again)
				}
			}
		}
		if whole.Stats.Frames*FrameSize > int64(len(p)) {
			t.Fatalf("%d frames from %d bytes", whole.Stats.Frames, len(p))
		}
	})
}
