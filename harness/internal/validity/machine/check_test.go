package machine

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/tools/txtar"

	"github.com/academemes/harness/harness/internal/validity"
	"github.com/academemes/harness/targets/dockernode"
)

// fixture is a machine read at two moments: testdata/NAME.txtar holds the
// tree at the first read under 0/, at the second under 1/, and what does
// not change under common/. root is a symbolic link to the first;
// advance points it at the second, as time passing would change a live
// /proc.
type fixture struct {
	procfs, sysfs string
	advance       func()
}

func loadFixture(t *testing.T, name string) fixture {
	t.Helper()
	ar, err := txtar.ParseFile(filepath.Join("testdata", name+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range ar.Files {
		state, rest, _ := strings.Cut(f.Name, "/")
		var dsts []string
		switch state {
		case "0", "1":
			dsts = []string{filepath.Join(dir, "s"+state, rest)}
		case "common":
			dsts = []string{filepath.Join(dir, "s0", rest), filepath.Join(dir, "s1", rest)}
		default:
			t.Fatalf("%s: %s: files go under 0/, 1/ or common/", name, f.Name)
		}
		for _, p := range dsts {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, f.Data, 0o444); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range []string{"s0", "s1"} {
		os.MkdirAll(filepath.Join(dir, s, "proc"), 0o755)
		os.MkdirAll(filepath.Join(dir, s, "sys"), 0o755)
	}
	root := filepath.Join(dir, "root")
	if err := os.Symlink(filepath.Join(dir, "s0"), root); err != nil {
		t.Fatal(err)
	}
	return fixture{
		procfs: filepath.Join(root, "proc"),
		sysfs:  filepath.Join(root, "sys"),
		advance: func() {
			os.Remove(root)
			if err := os.Symlink(filepath.Join(dir, "s1"), root); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// fakeEngine answers as a Docker Engine with the containers given.
type fakeEngine struct {
	containers []container.Summary
	listErr    error
	asked      int
}

func (e *fakeEngine) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	return client.ContainerListResult{Items: e.containers}, e.listErr
}

func (e *fakeEngine) ContainerInspect(_ context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	e.asked++
	for _, c := range e.containers {
		if c.ID == id {
			return client.ContainerInspectResult{Container: container.InspectResponse{ID: id, Config: &container.Config{Labels: c.Labels}}}, nil
		}
	}
	return client.ContainerInspectResult{}, errors.New("no such container")
}

var (
	ours  = strings.Repeat("a", 64)
	other = strings.Repeat("b", 64)
)

func busyEngine() *fakeEngine {
	return &fakeEngine{containers: []container.Summary{
		{ID: ours, Names: []string{"/harness-wasm-1"}, Labels: map[string]string{dockernode.LabelHarness: "1", dockernode.LabelRun: "run-1"}},
		{ID: strings.Repeat("c", 64), Names: []string{"/harness-old"}, Labels: map[string]string{dockernode.LabelHarness: "1", dockernode.LabelRun: "run-0"}},
		{ID: other, Names: []string{"/web"}},
	}}
}

func TestCheck(t *testing.T) {
	synced := func() (ClockState, error) { return ClockState{Synchronised: true, EstErrorUs: 400}, nil }
	unsynced := func() (ClockState, error) { return ClockState{MaxErrorUs: 16_000_000}, nil }
	type item struct {
		status Status
		found  string // a part of Found
		fix    string // a part of Fix
	}
	cases := []struct {
		name     string
		fixture  string
		window   time.Duration
		class    Classifier
		engine   func() Engine
		runID    string
		clock    func() (ClockState, error)
		meter    MeterProbe
		share    float64 // other processes' CPU share
		items    map[string]item
		busy     int
		warnings int
	}{
		{
			name: "busy machine: hogs, a compile, a foreign container; the engine and the run's container are the targets'", fixture: "busy", window: 2 * time.Second,
			engine: func() Engine { return busyEngine() }, runID: "run-1", clock: unsynced,
			share: 2.02 / 4,
			items: map[string]item{
				"other processes' CPU":   {Busy, "50 % of 2 CPUs: validityhog (pid 200) 22 %, validityhog (pid 201) 21 %, make (pid 300) 3.8 %, nginx (pid 402) 3.0 %; above 5.0 %", "kill PID"},
				"load average":           {Warn, "3.10 over the last minute (1.55 per CPU)", "lags"},
				"containers":             {Warn, "1 left by earlier harness runs (harness-old); 1 others running (web)", "harness clean; docker stop web"},
				"CPU frequency governor": {Warn, "powersave on 2 CPUs", "cpupower frequency-set -g performance"},
				"turbo / boost":          {Warn, "on (intel_pstate)", "no_turbo"},
				"swap":                   {Warn, "1024 MiB of 2048 MiB in use; 4 pages swapped during the check", "free memory"},
				"thermal throttling":     {Warn, "4 throttling events during the check", "cool"},
				"clock synchronisation":  {Warn, "not synchronised (maximum error 16s)", "timedatectl set-ntp true"},
			},
			busy: 1, warnings: 7,
		},
		{
			name: "busy machine, a run without containers: the engine's daemons are foreign too", fixture: "busy", window: 2 * time.Second,
			class: Classifier{Self: 100}, clock: synced,
			share: 2.65 / 4,
			items: map[string]item{
				"other processes' CPU":  {Busy, "validityhog (pid 200) 22 %, validityhog (pid 201) 21 %, node (pid 401) 7.5 %, containerd-shim (pid 400) 5.0 %, make (pid 300) 3.8 %", ""},
				"containers":            {OK, "no container engine reachable", ""},
				"clock synchronisation": {OK, "synchronised (estimated error 400µs)", ""},
			},
			busy: 1, warnings: 5,
		},
		{
			// What each ended process had at the first read was
			// counted then; counting it again under the live ancestor
			// that reaped the chain made bash use 95 % of the machine
			// and the cap shrank the hogs out of the message. An
			// orphan's time is taken off its adopter's growth, init's.
			name: "processes reaped in the window count only their time since the first read", fixture: "reaped", window: time.Second,
			class: Classifier{Self: 100}, clock: synced,
			share: 1.84 / 2,
			items: map[string]item{
				"other processes' CPU": {Busy, "92 % of 2 CPUs: validityhog (pid 20) 40 %, validityhog (pid 21) 39 %, bash (pid 10) 7.0 %, init (pid 1) 6.0 %; above 5.0 %", "kill PID"},
			},
			busy: 1, warnings: 1,
		},
		{
			name: "quiet virtual machine: nothing to fix", fixture: "quiet", window: time.Second,
			class: Classifier{Self: 100}, clock: synced,
			share: 0.01 / 2,
			items: map[string]item{
				"other processes' CPU":   {OK, "0.5 % of 2 CPUs: sshd (pid 50) 0.5 %", ""},
				"load average":           {OK, "0.12 over the last minute (0.06 per CPU)", ""},
				"CPU frequency governor": {OK, "not exposed", ""},
				"turbo / boost":          {OK, "not exposed", ""},
				"swap":                   {OK, "no swap configured", ""},
				"thermal throttling":     {OK, "no throttle counters exposed", ""},
			},
		},
		{
			name: "meters: the estimate at its ceiling, a stuck sensor, one that cannot be read", fixture: "quiet", window: time.Second,
			class: Classifier{Self: 100}, clock: synced,
			meter: func(context.Context, time.Duration) []MeterFinding {
				return []MeterFinding{
					{Label: "estimate (model)", Samples: 10, MinW: 6.95, MaxW: 7, JoulesMoved: true, Model: true, CeilingW: 7, AtCeiling: 9, CeilingWhy: "the model with every CPU busy"},
					{Label: "pmd-usb:/dev/ttyUSB0", Samples: 20, MinW: 41, MaxW: 41},
					{Label: "rapl", Err: errors.New("meter permission denied: energy_uj")},
					{Label: "modbus:pdu", Samples: 1, MinW: 80, MaxW: 80},
				}
			},
			share: 0.005,
			items: map[string]item{
				"meter estimate (model)":         {OK, "10 samples in 1s, 6.95-7 W", ""},
				"meter estimate (model) ceiling": {Warn, "7 W (the model with every CPU busy); 9 of 10 samples at it now", "fully busy"},
				"meter pmd-usb:/dev/ttyUSB0":     {Warn, "20 samples in 1s, 41-41 W; readings did not change", "stuck"},
				"meter rapl":                     {Warn, "cannot read: meter permission denied", "harness meters list"},
				"meter modbus:pdu":               {OK, "1 samples in 1s, 80-80 W", ""},
			},
			warnings: 3,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fx := loadFixture(t, c.fixture)
			th := validity.Default()
			th.SystemWindow = c.window
			class := c.class
			var eng Engine
			if c.engine != nil {
				eng = c.engine()
				class = Classifier{Self: 100, Container: RunContainers(eng, c.runID), Engine: true}
			}
			rep, err := Check(context.Background(), Config{
				ProcFS: fx.procfs, SysFS: fx.sysfs, Classifier: class, Thresholds: th,
				Engine: eng, RunID: c.runID, Meter: c.meter, Clock: c.clock,
				Wait: func(context.Context, time.Duration) error { fx.advance(); return nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			var table strings.Builder
			rep.WriteTable(&table)
			t.Logf("\n%s", table.String())
			if math.Abs(rep.Foreign.Share-c.share) > 1e-9 {
				t.Errorf("foreign share %v, want %v", rep.Foreign.Share, c.share)
			}
			byName := map[string]Item{}
			for _, it := range rep.Items {
				byName[it.Name] = it
			}
			for name, w := range c.items {
				got, ok := byName[name]
				if !ok {
					t.Errorf("no item %q", name)
					continue
				}
				if got.Status != w.status || !strings.Contains(got.Found, w.found) || !strings.Contains(got.Fix, w.fix) {
					t.Errorf("%s = %s %q (fix %q), want %s with %q (fix %q)", name, got.Status, got.Found, got.Fix, w.status, w.found, w.fix)
				}
				if got.Status != OK && got.Fix == "" {
					t.Errorf("%s: %s without a fix", name, got.Status)
				}
			}
			if n := len(rep.Busy()); n != c.busy {
				t.Errorf("%d busy items, want %d", n, c.busy)
			}
			if n := len(rep.Warnings()); n != c.warnings {
				t.Errorf("%d warnings, want %d: %q", n, c.warnings, rep.Warnings())
			}
			probs := rep.Problems()
			if len(probs) != c.busy {
				t.Fatalf("problems %+v, want %d", probs, c.busy)
			}
			for _, p := range probs {
				if p.Phase != "" || p.Check != validity.CheckForeignCPU || p.Observed != rep.Foreign.Share || p.Limit != th.ForeignCPUShare ||
					!strings.HasPrefix(p.Message, "before the load: other processes' CPU: ") {
					t.Errorf("problem %+v", p)
				}
			}
		})
	}
}

// The sampler never counts more foreign time than the machine was busy,
// its shares are of the CPU time /proc/stat counted, and a reused PID is
// a new process.
func TestSamplerCapAndReuse(t *testing.T) {
	fx := loadFixture(t, "capped")
	s, err := NewSampler(fx.procfs, Classifier{Self: 99999})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	from := s.Totals()
	fx.advance()
	if err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	// The span is given as half the second /proc/stat counted, as a
	// phase's wall time can be shorter than the ticks between its two
	// samples: the share is of the CPU time counted, never above 1.
	f := s.Foreign(from, s.Totals(), 0.5, 5)
	if math.Abs(f.CPUSeconds-1.5) > 1e-9 || math.Abs(f.Share-0.75) > 1e-9 {
		t.Errorf("foreign %v CPU-s (share %v), want 1.5 (0.75)", f.CPUSeconds, f.Share)
	}
	want := map[int]float64{70: 1.5 * 100 / 220, 71: 1.5 * 100 / 220, 60: 1.5 * 20 / 220}
	if len(f.Top) != len(want) {
		t.Fatalf("top %+v, want 3 processes", f.Top)
	}
	for _, p := range f.Top {
		if math.Abs(p.CPUSeconds-want[p.PID]) > 1e-9 {
			t.Errorf("pid %d (%s): %v CPU-s, want %v", p.PID, p.Name, p.CPUSeconds, want[p.PID])
		}
		if p.PID == 60 && p.Name != "new" {
			t.Errorf("pid 60 named %q, want the new process", p.Name)
		}
	}
	// Asked for the busiest one, the record still holds every process
	// with RecordShare of the machine or more: all three here.
	if f := s.Foreign(from, s.Totals(), 0.5, 1); len(f.Top) != 3 {
		t.Errorf("top 1: %+v, want the 3 processes above %v", f.Top, RecordShare)
	}
}

// Containers are asked about once each; one the engine does not know is
// asked again next time.
func TestRunContainers(t *testing.T) {
	eng := busyEngine()
	own := RunContainers(eng, "run-1")
	for range 3 {
		if ok, err := own(ours); !ok || err != nil {
			t.Errorf("own(ours) = %v, %v", ok, err)
		}
		if ok, err := own(other); ok || err != nil {
			t.Errorf("own(other) = %v, %v", ok, err)
		}
	}
	if eng.asked != 2 {
		t.Errorf("asked %d times, want 2 (cached)", eng.asked)
	}
	gone := strings.Repeat("d", 64)
	own(gone)
	if _, err := own(gone); err == nil || eng.asked != 4 {
		t.Errorf("a container the engine does not know: err %v after %d asks, want an error and no cache", err, eng.asked)
	}
}

// Every process's CPU time lands in one attribution group: the run's
// container, the engine's two daemons (with what they start), the harness
// and its children, kernel threads, and the rest.
func TestSamplerGroups(t *testing.T) {
	cases := []struct {
		name  string
		class Classifier
		want  map[string]float64 // CPU-s over the fixture's 2 s
	}{
		{
			name:  "docker-node run",
			class: Classifier{Self: 100, Container: RunContainers(busyEngine(), "run-1"), Engine: true},
			want: map[string]float64{
				GroupTarget: 0.30, GroupContainerd: 0.20, GroupDockerd: 0.13,
				GroupHarness: 0.60, GroupKernel: 0.30, GroupOther: 2.02,
			},
		},
		{
			name:  "no engine: containers and daemons are the rest",
			class: Classifier{Self: 100},
			want:  map[string]float64{GroupHarness: 0.60, GroupKernel: 0.30, GroupOther: 2.02 + 0.30 + 0.20 + 0.13},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fx := loadFixture(t, "busy")
			s, err := NewSampler(fx.procfs, tc.class)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Sample(); err != nil {
				t.Fatal(err)
			}
			if g := s.Totals().Groups; len(g) != 0 {
				t.Errorf("after the first snapshot: %v, want nothing yet", g)
			}
			fx.advance()
			if err := s.Sample(); err != nil {
				t.Fatal(err)
			}
			got := s.Totals().Groups
			if len(got) != len(tc.want) {
				t.Errorf("groups %v, want %v", got, tc.want)
			}
			for g, w := range tc.want {
				if math.Abs(got[g]-w) > 1e-9 {
					t.Errorf("%s: %v CPU-s, want %v", g, got[g], w)
				}
			}
		})
	}
}
