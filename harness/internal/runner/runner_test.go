package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/scenario"
	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/targets"
)

// fakeTarget serves on an httptest server and counts its lifecycle calls.
type fakeTarget struct {
	spec    targets.Spec
	srv     *httptest.Server
	started atomic.Int32
	stopped atomic.Int32
	resets  atomic.Int32
	onHit   atomic.Pointer[func()]
}

var (
	fakesMu sync.Mutex
	fakes   = map[string]*fakeTarget{}
)

func (f *fakeTarget) Info() targets.Info {
	return targets.Info{Name: f.spec.Name, Kind: f.spec.Kind, Mode: f.spec.Mode, Function: f.spec.Function}
}
func (f *fakeTarget) Start(context.Context) error {
	if f.spec.Options["unavailable"] == true {
		return fmt.Errorf("%w: no engine here", targets.ErrUnavailable)
	}
	if f.spec.Options["broken"] == true {
		return errors.New("function not built")
	}
	f.started.Add(1)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := f.onHit.Load(); h != nil {
			(*h)()
		}
		w.Header().Set(targets.HeaderColdStart, "1")
		if st, ok := f.spec.Options["status"].(int); ok {
			w.WriteHeader(st)
		}
		fmt.Fprintf(w, "%s %s", r.URL.Path, r.URL.RawQuery)
	}))
	return nil
}
func (f *fakeTarget) URL() *url.URL {
	u, _ := url.Parse(f.srv.URL + "/fn/" + f.spec.Function)
	return u
}
func (f *fakeTarget) Reset(context.Context) error { f.resets.Add(1); return nil }
func (f *fakeTarget) Stop(context.Context) error {
	f.stopped.Add(1)
	if f.srv != nil {
		f.srv.Close()
	}
	return nil
}

// fakeMeter emits a constant 10 W every 10 ms.
type fakeMeter struct{}

func (fakeMeter) Info() meters.Info {
	return meters.Info{Name: "fake", Driver: "fake", Kind: meters.Measured, Channels: []meters.Channel{{Name: "all", InTotal: true}}}
}
func (fakeMeter) Run(ctx context.Context, emit func(meters.Sample)) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			emit(meters.Sample{T: now, Watts: 10, Joules: meters.NaN})
		}
	}
}

func init() {
	targets.Register(targets.Kind{
		Name:  "fake",
		Modes: []targets.Mode{targets.Cold},
		Options: map[string]string{
			"unavailable": "pretend the platform is missing",
			"broken":      "Start fails for another reason than a missing platform",
			"bad":         "New refuses the options",
			"status":      "answer with this HTTP status",
		},
		New: func(s targets.Spec) (targets.Target, error) {
			if s.Options["bad"] == true {
				return nil, errors.New("option bad: refused")
			}
			f := &fakeTarget{spec: s}
			fakesMu.Lock()
			fakes[s.Name] = f
			fakesMu.Unlock()
			return f, nil
		},
	})
	meters.Register(meters.Driver{Name: "fake", Open: func(meters.Spec, meters.Env) (meters.Meter, error) { return fakeMeter{}, nil }})
}

const scenarioYAML = `name: t
repeat: 2
idle: 100ms
warmup: 100ms
cooldown: 50ms
meters: [fake]
targets:
  - {name: a, kind: fake, function: memes}
  - {name: b, kind: fake, function: memes}
  - {name: c, kind: fake, function: memes, options: {unavailable: true}}
load:
  request: {path: "?x=1", body: '{"id": 3}'}
  stages: [{rate: 40, duration: 250ms}]
`

