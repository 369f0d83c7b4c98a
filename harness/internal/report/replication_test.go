package report

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/targets"
)

// nebulaRun writes a synthetic run of the study's scenario: a Rust Wasm
// target and a docker-node one (stdin method) run cold, sequentially, two
// inputs, with known start-ups and energies, and returns its directory.
// Extra targets serve the same function with the Rust build.
func nebulaRun(t testing.TB, dir string, reps int, extra ...synth.Target) string {
	t.Helper()
	cfg := synth.Config{
		Seed: 5, Name: "nebula", Reps: reps, Start: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC),
		Idle: 4 * time.Second, Warmup: time.Second, Load: 6 * time.Second, Cooldown: time.Second,
		Inputs: []string{"n=10", "n=20"}, Sequential: true, Pause: 10 * time.Millisecond,
		IdleW: 20, DriftW: 1,
		Targets: []synth.Target{
			{Name: "rust-fibonacci", Kind: "wasm", Mode: targets.Cold, JPerRequest: 0.01, EnergyCV: 0.1, LatencyMs: 2, LatencyCV: 0.2, ColdFraction: 1, StartUpMs: 0.5},
			{Name: "docker-fibonacci", Kind: "docker-node", Mode: targets.Cold, JPerRequest: 4, EnergyCV: 0.1, LatencyMs: 400, LatencyCV: 0.1, ColdFraction: 1, StartUpMs: 300},
		},
		Meters: []synth.Meter{{Name: "rapl", Kind: meters.Measured, RateHz: 20, Joules: true, Channels: 1}},
	}
	cfg.Targets = append(cfg.Targets, extra...)
	run, _ := synth.Generate(cfg)
	for i := range run.Meta.Targets {
		run.Meta.Targets[i].Function, run.Meta.Targets[i].Variant, run.Meta.Targets[i].Language = "fibonacci", "rust", "Rust"
	}
	run.Meta.Targets[1].Function, run.Meta.Targets[1].Variant, run.Meta.Targets[1].Language = "fibonacci", "node", "JavaScript"
	run.Meta.Targets[1].Report = map[string]any{"cold_start_method": "stdin"}
	rd := filepath.Join(dir, "runs", run.Meta.ID)
	if err := synth.WriteDir(rd, run); err != nil {
		t.Fatal(err)
	}
	return rd
}

