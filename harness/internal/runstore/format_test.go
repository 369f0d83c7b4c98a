package runstore

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/targets"
)

// format1Dir is a run directory in the first format: run.json without
// "format", written while run.json embedded meters.Info, targets.Info and
// meters.Report. It was made on 2026-12-04 by the harness of that time:
//
//	harness meters emulate pmd-usb -watts 110,20,5,1 -vanish-after 5s -vanish-for 1500ms -link /tmp/rsfix/pmd &
//	harness run format1.yaml   # the scenario.yaml kept beside it
//
// and then trimmed: samples.csv keeps every 30th pmd-usb reading and the
// two around the gap, and summary.json (redone from the raw files) was
// dropped.
const format1Dir = "testdata/format1"

// TestReadFormat1 reads the first format with today's types: every field
// that run.json holds comes back, under the same name.
func TestReadFormat1(t *testing.T) {
	run, err := Load(format1Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Warnings) > 0 {
		t.Errorf("warnings: %q", run.Warnings)
	}
	m := run.Meta
	if m.Format != 1 {
		t.Errorf("format = %d, want 1 for a run.json without it", m.Format)
	}
	if m.Status != StatusComplete || len(m.Phases) != 8 || len(run.Requests) != 250 || len(run.Samples) != 508 {
		t.Errorf("status %q, %d phases, %d requests, %d samples; want complete, 8, 250, 508", m.Status, len(m.Phases), len(run.Requests), len(run.Samples))
	}

	wantTargets := []struct{ name, mode string }{{"wasm", "warm"}, {"wasm-cold", "cold"}}
	if len(m.Targets) != len(wantTargets) {
		t.Fatalf("targets = %+v", m.Targets)
	}
	for i, w := range wantTargets {
		got := m.Targets[i]
		if got.Name != w.name || got.Kind != "wasm" || got.Mode != w.mode || got.Function != "fibonacci" || got.URL == "" || got.Report["platform"] != "purify (wazero)" {
			t.Errorf("target %d = %+v, want %s (wasm, %s, fibonacci) with a URL and a report", i, got, w.name, w.mode)
		}
	}

	if len(m.Meters) != 2 {
		t.Fatalf("meters = %+v", m.Meters)
	}
	est, pmd := m.Meters[0], m.Meters[1]
	if est.Name != "estimate:rate=10" || est.Driver != "estimate" || est.Kind != MeterModel || est.Label != "estimate:rate=10 (model)" ||
		len(est.Channels) != 1 || !est.Channels[0].InTotal || est.Report == nil || est.Report.Counters["samples"] != 84 || len(est.Report.Warnings) != 1 {
		t.Errorf("estimate meter = %+v", est)
	}
	if pmd.Kind != MeterMeasured || pmd.Driver != "pmd-usb" || len(pmd.Channels) != 4 || pmd.Channels[2].Name != "EPS1 12V" || !strings.Contains(pmd.Description, "PMD-USB") {
		t.Errorf("pmd-usb meter = %+v", pmd)
	}
	r := pmd.Report
	if r == nil || len(r.Gaps) != 1 || r.ClockFit == nil {
		t.Fatalf("pmd-usb report = %+v, want a gap and a clock fit", r)
	}
	gap := Gap{
		Start:  time.Date(2026, 12, 4, 20, 28, 6, 865010373, time.UTC),
		End:    time.Date(2026, 12, 4, 20, 28, 9, 389196633, time.UTC),
		Reason: "device lost: pmd-usb: no data for 2s",
	}
	if !r.Gaps[0].Start.Equal(gap.Start) || !r.Gaps[0].End.Equal(gap.End) || r.Gaps[0].Reason != gap.Reason {
		t.Errorf("gap = %+v, want %+v", r.Gaps[0], gap)
	}
	if r.ClockFit.Points != 792 || r.ClockFit.DriftPPM > -88 || r.ClockFit.ResidualRMSNs < 2e5 || r.Counters["disconnects"] != 1 || r.Details["baud"] != 115200.0 {
		t.Errorf("clock fit %+v, counters %v, details %v", r.ClockFit, r.Counters, r.Details)
	}

	// Nothing is lost: written back, run.json is the file read, plus its
	// format.
	var want, got map[string]any
	data, err := os.ReadFile(filepath.Join(format1Dir, RunFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	want["format"] = 1.0
	back, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(back, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("run.json %q written back as\n%v\nwant\n%v", k, got[k], want[k])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("run.json written back has %q, which the file had not", k)
			}
		}
	}
}