func parse(t *testing.T, yaml string, sets ...string) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.Parse("t.yaml", []byte(yaml), sets)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestRunInterleavesAndRecords(t *testing.T) {
	sc := parse(t, scenarioYAML, "order=fixed")
	var log strings.Builder
	res, err := Run(context.Background(), sc, Options{RunsDir: t.TempDir(), Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.Status != runstore.StatusComplete || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0], "no engine here") {
		t.Fatalf("result = %+v", res)
	}
	run, err := runstore.Load(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, p := range run.Meta.Phases {
		if p.Name == runstore.PhaseLoad {
			order = append(order, fmt.Sprintf("%s%d", p.Target, p.Rep))
		}
		if p.EndNs <= p.StartNs {
			t.Errorf("phase %+v has no duration", p)
		}
	}
	if got := strings.Join(order, " "); got != "a0 b0 a1 b1" {
		t.Errorf("load order = %q, want interleaved a0 b0 a1 b1", got)
	}
	if got := strings.Join(run.Meta.Order, " "); got != "a b a b" || run.Meta.OrderSeed != 0 {
		t.Errorf("run.json order %q seed %d, want a b a b and 0", got, run.Meta.OrderSeed)
	}
	if len(run.Meta.Phases) != 16 {
		t.Errorf("got %d phases, want 2 reps x 2 targets x 4", len(run.Meta.Phases))
	}
	counts := map[string]int{}
	for _, r := range run.Requests {
		counts[r.Target+"/"+r.Phase]++
		if !r.OK() || !r.Cold || r.BytesOut != 9 {
			t.Fatalf("request = %+v", r)
		}
	}
	if counts["a/load"] < 16 || counts["b/load"] < 16 || counts["a/warmup"] == 0 || counts["c/load"] != 0 {
		t.Errorf("request counts = %v", counts)
	}
	if len(run.Samples) < 20 || run.Samples[0].Meter != "fake" {
		t.Errorf("got %d samples", len(run.Samples))
	}
	if len(run.Meta.Targets) != 3 || !run.Meta.Targets[2].Skipped || run.Meta.Targets[0].URL == "" {
		t.Errorf("targets = %+v", run.Meta.Targets)
	}
	for _, name := range []string{"a", "b"} {
		f := fakes[name]
		if f.started.Load() != 1 || f.stopped.Load() != 1 || f.resets.Load() != 4 {
			t.Errorf("target %s: started %d stopped %d resets %d", name, f.started.Load(), f.stopped.Load(), f.resets.Load())
		}
	}
	if run.Meta.Host.Cores == 0 || run.Meta.Status != runstore.StatusComplete {
		t.Errorf("meta = %+v", run.Meta)
	}
}

// TestRunRandomOrder: by default each repetition runs the targets in an
// order drawn from the seed, which run.json records with the order; the
// same seed gives the same order, and without one a seed is drawn.
func TestRunRandomOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets []string
	}{
		{"given seed", []string{"repeat=4", "seed=7", "idle=10ms", "warmup=0s", "cooldown=0s", "load.stages[0].duration=50ms"}},
		{"drawn seed", []string{"repeat=4", "idle=10ms", "warmup=0s", "cooldown=0s", "load.stages[0].duration=50ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := parse(t, scenarioYAML, tc.sets...)
			res, err := Run(context.Background(), sc, Options{RunsDir: t.TempDir(), Log: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			run, err := runstore.Load(res.Dir)
			if err != nil {
				t.Fatal(err)
			}
			seed := run.Meta.OrderSeed
			if seed == 0 || (sc.Seed != 0 && seed != sc.Seed) {
				t.Fatalf("order seed %d, scenario seed %d", seed, sc.Seed)
			}
			var ran []string
			for _, p := range run.Meta.Phases {
				if p.Name == runstore.PhaseLoad {
					ran = append(ran, p.Target)
				}
			}
			var want []string
			for _, turns := range targetOrder(2, 4, seed) {
				for _, i := range turns {
					want = append(want, []string{"a", "b"}[i])
				}
			}
			if !slices.Equal(ran, want) || !slices.Equal(run.Meta.Order, want) {
				t.Errorf("ran %v, run.json order %v; seed %d gives %v", ran, run.Meta.Order, seed, want)
			}
		})
	}
}

func TestTargetOrder(t *testing.T) {
	tests := []struct {
		name    string
		n, reps int
		seed    uint64
	}{
		{"fixed", 3, 4, 0},
		{"random", 3, 200, 42},
		{"one target", 1, 5, 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := targetOrder(tc.n, tc.reps, tc.seed)
			if len(got) != tc.reps {
				t.Fatalf("%d repetitions, want %d", len(got), tc.reps)
			}
			firsts := map[int]int{}
			for rep, turns := range got {
				sorted := slices.Sorted(slices.Values(turns))
				for i := range tc.n {
					if len(sorted) != tc.n || sorted[i] != i {
						t.Fatalf("repetition %d: %v is not a permutation of %d targets", rep, turns, tc.n)
					}
				}
				if tc.seed == 0 && !slices.IsSorted(turns) {
					t.Errorf("fixed order, repetition %d: %v", rep, turns)
				}
				firsts[turns[0]]++
			}
			if tc.seed != 0 && tc.n > 1 && len(firsts) != tc.n {
				t.Errorf("over %d repetitions only targets %v went first", tc.reps, firsts)
			}
			if again := targetOrder(tc.n, tc.reps, tc.seed); !slices.EqualFunc(got, again, slices.Equal) {
				t.Error("the same seed gave another order")
			}
		})
	}
}