func TestStudyFigures(t *testing.T) {
	st, err := LoadStudy()
	if err != nil {
		t.Fatalf("the embedded study figures: %v", err)
	}
	if st.Scenario != "nebula" || len(st.Figures) == 0 || !strings.Contains(st.Source, "Figures to beat") {
		t.Errorf("study = %+v", st)
	}
	good := string(studyJSON)
	for _, tc := range []struct{ name, json, wantErr string }{
		{"unknown metric", strings.Replace(good, `"metric": "idle_power"`, `"metric": "idle"`, 1), `unknown metric "idle"`},
		{"wrong unit", strings.Replace(good, `"unit": "uWh"`, `"unit": "J"`, 1), "energy_per_request is in uWh, not J"},
		{"a value missing", strings.Replace(good, `"device": 2.474`, `"docker": 2.474`, 1), "idle_power lacks its value(s)"},
		{"unknown machine", strings.Replace(good, `"machine": "pi4", "device"`, `"machine": "pi5", "device"`, 1), `unknown machine "pi5"`},
		{"unknown field", strings.Replace(good, `"scenario"`, `"scenery": 1, "scenario"`, 1), `unknown field "scenery"`},
		{"no source", strings.Replace(good, `"source"`, `"sauce"`, 1), `unknown field "sauce"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.json == good {
				t.Fatal("the case changed nothing")
			}
			_, err := parseStudy([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// within reports whether got is within frac of want.
func within(got energy.Float, want, frac float64) bool {
	return got.OK() && math.Abs(float64(got)-want) <= frac*math.Abs(want)
}

func TestReplicate(t *testing.T) {
	dir := t.TempDir()
	run, err := runstore.Load(nebulaRun(t, dir, 3))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := energy.Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	rp := Replicate(run, sum)
	if rp == nil {
		t.Fatal("no Replication section for a run of the study's scenario")
	}
	st, _ := LoadStudy()
	if len(rp.Rows) != len(st.Figures)+len(replicationMetrics) {
		t.Errorf("%d rows, want the study's %d and our %d", len(rp.Rows), len(st.Figures), len(replicationMetrics))
	}
	ours := map[string]ReplicationRow{}
	for _, r := range rp.Rows {
		if r.Ours {
			ours[r.Metric] = r
		}
	}
	// Our figures are the synthetic run's truths, with intervals from the
	// three repetitions.
	cs, lat, dyn, uwh, idle := ours["cold_start"], ours["total_latency"], ours["dynamic_energy_per_request"], ours["energy_per_request"], ours["idle_power"]
	for _, c := range []struct {
		name string
		got  energy.Float
		want float64
	}{
		{"docker cold start ms", cs.Docker.Value, 300}, {"wasm cold start ms", cs.Wasm.Value, 0.5}, {"cold start ratio", cs.Ratio.Value, 600},
		{"docker latency ms", lat.Docker.Value, 400}, {"wasm latency ms", lat.Wasm.Value, 2},
		{"docker dynamic J", dyn.Docker.Value, 4}, {"wasm dynamic J", dyn.Wasm.Value, 0.01},
		{"idle W", idle.Device.Value, 20},
	} {
		if !within(c.got, c.want, 0.25) {
			t.Errorf("%s = %v, want about %v", c.name, c.got, c.want)
		}
	}
	for name, iv := range map[string]energy.Interval{"cold start": cs.Docker, "latency": lat.Wasm, "dynamic": dyn.Docker, "uWh": uwh.Docker, "idle": idle.Device, "ratio": cs.Ratio} {
		if iv.N != 3 || !(iv.Lo < iv.Value && iv.Value < iv.Hi) {
			t.Errorf("%s: no interval over the three repetitions: %+v", name, iv)
		}
	}
	// Whole-device energy per request holds the idle power too: more than
	// the dynamic energy, by about idle power times the time per request.
	if got, least := float64(uwh.Docker.Value), energy.UWh(4+20*0.41); !(got > energy.UWh(4)) || math.Abs(got-least) > 0.25*least {
		t.Errorf("docker µWh/request = %v, want about %v", got, least)
	}
	// Each study row is there as published, with our figure over it.
	seen := 0
	for _, r := range rp.Rows {
		if r.Ours {
			continue
		}
		seen++
		if r.Metric == "cold_start" && strings.Contains(r.Machine, "1-vCPU") {
			if r.Docker.Value != 324.66 || r.Wasm.Value != 0.89 || r.Ratio.Value != 365 {
				t.Errorf("the study's VM cold start = %+v", r)
			}
			if want := cs.Docker.Value / 324.66; math.Abs(float64(r.VsOursDocker-want)) > 1e-12 {
				t.Errorf("ours/study for Docker = %v, want %v", r.VsOursDocker, want)
			}
		}
		if r.Metric == "cold_start" && strings.Contains(r.Machine, "Raspberry") && !within(r.Ratio.Value, 692.36/3.19, 1e-9) {
			t.Errorf("an unpublished ratio is the study's figures divided: %v", r.Ratio.Value)
		}
	}
	if seen != len(st.Figures) {
		t.Errorf("%d study rows, want %d", seen, len(st.Figures))
	}
	if !strings.Contains(rp.Wasm, "rust-fibonacci (rust, Rust)") || !strings.Contains(rp.Docker, "docker-fibonacci (node, JavaScript)") {
		t.Errorf("sides: Wasm %q, Docker %q", rp.Wasm, rp.Docker)
	}
	method := strings.Join(rp.Method, " ")
	for _, want := range []string{"Gude", "wasmtime 17", "cold_start_method stdin", "rapl", "idle baseline", "wholly inside a request"} {
		if !strings.Contains(method, want) {
			t.Errorf("the method notes lack %q:\n%s", want, method)
		}
	}

	// Any other scenario gets no section.
	run.Meta.Scenario = "coldstart"
	if Replicate(run, sum) != nil {
		t.Error("a Replication section for a run of another scenario")
	}
}

// TestReplicationSnapshot: the study initialised the runtime on every
// request, so its Wasm side is our cold Wasm targets; a snapshot target
// stays out of it, and the section says so and where its own start-up
// ratio is.
func TestReplicationSnapshot(t *testing.T) {
	snap := synth.Target{Name: "rust-fibonacci-snapshot", Kind: "wasm", Mode: targets.Snapshot, JPerRequest: 0.005, EnergyCV: 0.1, LatencyMs: 1, LatencyCV: 0.2, ColdFraction: 1, StartUpMs: 0.05}
	tests := []struct {
		name     string
		extra    []synth.Target
		change   func(*runstore.Run)
		wasm     string   // the Wasm side
		wasmMs   float64  // our Wasm cold start; 0: none
		snapNote string   // the note on snapshot targets; "": none
		notes    []string // other notes wanted
	}{
		{"cold only", nil, nil, "rust-fibonacci (rust, Rust)", 0.5, "", nil},
		{"cold and snapshot", []synth.Target{snap}, nil, "rust-fibonacci (rust, Rust)", 0.5, "Not on the Wasm side: rust-fibonacci-snapshot (snapshot)", nil},
		{"snapshot only", nil, func(r *runstore.Run) { r.Meta.Targets[0].Mode = string(targets.Snapshot) }, "none ran", 0,
			"Not on the Wasm side: rust-fibonacci (snapshot)", []string{"No Wasm target ran cold"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run, err := runstore.Load(nebulaRun(t, t.TempDir(), 3, tc.extra...))
			if err != nil {
				t.Fatal(err)
			}
			if tc.change != nil {
				tc.change(run)
			}
			sum, err := energy.Analyze(run)
			if err != nil {
				t.Fatal(err)
			}
			rp := Replicate(run, sum)
			if rp.Wasm != tc.wasm {
				t.Errorf("Wasm side %q, want %q", rp.Wasm, tc.wasm)
			}
			for _, r := range rp.Rows {
				if !r.Ours || r.Metric != "cold_start" {
					continue
				}
				if tc.wasmMs == 0 && r.Wasm.Value.OK() || tc.wasmMs > 0 && !within(r.Wasm.Value, tc.wasmMs, 0.25) {
					t.Errorf("our Wasm cold start %v ms, want %v (0: none)", r.Wasm.Value, tc.wasmMs)
				}
			}
			notes := strings.Join(rp.Notes, " ")
			if (tc.snapNote == "") != !strings.Contains(notes, "Not on the Wasm side") || !strings.Contains(notes, tc.snapNote) {
				t.Errorf("notes %q, want %q", notes, tc.snapNote)
			}
			for _, want := range tc.notes {
				if !strings.Contains(notes, want) {
					t.Errorf("notes %q lack %q", notes, want)
				}
			}
		})
	}
}

// TestReplicationFewReps: with fewer than three repetitions our figures
// have values but no intervals, and the section says so.
func TestReplicationFewReps(t *testing.T) {
	run, err := runstore.Load(nebulaRun(t, t.TempDir(), 2))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := energy.Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	rp := Replicate(run, sum)
	for _, r := range rp.Rows {
		if r.Ours && r.Metric == "cold_start" && (!r.Docker.Value.OK() || r.Docker.Lo.OK() || r.Ratio.Lo.OK()) {
			t.Errorf("cold start with 2 repetitions: %+v", r)
		}
	}
	if !strings.Contains(strings.Join(rp.Notes, " "), "2 repetition(s)") {
		t.Errorf("notes %q do not say why there is no interval", rp.Notes)
	}
}

// TestReplicationInReportAndCompare: a run of the study's scenario gets the
// section in its HTML report, in harness compare's text, HTML and JSON;
// another run gets none.
func TestReplicationInReportAndCompare(t *testing.T) {
	dir := t.TempDir()
	reports := filepath.Join(dir, "reports")
	rd := nebulaRun(t, dir, 3)
	res, err := Generate(rd, reports)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(res.HTMLPath)
	for _, want := range []string{`id="study-replication"`, `id="replication-table"`, "324.66 ms", "365×", "1176.15 µWh", "2.474 W", "rust-fibonacci (rust, Rust)"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	other, err := Generate(demoRun(t, dir, 1, nil), reports)
	if err != nil {
		t.Fatal(err)
	}
	if page, _ := os.ReadFile(other.HTMLPath); strings.Contains(string(page), "study-replication") {
		t.Error("a coldstart run's report has a Replication section")
	}

	a, err := LoadAnalysed(rd)
	if err != nil {
		t.Fatal(err)
	}
	c := Compare("Comparison of nebula", Pairs([]*Analysed{a}), Options{})
	var text bytes.Buffer
	PrintComparison(&text, c)
	for _, want := range []string{"Replication of the original study", "1-vCPU virtual machine", "Docker/Wasm 365×"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("compare's text lacks %q:\n%s", want, text.String())
		}
	}
	path, err := WriteComparison(reports, c)
	if err != nil {
		t.Fatal(err)
	}
	if page, _ := os.ReadFile(path); !strings.Contains(string(page), `id="replication-table"`) {
		t.Error("compare's HTML lacks the Replication section")
	}
	var js bytes.Buffer
	if err := WriteComparisonJSON(&js, c, path); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Replication []struct {
			Rows []struct {
				Metric string `json:"metric"`
				Ours   bool   `json:"ours"`
				Docker struct {
					Value *float64 `json:"value"`
				} `json:"docker"`
			} `json:"rows"`
		} `json:"replication"`
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Replication) != 1 || len(out.Replication[0].Rows) == 0 || out.Replication[0].Rows[0].Docker.Value == nil {
		t.Errorf("compare --json replication = %+v", out.Replication)
	}
}
