package runstore

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWriteLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "20260101-000000-test")
	w, err := Create(dir, []byte("name: test\n"), Meta{ID: "20260101-000000-test", Scenario: "test", Started: time.Unix(1, 0).UTC(), Meters: []MeterMeta{{Name: "rapl"}}})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []Request{
		{Target: "wasm", Phase: "load", Rep: 0, Seq: 1, StartNs: 100, LatencyNs: 50, Status: 200, BytesIn: 10, BytesOut: 20, Cold: true, StartUpNs: 7},
		{Target: "docker, node", Phase: "load/n=3", Rep: 1, Seq: 2, StartNs: 200, LatencyNs: 60, Status: 0, Error: `dial tcp: "refused"`},
	}
	smps := []Sample{
		{Meter: "rapl", Channel: 0, TNs: 100, Watts: 1.5, Joules: math.NaN()},
		{Meter: "rapl", Channel: 1, TNs: 110, Watts: math.NaN(), Joules: 0.25},
	}
	var wg sync.WaitGroup
	for _, r := range reqs {
		wg.Add(1)
		go func() { defer wg.Done(); w.AddRequest(r) }()
	}
	wg.Wait()
	for _, s := range smps {
		if err := w.AddSample(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Update(func(m *Meta) { m.Status = StatusComplete }); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	run, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if run.Meta.Status != StatusComplete || run.Meta.ID != "20260101-000000-test" {
		t.Errorf("meta = %+v", run.Meta)
	}
	if string(run.Scenario) != "name: test\n" {
		t.Errorf("scenario = %q", run.Scenario)
	}
	if len(run.Requests) != 2 {
		t.Fatalf("got %d requests, want 2", len(run.Requests))
	}
	got := map[int64]Request{}
	for _, r := range run.Requests {
		got[r.Seq] = r
	}
	for _, want := range reqs {
		if got[want.Seq] != want {
			t.Errorf("request %d = %+v, want %+v", want.Seq, got[want.Seq], want)
		}
	}
	if len(run.Samples) != 2 || run.Samples[0].Watts != 1.5 || !math.IsNaN(run.Samples[0].Joules) || run.Samples[1].Joules != 0.25 {
		t.Errorf("samples = %+v", run.Samples)
	}
	data, _ := os.ReadFile(filepath.Join(dir, SamplesFile))
	if !strings.HasPrefix(string(data), "meter,channel,t_ns,watts,joules\nrapl,0,100,1.5,NaN\n") {
		t.Errorf("samples.csv = %q", data)
	}
}

func TestLoadTolerance(t *testing.T) {
	header := strings.Join(SamplesHeader, ",") + "\n"
	for _, tc := range []struct {
		name     string
		samples  string
		wantN    int
		wantErr  string
		wantWarn bool
	}{
		{"complete", header + "m,0,1,2,3\nm,0,2,2,3\n", 2, "", false},
		{"cut short at the end", header + "m,0,1,2,3\nm,0,2", 1, "", true},
		{"cut short inside a number", header + "m,0,1,2,3\nm,0,2,2,3", 1, "", true},
		{"no rows, header without its newline", strings.TrimSuffix(header, "\n"), 0, "", false},
		{"corrupt in the middle", header + "m,0,1,2,3\nm,0,x,2,3\nm,0,3,2,3\n", 0, "samples.csv:3: t_ns", false},
		{"wrong header", "a,b\n", 0, "header", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, RunFile), []byte(`{"id":"x","meters":[{"name":"m"}]}`), 0o644)
			os.WriteFile(filepath.Join(dir, RequestsFile), []byte(strings.Join(RequestsHeader, ",")+"\n"), 0o644)
			os.WriteFile(filepath.Join(dir, SamplesFile), []byte(tc.samples), 0o644)
			run, err := Load(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(run.Samples) != tc.wantN {
				t.Errorf("got %d samples, want %d", len(run.Samples), tc.wantN)
			}
			if (len(run.Warnings) > 0) != tc.wantWarn {
				t.Errorf("warnings = %v", run.Warnings)
			}
		})
	}
}

func TestLoadNotARun(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a run directory") {
		t.Fatalf("err = %v", err)
	}
}