func TestRunInterruptedKeepsData(t *testing.T) {
	sc := parse(t, scenarioYAML, "load.stages[0].duration=1h", "targets=[{name: a, kind: fake, function: memes}]")
	ctx, cancel := context.WithCancel(context.Background())
	var hits atomic.Int32
	fakesMu.Lock()
	delete(fakes, "a")
	fakesMu.Unlock()
	go func() {
		for {
			fakesMu.Lock()
			f := fakes["a"]
			fakesMu.Unlock()
			if f != nil && f.started.Load() > 0 {
				h := func() {
					if hits.Add(1) == 20 {
						cancel()
					}
				}
				f.onHit.Store(&h)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	res, err := Run(ctx, sc, Options{RunsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != runstore.StatusInterrupted {
		t.Fatalf("status = %s", res.Status)
	}
	run, err := runstore.Load(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	last := run.Meta.Phases[len(run.Meta.Phases)-1]
	if !last.Interrupted || run.Meta.Status != runstore.StatusInterrupted {
		t.Errorf("last phase %+v, status %s", last, run.Meta.Status)
	}
	if len(run.Requests) < 15 {
		t.Errorf("kept %d requests", len(run.Requests))
	}
	if fakes["a"].stopped.Load() != 1 {
		t.Errorf("target not stopped after interrupt")
	}
}

func TestRunRequiredTargetFails(t *testing.T) {
	sc := parse(t, scenarioYAML, "targets[2].required=true")
	res, err := Run(context.Background(), sc, Options{RunsDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "target c is required") {
		t.Fatalf("err = %v", err)
	}
	if res.Status != runstore.StatusFailed {
		t.Errorf("status = %s", res.Status)
	}
	for _, n := range []string{"a", "b"} {
		if fakes[n].stopped.Load() != fakes[n].started.Load() {
			t.Errorf("target %s started %d, stopped %d", n, fakes[n].started.Load(), fakes[n].stopped.Load())
		}
	}
}

// TestRunTargetErrors: only a platform that is not there (ErrUnavailable)
// skips a target; any other error of New or Start fails the run with its
// message, after stopping what had started.
func TestRunTargetErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		option     string
		wantStatus string
		wantErr    string // "" when the run goes on
	}{
		{"platform unavailable: skipped", "unavailable", runstore.StatusComplete, ""},
		{"Start fails otherwise: the run fails", "broken", runstore.StatusFailed, "target c: function not built"},
		{"New fails: the run fails", "bad", runstore.StatusFailed, "target c: option bad: refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := parse(t, scenarioYAML, "targets[2].options={"+tc.option+": true}")
			res, err := Run(context.Background(), sc, Options{RunsDir: t.TempDir()})
			if tc.wantErr == "" {
				if err != nil || len(res.Skipped) != 1 || !strings.HasPrefix(res.Skipped[0], "c: ") {
					t.Fatalf("err %v, skipped %q; want c skipped", err, res.Skipped)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if res.Status != tc.wantStatus {
				t.Errorf("status = %s, want %s", res.Status, tc.wantStatus)
			}
			for _, n := range []string{"a", "b"} {
				if fakes[n].stopped.Load() != fakes[n].started.Load() {
					t.Errorf("target %s started %d, stopped %d", n, fakes[n].started.Load(), fakes[n].stopped.Load())
				}
			}
		})
	}
}

func TestRequestURL(t *testing.T) {
	sc := parse(t, scenarioYAML)
	r := &run{sc: sc}
	f := &fakeTarget{spec: targets.Spec{Function: "memes"}}
	f.Start(context.Background())
	defer f.Stop(context.Background())
	req, err := r.request(&liveTarget{target: f}, scenario.Input{Name: "n", Path: "sub?y=2", Body: `{"n":1}`})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(req.URL, "/fn/memes/sub?x=1&y=2") || string(req.Body) != `{"n":1}` || req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request = %+v", req)
	}
}

func TestPlanInputs(t *testing.T) {
	sc := parse(t, scenarioYAML, "order=fixed", "load.inputs=[{name: all, body: x}]", "targets[1].inputs=[{name: n=1, body: '{\"n\": 1}'}, {name: n=2, body: y}]")
	r := &run{sc: sc}
	for _, ts := range sc.Targets[:2] {
		f := &fakeTarget{spec: targets.Spec{Function: "memes"}}
		f.Start(context.Background())
		defer f.Stop(context.Background())
		r.live = append(r.live, &liveTarget{spec: ts, target: f})
	}
	dir := t.TempDir()
	w, err := runstore.Create(dir+"/r", nil, runstore.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r.w = w
	slots, err := r.plan()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range slots[:2] {
		for _, l := range s.load {
			got = append(got, s.t.spec.Name+":"+l.name+":"+string(l.req.Body))
		}
	}
	want := `a:load/all:x b:load/n=1:{"n": 1} b:load/n=2:y`
	if strings.Join(got, " ") != want {
		t.Errorf("plan = %q, want %q", strings.Join(got, " "), want)
	}
}

// TestRunReadsBodiesFirst: a body_file that is no longer a file of bounded
// size when the run starts (it was when the scenario was checked) stops the
// run before a run directory exists. It used to fail the run at its first
// load phase, after the run directory, the meters and the targets.
func TestRunReadsBodiesFirst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(path string) error
		want  string
	}{
		{"now a directory", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Mkdir(p, 0o755)
		}, "is a directory"},
		{"grown past the bound", func(p string) error { return os.Truncate(p, scenario.MaxBodyBytes+1) }, "more than the 16777216 allowed"},
		{"gone", os.Remove, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			body := filepath.Join(dir, "body.json")
			if err := os.WriteFile(body, []byte(`{"id": 3}`), 0o644); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "t.yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(scenarioYAML, `body: '{"id": 3}'`, "body_file: body.json", 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			sc, err := scenario.ReadFile(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.spoil(body); err != nil {
				t.Fatal(err)
			}
			runs := filepath.Join(dir, "runs")
			res, err := Run(context.Background(), sc, Options{RunsDir: runs})
			if res != nil || !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %+v, %v; want no result and ErrScenario saying %q", res, err, tc.want)
			}
			if ents, _ := os.ReadDir(runs); len(ents) > 0 {
				t.Errorf("run directories made: %v", ents)
			}
		})
	}
}
