package serialtest

import (
	"bytes"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
)

func TestScript(t *testing.T) {
	steps := []Step{{Host: []byte("V"), Dev: []byte("v1\n")}, {Host: []byte("RS")}}
	cases := []struct {
		name    string
		writes  []string
		wantErr bool
	}{
		{"whole transcript", []string{"V", "RS"}, false},
		{"split writes", []string{"VR", "S"}, false},
		{"wrong byte", []string{"X"}, true},
		{"past the end", []string{"V", "RS", "T"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Script{Steps: steps}
			var err error
			for _, w := range tc.writes {
				if _, err = s.Write([]byte(w)); err != nil {
					break
				}
			}
			if (err != nil) != tc.wantErr || (s.Err != nil) != tc.wantErr {
				t.Fatalf("err = %v, Err = %v, want error %v", err, s.Err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			buf := make([]byte, 8)
			n, err := s.Read(buf)
			if err != nil || string(buf[:n]) != "v1\n" {
				t.Errorf("read %q, %v; want %q", buf[:n], err, "v1\n")
			}
			if _, err := s.Read(buf); err == nil {
				t.Error("a read with nothing queued did not fail")
			}
			if !bytes.Equal(s.Wrote, s.HostBytes()) {
				t.Errorf("wrote %q, transcript %q", s.Wrote, s.HostBytes())
			}
		})
	}
}

func TestCollectorMeanWatts(t *testing.T) {
	t0 := time.Unix(100, 0)
	var c Collector
	for i, w := range []float64{99, 10, 20, 30, 40} {
		c.Emit(meters.Sample{Channel: i % 2, T: t0.Add(time.Duration(i) * time.Second), Watts: w})
	}
	got := c.MeanWatts(3, t0.Add(time.Second)) // the 99 W sample is before from
	want := []float64{30, 20, 0}               // ch0: 20, 40; ch1: 10, 30; ch2: none
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("channel %d: %v W, want %v W", i, got[i], want[i])
		}
	}
}