// TestFormatWritten: a run directory written now says its format, and
// one from a newer harness is refused rather than misread.
func TestFormatWritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	w, err := Create(dir, nil, Meta{ID: "run", Format: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, RunFile))
	if !strings.Contains(string(data), `"format": 2`) {
		t.Errorf("run.json lacks \"format\": 2:\n%s", data)
	}
	run, err := Load(dir)
	if err != nil || run.Meta.Format != Format {
		t.Fatalf("Load: format %v, %v", run, err)
	}

	newer := strings.Replace(string(data), `"format": 2`, `"format": 3`, 1)
	if err := os.WriteFile(filepath.Join(dir, RunFile), []byte(newer), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), "format 3") {
		t.Errorf("Load of format 3: %v, want ErrNewerFormat naming it", err)
	}
}

func TestConvert(t *testing.T) {
	start := time.Unix(100, 0).UTC()
	info := meters.Info{
		Name: "pmd-usb:/dev/ttyUSB0", Driver: "pmd-usb", Kind: meters.Measured, Description: "PMD-USB",
		Channels:  []meters.Channel{{Name: "EPS1 12V", InTotal: true}, {Name: "core", InTotal: false}},
		Precision: meters.Precision{PowerStepW: 0.1, EnergyStepJ: 3600, RelError: 0.02, Source: "datasheet"},
	}
	rep := meters.Report{
		Gaps:     []meters.Gap{{Start: start, End: start.Add(time.Second), Reason: "unplugged"}},
		Counters: map[string]int64{"disconnects": 1},
		ClockFit: &meters.ClockFit{OffsetNs: 1, DriftPPM: 2, ResidualRMSNs: 3, ResidualMaxNs: 4, Points: 5},
		Warnings: []string{"w"},
		Details:  map[string]any{"baud": 115200},
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"meter", MeterMetaFrom(info), MeterMeta{
			Name: "pmd-usb:/dev/ttyUSB0", Driver: "pmd-usb", Kind: MeterMeasured, Description: "PMD-USB", Label: "pmd-usb:/dev/ttyUSB0",
			Channels:  []Channel{{Name: "EPS1 12V", InTotal: true}, {Name: "core", InTotal: false}},
			Precision: Precision{PowerStepW: 0.1, EnergyStepJ: 3600, RelError: 0.02, Source: "datasheet"},
		}},
		{"model meter", MeterMetaFrom(meters.Info{Name: "estimate", Kind: meters.Model}), MeterMeta{Name: "estimate", Kind: MeterModel, Label: "estimate (model)"}},
		{"report", MeterReportFrom(rep), &MeterReport{
			Gaps:     []Gap{{Start: start, End: start.Add(time.Second), Reason: "unplugged"}},
			Counters: map[string]int64{"disconnects": 1},
			ClockFit: &ClockFit{OffsetNs: 1, DriftPPM: 2, ResidualRMSNs: 3, ResidualMaxNs: 4, Points: 5},
			Warnings: []string{"w"},
			Details:  map[string]any{"baud": 115200},
		}},
		{"empty report", MeterReportFrom(meters.Report{}), &MeterReport{}},
		{"target", TargetMetaFrom(targets.Info{Name: "w", Kind: "wasm", Mode: targets.Prewarmed, Function: "memes"}),
			TargetMeta{Name: "w", Kind: "wasm", Mode: "prewarmed", Function: "memes"}},
		{"target's build", TargetMetaFrom(targets.Info{Name: "r", Kind: "wasm", Mode: targets.Cold, Function: "prime", Variant: "rust", Language: "Rust"}),
			TargetMeta{Name: "r", Kind: "wasm", Mode: "cold", Function: "prime", Variant: "rust", Language: "Rust"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", tt.got, tt.want)
			}
		})
	}
}
