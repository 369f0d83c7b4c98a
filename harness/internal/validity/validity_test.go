package validity

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/runstore"
)

const sec = int64(time.Second)

// synthRun builds a run of one target: idle [0,4s), load [4s,8s) at
// 10 req/s, all requests answered 200, and one estimate meter at 10 Hz
// reading 3 W with a 7 W ceiling. Cases bend it.
func synthRun() *runstore.Run {
	run := &runstore.Run{Meta: runstore.Meta{
		Load: runstore.LoadMeta{Model: "open"},
		Meters: []runstore.MeterMeta{meterMeta(`{"name": "estimate", "driver": "estimate", "kind": "model", "label": "estimate (model)",
			"channels": [{"name": "machine (model)", "in_total": true, "full_scale_w": 7}]}`)},
		Phases: []runstore.Phase{
			{Target: "wasm", Name: runstore.PhaseIdle, Rep: 0, StartNs: 0, EndNs: 4 * sec},
			{Target: "wasm", Name: runstore.PhaseLoad, Rep: 0, StartNs: 4 * sec, EndNs: 8 * sec,
				Stages: []runstore.Stage{{Rate: 10, StartNs: 4 * sec, EndNs: 8 * sec}}},
		},
	}}
	for t := int64(0); t <= 9*sec; t += sec / 10 {
		run.Samples = append(run.Samples, runstore.Sample{Meter: "estimate", Channel: 0, TNs: t, Watts: 3, Joules: math.NaN()})
	}
	for i := range 40 {
		run.Requests = append(run.Requests, runstore.Request{Target: "wasm", Phase: runstore.PhaseLoad, Rep: 0, Seq: int64(i),
			StartNs: 4*sec + int64(i)*sec/10, LatencyNs: 1e6, Status: 200})
	}
	return run
}

