package estimate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
)

// statFixture is a /proc/stat of a two-CPU machine (the layout of Linux
// 6.x), with the CPU times given.
func statFixture(user, system, idle uint64) string {
	return fmt.Sprintf(`cpu  %d 0 %d %d 0 0 0 0 0 0
cpu0 %d 0 %d %d 0 0 0 0 0 0
cpu1 %d 0 %d %d 0 0 0 0 0 0
intr 1234 0 9 0 0 0 0 0 0 0 0 0 0
ctxt 987654
btime 1764160000
processes 4242
procs_running 2
procs_blocked 0
softirq 100 1 2 3 4 5 6 7 8 9 10
`, user, system, idle, user/2, system/2, idle/2, user-user/2, system-system/2, idle-idle/2)
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      Stat
		wantError string
	}{
		{
			name: "linux 6 ten columns",
			in:   "cpu  4346 7 1505 48084 311 2 181 8 0 0\ncpu0 1 0 0 0 0 0 0 0 0 0\ncpu1 1 0 0 0 0 0 0 0 0 0\nctxt 5\n",
			want: Stat{Total: CPUTimes{User: 4346, Nice: 7, System: 1505, Idle: 48084, IOWait: 311, IRQ: 2, SoftIRQ: 181, Steal: 8}, Cores: 2},
		},
		{
			name: "old kernel four columns",
			in:   "cpu 10 20 30 40\ncpu0 10 20 30 40\n",
			want: Stat{Total: CPUTimes{User: 10, Nice: 20, System: 30, Idle: 40}, Cores: 1},
		},
		{
			name: "generated fixture",
			in:   statFixture(100, 100, 800),
			want: Stat{Total: CPUTimes{User: 100, System: 100, Idle: 800}, Cores: 2},
		},
		{name: "no aggregate line", in: "cpu0 1 2 3 4\n", wantError: `no aggregate "cpu" line`},
		{name: "no per-cpu lines", in: "cpu 1 2 3 4\n", wantError: `no per-CPU`},
		{name: "too few columns", in: "cpu 1 2 3\ncpu0 1 2 3\n", wantError: "at least 4"},
		{name: "not a number", in: "cpu 1 x 3 4\ncpu0 1 2 3 4\n", wantError: "line 1 column 3"},
		{name: "empty", in: "", wantError: `no aggregate "cpu" line`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("ParseStat error = %v, want one containing %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStat: %v", err)
			}
			if got != tt.want {
				t.Errorf("ParseStat = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUtilisation(t *testing.T) {
	base := CPUTimes{User: 100, System: 100, Idle: 800}
	tests := []struct {
		name   string
		cur    CPUTimes
		want   float64
		wantOK bool
	}{
		{"half busy", CPUTimes{User: 400, System: 300, Idle: 1300}, 0.5, true},
		{"idle", CPUTimes{User: 100, System: 100, Idle: 1800}, 0, true},
		{"all busy", CPUTimes{User: 1100, System: 100, Idle: 800}, 1, true},
		{"iowait counts as idle", CPUTimes{User: 200, System: 100, Idle: 800, IOWait: 100}, 0.5, true},
		{"steal counts as neither", CPUTimes{User: 200, System: 100, Idle: 900, Steal: 1000}, 0.5, true},
		{"no tick passed", base, 0, false},
		{"went backwards", CPUTimes{User: 50, System: 100, Idle: 2000}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Utilisation(base, tt.cur)
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("Utilisation = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// procRoot writes a fixture /proc/stat under a temporary directory.
func procRoot(t *testing.T, stat string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOpenOptions(t *testing.T) {
	root := procRoot(t, statFixture(100, 100, 800))
	tests := []struct {
		spec      string
		want      Model
		interval  time.Duration
		wantError string
	}{
		{spec: "estimate", want: Model{Idle: 2 * DefaultIdlePerCore, MaxPerCore: DefaultMaxPerCore, Cores: 2}, interval: 100 * time.Millisecond},
		{spec: "estimate:idle=2W,max_per_core=1.5W", want: Model{Idle: 2, MaxPerCore: 1.5, Cores: 2}, interval: 100 * time.Millisecond},
		{spec: "estimate:idle=2W,max=15W", want: Model{Idle: 2, MaxPerCore: 6.5, Cores: 2}, interval: 100 * time.Millisecond},
		{spec: "estimate:idle=500mW&cores=4&rate=50", want: Model{Idle: 0.5, MaxPerCore: DefaultMaxPerCore, Cores: 4}, interval: 20 * time.Millisecond},
		{spec: "estimate:max=1W,idle=2W", wantError: "below idle"},
		{spec: "estimate:max=10W,max_per_core=1W", wantError: "not both"},
		{spec: "estimate:idle=-1W", wantError: "negative"},
		{spec: "estimate:idle=lots", wantError: "want a number with a unit"},
		{spec: "estimate:rate=1000", wantError: "rate="},
		{spec: "estimate:rate=0", wantError: "rate="},
		{spec: "estimate:cores=0", wantError: "cores="},
		// Numbers that are no power, or none a machine draws, are refused:
		// they used to be integrated to NaN or +Inf joules.
		{spec: "estimate:idle=NaN", wantError: "finite number"},
		{spec: "estimate:idle=Inf", wantError: "finite number"},
		{spec: "estimate:idle=1e308", wantError: "want at most 100000 W"},
		{spec: "estimate:max=1e308", wantError: "want at most 100000 W"},
		{spec: "estimate:max_per_core=NaNW", wantError: "finite number"},
		{spec: "estimate:cores=1000000000", wantError: "from 1 to 65536"},
		{spec: "estimate:cores=65536,max_per_core=2W", wantError: "the model reaches"},
		{spec: "estimate:rate=NaN", wantError: "rate="},
		{spec: "estimate:speed=9", wantError: "unknown option"},
		{spec: "estimate:procfs=/nonexistent/proc", wantError: "cannot read /nonexistent/proc/stat"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			sp, err := meters.ParseSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Open(sp, meters.Env{ProcfsRoot: root})
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("Open(%q) error = %v, want one containing %q", tt.spec, err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.spec, err)
			}
			got := m.Model()
			if got.Cores != tt.want.Cores || math.Abs(float64(got.Idle-tt.want.Idle)) > 1e-9 || math.Abs(float64(got.MaxPerCore-tt.want.MaxPerCore)) > 1e-9 {
				t.Errorf("model = %+v, want %+v", got, tt.want)
			}
			if m.interval != tt.interval {
				t.Errorf("interval = %v, want %v", m.interval, tt.interval)
			}
		})
	}
}

func TestOpenErrorsAreSentinels(t *testing.T) {
	_, err := Open(meters.Spec{Raw: "estimate", Driver: Name, Options: map[string]string{}}, meters.Env{ProcfsRoot: t.TempDir()})
	if !errors.Is(err, meters.ErrUnavailable) {
		t.Errorf("missing /proc/stat: error %v is not ErrUnavailable", err)
	}
	// Tests run as root, which reads any file: the permission path is
	// checked on the function that maps read errors.
	if err := statError("/proc/stat", fs.ErrPermission); !errors.Is(err, meters.ErrPermission) {
		t.Errorf("permission: error %v is not ErrPermission", err)
	}
	_, err = Open(meters.Spec{Raw: "estimate", Driver: Name, Options: map[string]string{}}, meters.Env{ProcfsRoot: procRoot(t, "garbage\n")})
	if !errors.Is(err, meters.ErrUnavailable) {
		t.Errorf("unparsable /proc/stat: error %v is not ErrUnavailable", err)
	}
}

func TestInfoSaysModel(t *testing.T) {
	m, err := Open(meters.Spec{Raw: "estimate", Driver: Name, Options: map[string]string{}}, meters.Env{ProcfsRoot: procRoot(t, statFixture(1, 1, 8))})
	if err != nil {
		t.Fatal(err)
	}
	info := m.Info()
	if info.Kind != meters.Model {
		t.Errorf("Kind = %q, want %q", info.Kind, meters.Model)
	}
	if !strings.Contains(info.Description, "estimate (model)") {
		t.Errorf("Description %q does not say \"estimate (model)\"", info.Description)
	}
	if len(info.Channels) != 1 || !info.Channels[0].InTotal {
		t.Errorf("Channels = %+v, want one channel in the total", info.Channels)
	}
	if !strings.Contains(info.Label(), "estimate") {
		t.Errorf("Label %q does not say estimate", info.Label())
	}
}

// TestRunKnownPower feeds Run three /proc/stat snapshots and a clock that
// advances 100 ms per reading, and checks the modelled power and the
// cumulative energy against figures worked out by hand.
func TestRunKnownPower(t *testing.T) {
	sp, _ := meters.ParseSpec("estimate:idle=2W,max_per_core=3W,rate=100")
	m, err := Open(sp, meters.Env{ProcfsRoot: procRoot(t, statFixture(100, 100, 800))})
	if err != nil {
		t.Fatal(err)
	}
	snapshots := []string{
		statFixture(100, 100, 800),   // start
		statFixture(400, 300, 1300),  // +500 busy, +500 idle: u = 0.5
		statFixture(1400, 300, 1300), // +1000 busy: u = 1
		statFixture(1400, 300, 1300), // no tick: keeps u = 1
	}
	reads := 0
	m.readStat = func() ([]byte, error) {
		s := snapshots[min(reads, len(snapshots)-1)]
		reads++
		return []byte(s), nil
	}
	t0 := time.Unix(1764160000, 0)
	clockReads := 0
	m.clock = func() time.Time {
		t := t0.Add(time.Duration(clockReads) * 100 * time.Millisecond)
		clockReads++
		return t
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []meters.Sample
	err = m.Run(ctx, func(s meters.Sample) {
		got = append(got, s)
		if len(got) == 3 {
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// P = 2 W + u x 2 CPUs x 3 W.
	want := []meters.Sample{
		{T: t0.Add(100 * time.Millisecond), Watts: 5, Joules: 0.5},                 // 5 W x 0.1 s
		{T: t0.Add(200 * time.Millisecond), Watts: 8, Joules: 0.5 + (5+8)/2.0*0.1}, // trapezoid
		{T: t0.Add(300 * time.Millisecond), Watts: 8, Joules: 0.5 + 0.65 + 8*0.1},  // u kept
	}
	if len(got) != len(want) {
		t.Fatalf("got %d samples, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.T.Equal(w.T) || math.Abs(g.Watts-w.Watts) > 1e-9 || math.Abs(g.Joules-w.Joules) > 1e-9 || g.Channel != 0 {
			t.Errorf("sample %d = %+v, want %+v", i, g, w)
		}
	}
	rep := m.Report()
	if rep.Counters["samples"] != 3 || len(rep.Warnings) == 0 {
		t.Errorf("Report = %+v, want 3 samples and the model warning", rep)
	}
}

func TestRunReadFailure(t *testing.T) {
	m, err := Open(meters.Spec{Raw: "estimate", Driver: Name, Options: map[string]string{"rate": "100"}}, meters.Env{ProcfsRoot: procRoot(t, statFixture(1, 1, 8))})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	m.readStat = func() ([]byte, error) {
		calls++
		if calls > 1 {
			return nil, fs.ErrPermission
		}
		return []byte(statFixture(1, 1, 8)), nil
	}
	err = m.Run(context.Background(), func(meters.Sample) {})
	if !errors.Is(err, meters.ErrPermission) {
		t.Errorf("Run error = %v, want ErrPermission", err)
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name       string
		root       string
		wantUsable bool
	}{
		{"readable", procRoot(t, statFixture(1, 1, 8)), true},
		{"missing", t.TempDir(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Detect(meters.Env{ProcfsRoot: tt.root})
			if len(c) != 1 || c[0].Usable != tt.wantUsable || c[0].Spec != Name {
				t.Fatalf("Detect = %+v, want one candidate usable=%v", c, tt.wantUsable)
			}
			if !tt.wantUsable && c[0].Reason == "" {
				t.Errorf("unusable candidate without a reason")
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	d, ok := meters.Lookup(Name)
	if !ok {
		t.Fatal("estimate driver not registered")
	}
	if d.AutoRank != 100 || d.Detect == nil {
		t.Errorf("driver = AutoRank %d, Detect set %v; want 100 and set", d.AutoRank, d.Detect != nil)
	}
}

// TestPrecision: the model states its own error, its step (one 10 ms tick
// of CPU time in an interval) and its ceiling as the channel's full scale.
func TestPrecision(t *testing.T) {
	root := procRoot(t, statFixture(100, 100, 800)) // 2 CPUs
	for _, c := range []struct {
		name      string
		opts      map[string]string
		stepW     float64
		fullScale float64
	}{
		{"defaults: 2 CPUs at 10 Hz", nil, 2 * 2.76 / 20, 2*0.74 + 2*2.76},
		{"cores=4 on 2 CPUs' ticks", map[string]string{"cores": "4"}, 4 * 2.76 / 20, 4*0.74 + 4*2.76},
		{"rate=50: 2 ticks per CPU", map[string]string{"rate": "50"}, 2 * 2.76 / 4, 2*0.74 + 2*2.76},
		{"idle=2W,max=10W", map[string]string{"idle": "2W", "max": "10W"}, 2 * 4.0 / 20, 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := map[string]string{}
			for k, v := range c.opts {
				opts[k] = v
			}
			m, err := Open(meters.Spec{Raw: "estimate", Driver: Name, Options: opts}, meters.Env{ProcfsRoot: root})
			if err != nil {
				t.Fatal(err)
			}
			info := m.Info()
			p := info.Precision
			if math.Abs(p.PowerStepW-c.stepW) > 1e-9 || p.RelError != RelError || p.EnergyStepJ != 0 {
				t.Errorf("precision %+v; want power step %.4g W, relative error %v", p, c.stepW, RelError)
			}
			if !strings.Contains(p.Source, "Cloud Carbon Footprint") {
				t.Errorf("source %q does not say where the error comes from", p.Source)
			}
			if got := info.Channels[0].FullScaleW; math.Abs(got-c.fullScale) > 1e-9 {
				t.Errorf("full scale %v W, want the model's ceiling %v W", got, c.fullScale)
			}
		})
	}
}