// TestLoadKilledRun: a harness killed mid-phase leaves run.json saying
// running with the phase open; Load reads it as interrupted, the phase
// ending at the last row recorded, and the files readable by others.
func TestLoadKilledRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "20260101-000000-killed")
	w, err := Create(dir, []byte("name: killed\n"), Meta{ID: "20260101-000000-killed", Scenario: "killed", Meters: []MeterMeta{{Name: "m"}}})
	if err != nil {
		t.Fatal(err)
	}
	done := Phase{Target: "wasm", Name: PhaseIdle, StartNs: 1000, EndNs: 2000}
	open := Phase{Target: "wasm", Name: "load", StartNs: 2000}
	if err := w.Update(func(m *Meta) { m.Phases = append(m.Phases, done, open) }); err != nil {
		t.Fatal(err)
	}
	w.AddRequest(Request{Target: "wasm", Phase: "load", StartNs: 2100, LatencyNs: 400, Status: 200})
	w.AddRequest(Request{Target: "wasm", Phase: "load", StartNs: 2200, LatencyNs: 50, Status: 200})
	w.AddSample(Sample{Meter: "m", TNs: 2300, Watts: 5, Joules: math.NaN()})
	if err := w.Flush(); err != nil { // what a kill leaves: rows on disk, no Close
		t.Fatal(err)
	}

	run, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if run.Meta.Status != StatusInterrupted || len(run.Warnings) != 1 || !strings.Contains(run.Warnings[0], "killed") {
		t.Errorf("status %q, warnings %q; want interrupted with a warning", run.Meta.Status, run.Warnings)
	}
	got := run.Meta.Phases
	if len(got) != 2 || !reflect.DeepEqual(got[0], done) {
		t.Fatalf("phases = %+v", got)
	}
	if got[1].EndNs != 2500 || !got[1].Interrupted {
		t.Errorf("open phase read as %+v; want it to end at 2500 (the last request's end), interrupted", got[1])
	}
	if fi, err := os.Stat(filepath.Join(dir, RunFile)); err != nil || fi.Mode().Perm()&0o044 != 0o044 {
		t.Errorf("run.json mode %v (%v); want readable by group and others", fi.Mode(), err)
	}
}

// TestAppendSampleRow: the one writer of samples.csv rows quotes a meter
// name as encoding/csv reads it, and writes NaN as NaN.
func TestAppendSampleRow(t *testing.T) {
	tests := []struct {
		name  string
		meter string
		w, j  float64
		want  string
	}{
		{"plain", "rapl", 1.5, 0.25, "rapl,2,1000,1.5,0.25\n"},
		{"NaN", "rapl", math.NaN(), 0, "rapl,2,1000,NaN,0\n"},
		{"comma in the spec", "modbus:h:502?a=1,b=2", 1, 2, `"modbus:h:502?a=1,b=2",2,1000,1,2` + "\n"},
		{"quote in the spec", `pmd-usb:/dev/"x"`, 1, 2, `"pmd-usb:/dev/""x""",2,1000,1,2` + "\n"},
		{"leading space", " rapl", 1, 2, `" rapl",2,1000,1,2` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Sample{Meter: tt.meter, Channel: 2, TNs: 1000, Watts: tt.w, Joules: tt.j}
			got := string(AppendSampleRow(nil, s))
			if got != tt.want {
				t.Errorf("row = %q, want %q", got, tt.want)
			}
			rec, err := csv.NewReader(strings.NewReader(got)).Read()
			if err != nil {
				t.Fatal(err)
			}
			back, err := parseSample(rec)
			if err != nil || back.Meter != tt.meter || back.Watts != tt.w && !math.IsNaN(tt.w) {
				t.Errorf("read back as %+v (%v)", back, err)
			}
		})
	}
}

func TestRecordingPath(t *testing.T) {
	for _, tc := range []struct{ samples, want string }{
		{"rec.csv", "rec.meta.json"},
		{"out/pmd.usb.csv", "out/pmd.usb.meta.json"},
		{"rec", "rec.meta.json"},
	} {
		if got := RecordingPath(tc.samples); got != tc.want {
			t.Errorf("RecordingPath(%q) = %q, want %q", tc.samples, got, tc.want)
		}
	}
}