func TestEvaluate(t *testing.T) {
	type want struct {
		phase, check string
		observed     float64 // checked to 1e-6 when not NaN
		inMessage    string
	}
	cases := []struct {
		name string
		bend func(*runstore.Run)
		want []want
	}{
		{name: "clean run is valid", bend: func(*runstore.Run) {}},
		{
			name: "10 % failed requests",
			bend: func(r *runstore.Run) {
				for i := range 4 {
					r.Requests[i*10].Status, r.Requests[i*10].Error = 0, "connection refused"
				}
			},
			want: []want{{"wasm/load/0", CheckFailures, 0.1, `4 of 40 requests failed (10 %; limit 5.0 %); first: "connection refused"`}},
		},
		{
			name: "a 500 counts as failed",
			bend: func(r *runstore.Run) {
				for i := range 3 {
					r.Requests[i].Status = 500
				}
			},
			want: []want{{"wasm/load/0", CheckFailures, 0.075, "HTTP 500"}},
		},
		{
			name: "2 of 40 failed is within the limit",
			bend: func(r *runstore.Run) { r.Requests[3].Status, r.Requests[7].Status = 502, 0 },
		},
		{
			name: "achieved rate 20 % short",
			bend: func(r *runstore.Run) { r.Requests = r.Requests[:32] },
			want: []want{{"wasm/load/0", CheckRate, 0.2, "8 req/s achieved against 10 offered (20 % short"}},
		},
		{
			name: "one request short is the allowed slack",
			bend: func(r *runstore.Run) { r.Requests = r.Requests[:37] },
		},
		{
			name: "an interrupted phase: rate against the time it ran, and marked",
			bend: func(r *runstore.Run) {
				r.Meta.Phases[1].EndNs, r.Meta.Phases[1].Interrupted = 6*sec, true
				r.Requests = r.Requests[:20]
			},
			want: []want{{"wasm/load/0", CheckInterrupted, 2, "cut short after 2.0 s"}},
		},
		{
			name: "sequential load has no offered rate",
			bend: func(r *runstore.Run) {
				r.Meta.Load.Model = "sequential"
				r.Meta.Phases[1].Stages = []runstore.Stage{{StartNs: 4 * sec, EndNs: 8 * sec}}
				r.Requests = r.Requests[:3]
			},
		},
		{
			name: "no requests in a load phase",
			bend: func(r *runstore.Run) { r.Requests = nil },
			want: []want{{"wasm/load/0", CheckNoRequests, 0, "no request"}, {"wasm/load/0", CheckRate, 1, "0 req/s achieved"}},
		},
		{
			name: "the model at its ceiling through the idle phase",
			bend: func(r *runstore.Run) {
				for i := range r.Samples {
					if r.Samples[i].TNs < 4*sec {
						r.Samples[i].Watts = 6.97 // within 1 % of 7 W
					}
				}
			},
			want: []want{{"wasm/idle/0", CheckSaturation, 1, "40 of 40 samples at its ceiling of 7 W"}},
		},
		{
			name: "an old run: the estimate's ceiling from its report",
			bend: func(r *runstore.Run) {
				m := &r.Meta.Meters[0]
				m.Channels[0].FullScaleW = 0
				// As run.json holds it: numbers decoded as float64.
				m.Report = meterMeta(`{"report": {"details": {"idle_w": 1.48, "max_per_core_w": 2.76, "cpus": 2}}}`).Report
				for i := range r.Samples {
					r.Samples[i].Watts = 7.0
				}
			},
			want: []want{{"wasm/idle/0", CheckSaturation, 1, "ceiling of 7 W"}, {"wasm/load/0", CheckSaturation, 1, ""}},
		},
		{
			name: "no known ceiling: saturation not judged",
			bend: func(r *runstore.Run) {
				r.Meta.Meters[0].Channels[0].FullScaleW = 0
				for i := range r.Samples {
					r.Samples[i].Watts = 7.0
				}
			},
		},
		{
			name: "two transient samples at the ceiling are not saturation",
			bend: func(r *runstore.Run) { r.Samples[5].Watts, r.Samples[6].Watts = 7, 7 },
		},
		{
			name: "a 1 s gap in the load phase",
			bend: func(r *runstore.Run) {
				r.Samples = slices.DeleteFunc(r.Samples, func(s runstore.Sample) bool { return s.TNs > 5*sec && s.TNs < 6*sec })
			},
			// Silent from 5.0 s + one interval to 6.0 s: 0.9 s of 4 s.
			want: []want{{"wasm/load/0", CheckGaps, 0.225, "no samples for 22 %"}},
		},
		{
			name: "a late sample is not a gap",
			bend: func(r *runstore.Run) { r.Samples = slices.Delete(r.Samples, 50, 52) },
		},
		{
			name: "the meter stopped before the run ended",
			bend: func(r *runstore.Run) {
				r.Samples = slices.DeleteFunc(r.Samples, func(s runstore.Sample) bool { return s.TNs > 6*sec })
			},
			want: []want{{"wasm/load/0", CheckGaps, 0.475, ""}},
		},
		{
			name: "a gap the meter reported",
			bend: func(r *runstore.Run) {
				r.Meta.Meters[0].Report = meterMeta(`{"report": {"gaps": [{"start": "` + time.Unix(1, 0).UTC().Format(time.RFC3339Nano) + `", "end": "` +
					time.Unix(2, 0).UTC().Format(time.RFC3339Nano) + `", "reason": "unplugged"}]}}`).Report
			},
			want: []want{{"wasm/idle/0", CheckGaps, 0.25, ""}},
		},
		{
			name: "other processes busy in the idle phase",
			bend: func(r *runstore.Run) {
				r.Meta.Phases[0].Foreign = &runstore.ForeignCPU{CPUSeconds: 3.6, Share: 0.45, Top: []runstore.Process{
					{PID: 71, Name: "sh", CPUSeconds: 1.9, Share: 0.24}, {PID: 72, Name: "sh", CPUSeconds: 1.7, Share: 0.21}}}
				r.Meta.Phases[1].Foreign = &runstore.ForeignCPU{CPUSeconds: 0.08, Share: 0.01}
			},
			want: []want{{"wasm/idle/0", CheckForeignCPU, 0.45, "45 % of the CPUs (3.60 CPU-s; limit 5.0 %): sh (pid 71) 24 %, sh (pid 72) 21 %"}},
		},
		{
			name: "local RAPL with a remote target",
			bend: func(r *runstore.Run) {
				r.Meta.Targets = []runstore.TargetMeta{{Name: "wasm", Host: "pi.lan"}}
				r.Meta.Meters[0].Host = runstore.HostLocal
			},
			want: []want{
				{"wasm/idle/0", CheckHost, 0, "target wasm is served from pi.lan, but the meters measure local (estimate)"},
				{"wasm/load/0", CheckHost, 0, "harness agent there"},
			},
		},
		{
			name: "an agent on another machine with a local target",
			bend: func(r *runstore.Run) {
				r.Meta.Targets = []runstore.TargetMeta{{Name: "wasm", Host: runstore.HostLocal}}
				r.Meta.Meters[0].Host = "192.0.2.7"
			},
			want: []want{{"wasm/idle/0", CheckHost, 0, "served from local, but the meters measure 192.0.2.7"}, {"wasm/load/0", CheckHost, 0, ""}},
		},
		{
			name: "one of two meters measures the target's machine",
			bend: func(r *runstore.Run) {
				r.Meta.Targets = []runstore.TargetMeta{{Name: "wasm", Host: "pi.lan"}}
				r.Meta.Meters[0].Host = runstore.HostLocal
				m := r.Meta.Meters[0]
				m.Name, m.Host = "agent:pi.lan:9190", "pi.lan"
				r.Meta.Meters = append(r.Meta.Meters, m)
				for _, s := range slices.Clone(r.Samples) {
					s.Meter = m.Name
					r.Samples = append(r.Samples, s)
				}
			},
		},
		{
			name: "the null target is on the load machine on purpose",
			bend: func(r *runstore.Run) {
				r.Meta.Targets = []runstore.TargetMeta{{Name: "wasm", Kind: "null", Host: runstore.HostLocal}}
				r.Meta.Meters[0].Host = "192.0.2.7"
			},
		},
		{
			name: "an old run records no hosts: not judged",
			bend: func(r *runstore.Run) { r.Meta.Targets = []runstore.TargetMeta{{Name: "wasm"}} },
		},
		{
			name: "a run-level problem is kept, a stale phase problem is judged again",
			bend: func(r *runstore.Run) {
				r.Meta.Validity = &runstore.Validity{Problems: []runstore.Problem{
					{Phase: "", Check: CheckForeignCPU, Observed: 0.6, Limit: 0.05, Message: "before the load"},
					{Phase: "wasm/load/0", Check: CheckFailures, Observed: 1, Limit: 0.05, Message: "stale"},
				}}
			},
			want: []want{{"", CheckForeignCPU, 0.6, "before the load"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run := synthRun()
			c.bend(run)
			runWide, perPhase := Evaluate(run, Default())
			if len(perPhase) != len(run.Meta.Phases) {
				t.Fatalf("perPhase has %d phases, want %d", len(perPhase), len(run.Meta.Phases))
			}
			got := runWide.Problems
			if len(got) != len(c.want) {
				t.Fatalf("problems:\n%s\nwant %d", dump(got), len(c.want))
			}
			if runWide.Valid != (len(c.want) == 0) {
				t.Errorf("valid = %v with %d problems", runWide.Valid, len(got))
			}
			for i, w := range c.want {
				g := got[i]
				if g.Phase != w.phase || g.Check != w.check || !strings.Contains(g.Message, w.inMessage) {
					t.Errorf("problem %d = %+v, want phase %q check %q message containing %q", i, g, w.phase, w.check, w.inMessage)
				}
				if math.Abs(g.Observed-w.observed) > 1e-6 {
					t.Errorf("problem %d observed %v, want %v", i, g.Observed, w.observed)
				}
			}
			// Each phase's own validity holds its problems and no other's.
			for i, ph := range run.Meta.Phases {
				v := perPhase[i]
				for _, p := range v.Problems {
					if p.Phase != PhaseKey(ph) {
						t.Errorf("phase %d holds a problem of %q", i, p.Phase)
					}
				}
				if v.Valid != (len(v.Problems) == 0) {
					t.Errorf("phase %d: valid %v with %d problems", i, v.Valid, len(v.Problems))
				}
			}
			// run.json must be writable whatever was observed.
			if _, err := json.Marshal(runWide); err != nil {
				t.Errorf("marshal: %v", err)
			}
		})
	}
}

// A tracker fed while the run goes judges as Evaluate does afterwards,
// whatever order the samples arrived in.
func TestTrackerMatchesEvaluate(t *testing.T) {
	run := synthRun()
	for i := range run.Samples {
		if run.Samples[i].TNs < 4*sec {
			run.Samples[i].Watts = 7
		}
	}
	run.Requests = run.Requests[:30]
	tr := NewTracker()
	for _, r := range run.Requests {
		tr.AddRequest(r)
	}
	// Swap neighbours: a device clock refit can do that.
	for i := 0; i+1 < len(run.Samples); i += 2 {
		tr.AddSample(run.Samples[i+1])
		tr.AddSample(run.Samples[i])
	}
	wantRun, wantPhases := Evaluate(run, Default())
	gotRun, gotPhases := tr.Run(&run.Meta, Default())
	if a, b := dump(gotRun.Problems), dump(wantRun.Problems); a != b {
		t.Errorf("tracker:\n%s\nEvaluate:\n%s", a, b)
	}
	for i := range run.Meta.Phases {
		if a, b := dump(tr.Phase(&run.Meta, i, Default()).Problems), dump(wantPhases[i].Problems); a != b {
			t.Errorf("phase %d: tracker:\n%s\nEvaluate:\n%s", i, a, b)
		}
		if a, b := dump(gotPhases[i].Problems), dump(wantPhases[i].Problems); a != b {
			t.Errorf("phase %d (Run): tracker:\n%s\nEvaluate:\n%s", i, a, b)
		}
	}
	if len(wantRun.Problems) != 2 {
		t.Errorf("want a saturation and a rate problem, got\n%s", dump(wantRun.Problems))
	}
}

func TestUnjudged(t *testing.T) {
	run := synthRun()
	run.Meta.Meters[0].Channels[0].FullScaleW = 0
	got := strings.Join(Unjudged(run), "\n")
	for _, w := range []string{CheckForeignCPU + ": not judged: no phase", CheckSaturation + ": not judged for meter estimate"} {
		if !strings.Contains(got, w) {
			t.Errorf("Unjudged:\n%s\nwant a line with %q", got, w)
		}
	}
	run = synthRun()
	run.Meta.Phases[0].Foreign = &runstore.ForeignCPU{}
	if got := strings.Join(Unjudged(run), "\n"); !strings.Contains(got, "not judged for 1 of 2 phases") {
		t.Errorf("Unjudged:\n%s\nwant the phases without a record counted", got)
	}
	run.Meta.Phases[1].Foreign = &runstore.ForeignCPU{}
	if got := Unjudged(run); len(got) != 0 {
		t.Errorf("Unjudged = %q, want nothing on a fully recorded run", got)
	}
}

// meterMeta reads a meter's record as run.json holds it.
func meterMeta(js string) runstore.MeterMeta {
	var m runstore.MeterMeta
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		panic(err)
	}
	return m
}

func dump(ps []runstore.Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.Phase + " " + p.Check + ": " + p.Message + "\n")
	}
	return b.String()
}

func TestProcessList(t *testing.T) {
	procs := func(shares ...float64) []runstore.Process {
		var out []runstore.Process
		for i, s := range shares {
			out = append(out, runstore.Process{PID: 100 + i, Name: "p", Share: s})
		}
		return out
	}
	cases := []struct {
		name  string
		top   []runstore.Process
		limit float64
		want  int // how many are named
	}{
		{"none", nil, 0.05, 0},
		{"the busiest down to half a percent", procs(0.3, 0.02, 0.006, 0.004), 0.05, 3},
		{"eight in all below one percent", procs(0.009, 0.009, 0.009, 0.009, 0.009, 0.009, 0.009, 0.009, 0.009, 0.009), 0.05, 8},
		// A dozen processes share a loaded machine with two that make it
		// busy, each of those with less than the limit and less than
		// eight others: every one with 1 % or more is named.
		{"every one with one percent or more, however many", procs(0.14, 0.12, 0.11, 0.05, 0.04, 0.038, 0.038, 0.034, 0.03, 0.03, 0.02, 0.012, 0.009, 0.008), 0.05, 12},
		{"every one above a limit below one percent", procs(0.2, 0.008, 0.008, 0.008, 0.008, 0.008, 0.008, 0.008, 0.008, 0.008, 0.006), 0.007, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ProcessList(c.top, c.limit)
			n := 0
			if got != "" {
				n = len(strings.Split(got, ", "))
			}
			if n != c.want {
				t.Errorf("ProcessList named %d (%q), want %d", n, got, c.want)
			}
			for i := range n {
				if want := fmt.Sprintf("p (pid %d) %s", 100+i, pct(c.top[i].Share)); !strings.Contains(got, want) {
					t.Errorf("ProcessList %q lacks %q", got, want)
				}
			}
		})
	}
}
