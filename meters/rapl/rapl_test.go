package rapl

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/prometheus/procfs/sysfs"
)

func spec(t testing.TB, s string) meters.Spec {
	t.Helper()
	sp, err := meters.ParseSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestDiscoverAndTotal(t *testing.T) {
	tests := []struct {
		fixture  string
		spec     string
		channels []string
		inTotal  []string
		dropped  []string
	}{
		{
			fixture:  "intel-1socket",
			spec:     "rapl",
			channels: []string{"package-0", "core-0", "uncore-0", "dram-0"},
			inTotal:  []string{"package-0"},
		},
		{
			fixture:  "intel-1socket",
			spec:     "rapl:dram=1",
			channels: []string{"package-0", "core-0", "uncore-0", "dram-0"},
			inTotal:  []string{"package-0", "dram-0"},
		},
		{
			fixture:  "intel-2socket",
			spec:     "rapl",
			channels: []string{"package-0", "dram-0", "package-1", "dram-1"},
			inTotal:  []string{"package-0", "package-1"},
		},
		{
			fixture:  "intel-2socket",
			spec:     "rapl:dram=1",
			channels: []string{"package-0", "dram-0", "package-1", "dram-1"},
			inTotal:  []string{"package-0", "dram-0", "package-1", "dram-1"},
		},
		{
			fixture:  "intel-psys",
			spec:     "rapl",
			channels: []string{"package-0", "core-0", "uncore-0", "psys"},
			inTotal:  []string{"package-0"},
		},
		{
			fixture:  "intel-psys",
			spec:     "rapl:psys=1",
			channels: []string{"package-0", "core-0", "uncore-0", "psys"},
			inTotal:  []string{"psys"},
		},
		{
			fixture:  "intel-mmio",
			spec:     "rapl",
			channels: []string{"package-0", "core-0"},
			inTotal:  []string{"package-0"},
			dropped:  []string{"intel-rapl-mmio:0"},
		},
		{
			fixture:  "amd",
			spec:     "rapl",
			channels: []string{"package-0", "core-0"},
			inTotal:  []string{"package-0"},
		},
		{
			fixture:  "no-max-range",
			spec:     "rapl",
			channels: []string{"package-0", "dram-0"},
			inTotal:  []string{"package-0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture+"/"+tt.spec, func(t *testing.T) {
			root := loadFixture(t, tt.fixture)
			m, err := Open(spec(t, tt.spec), meters.Env{Fixture: true, SysfsRoot: root})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer m.src.Close()
			var names, total []string
			for _, c := range m.Info().Channels {
				names = append(names, c.Name)
				if c.InTotal {
					total = append(total, c.Name)
				}
			}
			if !reflect.DeepEqual(names, tt.channels) {
				t.Errorf("channels = %v, want %v", names, tt.channels)
			}
			if !reflect.DeepEqual(total, tt.inTotal) {
				t.Errorf("in total = %v, want %v", total, tt.inTotal)
			}
			_, dropped, err := Discover(root)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dropped, tt.dropped) {
				t.Errorf("dropped = %v, want %v", dropped, tt.dropped)
			}
			if m.Info().Kind != meters.Measured {
				t.Errorf("Kind = %v", m.Info().Kind)
			}
		})
	}
}

// TestNoMaxRangeFallback shows why Discover does not rely on procfs alone:
// procfs fails on this tree, and Discover still finds both zones.
func TestNoMaxRangeFallback(t *testing.T) {
	root := loadFixture(t, "no-max-range")
	pfs, err := sysfs.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sysfs.GetRaplZones(pfs); err == nil {
		t.Fatal("procfs GetRaplZones read a tree with a zone lacking max_energy_range_uj; the fallback may no longer be needed")
	}
	zones, _, err := Discover(root)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	want := map[string]uint64{"package-0": 262143328850, "dram-0": 0}
	for _, z := range zones {
		if want[z.Channel] != z.MaxUJ {
			t.Errorf("%s MaxUJ = %d, want %d", z.Channel, z.MaxUJ, want[z.Channel])
		}
	}
	m, err := Open(spec(t, "rapl"), meters.Env{Fixture: true, SysfsRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	m.src.Close()
	if notes := strings.Join(m.Notes(), "\n"); !strings.Contains(notes, "dram-0") || !strings.Contains(notes, "max_energy_range_uj") {
		t.Errorf("notes %q do not say dram-0 lacks its range", notes)
	}
}

func TestZoneNesting(t *testing.T) {
	zones, _, err := Discover(loadFixture(t, "intel-2socket"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, z := range zones {
		got[z.Dir] = fmt.Sprintf("%s parent=%q socket=%d max=%d", z.Channel, z.Parent, z.Socket, z.MaxUJ)
	}
	want := map[string]string{
		"intel-rapl:0":   `package-0 parent="" socket=0 max=262143328850`,
		"intel-rapl:0:0": `dram-0 parent="intel-rapl:0" socket=0 max=65712999613`,
		"intel-rapl:1":   `package-1 parent="" socket=1 max=262143328850`,
		"intel-rapl:1:0": `dram-1 parent="intel-rapl:1" socket=1 max=65712999613`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("zones:\n got %v\nwant %v", got, want)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name      string
		fixture   string // "" for an empty sysfs
		spec      string
		open      openFunc
		sentinel  error
		wantError []string
	}{
		{name: "no powercap (a VM)", spec: "rapl", sentinel: meters.ErrUnavailable, wantError: []string{"no powercap interface"}},
		{name: "unreadable energy_uj", fixture: "unreadable", spec: "rapl", open: unprivilegedOpen, sentinel: meters.ErrPermission,
			wantError: []string{"intel-rapl:0/energy_uj", "CVE-2020-8694", "chmod o+r", `SUBSYSTEM=="powercap"`, "backend=perf"}},
		{name: "psys asked, none there", fixture: "intel-1socket", spec: "rapl:psys=1", sentinel: meters.ErrSpec, wantError: []string{"no psys zone"}},
		{name: "dram asked on AMD", fixture: "amd", spec: "rapl:dram=1", sentinel: meters.ErrSpec, wantError: []string{"no dram zone"}},
		{name: "rate too high", fixture: "intel-1socket", spec: "rapl:rate=5000", sentinel: meters.ErrSpec, wantError: []string{"rate="}},
		{name: "rate too low to see every wrap", fixture: "intel-1socket", spec: "rapl:rate=0.001", sentinel: meters.ErrSpec, wantError: []string{"wrap twice"}},
		{name: "bad bool", fixture: "intel-1socket", spec: "rapl:psys=maybe", sentinel: meters.ErrSpec, wantError: []string{"psys="}},
		{name: "bad backend", fixture: "intel-1socket", spec: "rapl:backend=msr", sentinel: meters.ErrSpec, wantError: []string{"backend="}},
		{name: "unknown option", fixture: "intel-1socket", spec: "rapl:speed=3", sentinel: meters.ErrSpec, wantError: []string{"unknown option"}},
		{name: "no perf PMU", fixture: "amd", spec: "rapl:backend=perf", sentinel: meters.ErrUnavailable, wantError: []string{"no power PMU"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.fixture != "" {
				root = loadFixture(t, tt.fixture)
			}
			op := tt.open
			if op == nil {
				op = os.Open
			}
			m, err := open(spec(t, tt.spec), meters.Env{Fixture: true, SysfsRoot: root}, op)
			if err == nil {
				m.src.Close()
				t.Fatalf("Open(%q) succeeded", tt.spec)
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v is not %v", err, tt.sentinel)
			}
			for _, w := range tt.wantError {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestUnreadableAsRoot checks the fixture itself: the same tree is
// readable to root, which is who the kernel also lets in.
func TestUnreadableAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: checks that root reads a 0400 energy_uj")
	}
	m, err := Open(spec(t, "rapl"), meters.Env{Fixture: true, SysfsRoot: loadFixture(t, "unreadable")})
	if err != nil {
		t.Fatalf("root could not open: %v", err)
	}
	m.src.Close()
}

func TestDelta(t *testing.T) {
	const max = 262143328850
	tests := []struct {
		name      string
		prev, cur uint64
		max       uint64
		want      uint64
		wantOK    bool
	}{
		{"forward", 100, 350, max, 250, true},
		{"unchanged", 100, 100, max, 0, true},
		{"wrap", max - 100, 50, max, 150, true},
		{"wrap, no max known", 500, 50, 0, 0, false},
		{"prev above max", max + 5, 3, max, 0, false},
		{"perf 64-bit forward", 1 << 40, 1<<40 + 7, 0, 7, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := delta(tt.prev, tt.cur, tt.max)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("delta(%d, %d, %d) = %d, %v; want %d, %v", tt.prev, tt.cur, tt.max, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseCounter(t *testing.T) {
	tests := []struct {
		in     string
		want   uint64
		wantOK bool
	}{
		{"18134567001\n", 18134567001, true},
		{"0\n", 0, true},
		{"00000000000000000042\n", 42, true},
		{"7", 7, true},
		{"", 0, false},
		{"\n", 0, false},
		{"12a\n", 0, false},
		{"-5\n", 0, false},
		{"99999999999999999999999\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.in), func(t *testing.T) {
			got, ok := parseCounter([]byte(tt.in))
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseCounter(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// fakeSource replays counter readings.
type fakeSource struct {
	readings [][]uint64
	i        int
}

func (f *fakeSource) Read(dst []uint64) error {
	copy(dst, f.readings[min(f.i, len(f.readings)-1)])
	f.i++
	return nil
}
func (f *fakeSource) Close() error { return nil }

// TestRunKnownReadings drives Run with injected counters and clock: one
// channel wraps, and each sample's power and energy is worked out by hand.
func TestRunKnownReadings(t *testing.T) {
	root := loadFixture(t, "intel-1socket")
	m, err := Open(spec(t, "rapl:rate=1000"), meters.Env{Fixture: true, SysfsRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	m.src.Close()
	const max = 262143328850
	// package-0 wraps between the 2nd and 3rd reading; others are steady.
	m.src = &fakeSource{readings: [][]uint64{
		{max - 1_000_000, 0, 0, 0},
		{max - 500_000, 100_000, 0, 0},
		{250_000, 200_000, 0, 0},
	}}
	t0 := time.Unix(1764160000, 0)
	k := 0
	m.clock = func() time.Time { k++; return t0.Add(time.Duration(k-1) * 10 * time.Millisecond) }
	ctx, cancel := context.WithCancel(context.Background())
	var got []meters.Sample
	err = m.Run(ctx, func(s meters.Sample) {
		got = append(got, s)
		if len(got) == 3*4 {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// package-0: 0.5 J in 10 ms = 50 W, then (max-(max-500000))+250000 µJ
	// = 0.75 J in 10 ms = 75 W.
	wantPkg := []struct{ w, j float64 }{{math.NaN(), 0}, {50, 0.5}, {75, 1.25}}
	wantCore := []struct{ w, j float64 }{{math.NaN(), 0}, {10, 0.1}, {10, 0.2}}
	for r := range 3 {
		for ch, want := range map[int]struct{ w, j float64 }{0: wantPkg[r], 1: wantCore[r]} {
			s := got[r*4+ch]
			if s.Channel != ch || !s.T.Equal(t0.Add(time.Duration(r)*10*time.Millisecond)) {
				t.Errorf("reading %d channel %d: sample %+v has wrong channel or time", r, ch, s)
			}
			if !(math.IsNaN(want.w) && math.IsNaN(s.Watts)) && math.Abs(s.Watts-want.w) > 1e-6 {
				t.Errorf("reading %d channel %d: watts %v, want %v", r, ch, s.Watts, want.w)
			}
			if math.Abs(s.Joules-want.j) > 1e-9 {
				t.Errorf("reading %d channel %d: joules %v, want %v", r, ch, s.Joules, want.j)
			}
		}
	}
	rep := m.Report()
	if rep.Counters["wraps"] != 1 || rep.Counters["readings"] != 2 {
		t.Errorf("report counters = %v, want 1 wrap in 2 readings", rep.Counters)
	}
}

// TestBackgroundWraparound advances package-0's energy_uj in the
// background at a known power, through several wraparounds, while the
// meter reads the real files; the recorded mean power must be within 1 %.
// Time is a fake clock that the writer advances, 1 ms per write, so the
// check does not depend on how the scheduler treats the test.
func TestBackgroundWraparound(t *testing.T) {
	root := loadFixture(t, "intel-1socket")
	zone := filepath.Join(root, "class", "powercap", "intel-rapl:0")
	const (
		maxUJ  = 20_000_000 // 20 J: at 1 kW a 100 Hz meter still sees at most one wrap
		power  = 50.0       // W: wraps every 0.4 s
		steps  = 1500       // 1.5 s of fake time: three wraps
		startU = maxUJ - 3_000_000
	)
	if err := os.WriteFile(filepath.Join(zone, "max_energy_range_uj"), []byte(fmt.Sprint(maxUJ)), 0o644); err != nil {
		t.Fatal(err)
	}
	counter, err := os.OpenFile(filepath.Join(zone, "energy_uj"), os.O_RDWR|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer counter.Close()
	t0 := time.Unix(1764160000, 0)
	var (
		mu  sync.Mutex
		now = t0
	)
	// Fixed-width values written in place: the meter keeps the file open,
	// so the file must not be replaced, and a shorter value must not leave
	// digits of a longer one behind.
	write := func(step int) {
		uj := (uint64(startU) + uint64(float64(step)*1e-3*power*1e6)) % maxUJ
		if _, err := counter.WriteAt([]byte(fmt.Sprintf("%020d\n", uj)), 0); err != nil {
			panic(err)
		}
	}
	write(0)

	m, err := Open(spec(t, "rapl:rate=1000"), meters.Env{Fixture: true, SysfsRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	m.clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for step := 1; step <= steps; step++ {
			mu.Lock()
			write(step)
			now = t0.Add(time.Duration(step) * time.Millisecond)
			mu.Unlock()
			time.Sleep(200 * time.Microsecond)
		}
		time.Sleep(20 * time.Millisecond) // let the meter take a last reading
		cancel()
	}()
	var first, last *meters.Sample
	err = m.Run(ctx, func(s meters.Sample) {
		if s.Channel != 0 {
			return
		}
		if first == nil {
			first = &s
		}
		last = &s
	})
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if first == nil || last == nil || !last.T.After(first.T) {
		t.Fatalf("no span recorded: first %v last %v", first, last)
	}
	mean := (last.Joules - first.Joules) / last.T.Sub(first.T).Seconds()
	if math.Abs(mean-power)/power > 0.01 {
		t.Errorf("mean power %.3f W over %v, want %.1f W within 1%%", mean, last.T.Sub(first.T), power)
	}
	if w := m.Report().Counters["wraps"]; w < 3 {
		t.Errorf("saw %d wraps, want at least 3", w)
	}
	t.Logf("mean %.4f W over %v, %d wraps, %d readings", mean, last.T.Sub(first.T), m.Report().Counters["wraps"], m.Report().Counters["readings"])
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name       string
		fixture    string
		open       openFunc
		wantUsable bool
		details    []string
		reason     string
		perf       bool // a perf candidate follows
	}{
		{name: "one socket", fixture: "intel-1socket", wantUsable: true,
			details: []string{"package-0  intel-rapl:0     readable, range 262143.33 J, in total", "core-0"}},
		{name: "mmio duplicate", fixture: "intel-mmio", wantUsable: true, details: []string{"dropped intel-rapl-mmio duplicates: intel-rapl-mmio:0"}},
		{name: "no range", fixture: "no-max-range", wantUsable: true, details: []string{"range unknown"}},
		{name: "vm", fixture: "", reason: "no powercap interface"},
		{name: "unreadable", fixture: "unreadable", open: unprivilegedOpen, reason: "chmod o+r", details: []string{"NOT readable (permission denied)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.fixture != "" {
				root = loadFixture(t, tt.fixture)
			}
			op := tt.open
			if op == nil {
				op = os.Open
			}
			cands := detect(meters.Env{Fixture: true, SysfsRoot: root}, op)
			if len(cands) == 0 {
				t.Fatal("no candidates")
			}
			c := cands[0]
			if c.Spec != "rapl" || c.Usable != tt.wantUsable {
				t.Errorf("candidate %+v, want spec rapl usable=%v", c, tt.wantUsable)
			}
			all := strings.Join(c.Details, "\n")
			for _, d := range tt.details {
				if !strings.Contains(all, d) {
					t.Errorf("details\n%s\nlack %q", all, d)
				}
			}
			if !strings.Contains(c.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", c.Reason, tt.reason)
			}
		})
	}
}

func TestDetectOffersPerf(t *testing.T) {
	root := loadFixture(t, "intel-1socket")
	// Make sysfs unreadable but keep the PMU: the perf backend is offered,
	// not tried, since the PMU is a fixture's.
	cands := detect(meters.Env{Fixture: true, SysfsRoot: root}, func(string) (*os.File, error) { return nil, os.ErrPermission })
	if len(cands) != 2 || cands[1].Spec != "rapl:backend=perf" || cands[1].Usable || !strings.Contains(cands[1].Reason, "not tried") {
		t.Fatalf("candidates = %+v, want sysfs then an untried perf candidate", cands)
	}
}

func TestDiscoverPerf(t *testing.T) {
	const scale = 2.3283064365386962890625e-10
	tests := []struct {
		fixture  string
		want     PerfPMU
		channels []string
	}{
		{
			fixture: "intel-1socket",
			want: PerfPMU{Type: 18, CPUs: []int{0}, Sockets: []int{0}, Events: []PerfEvent{
				{"energy-pkg", "package", 2, scale}, {"energy-cores", "core", 1, scale},
				{"energy-gpu", "uncore", 4, scale}, {"energy-ram", "dram", 3, scale},
			}},
			channels: []string{"package-0", "core-0", "uncore-0", "dram-0"},
		},
		{
			fixture: "intel-2socket",
			want: PerfPMU{Type: 24, CPUs: []int{0, 28}, Sockets: []int{0, 1}, Events: []PerfEvent{
				{"energy-pkg", "package", 2, scale}, {"energy-ram", "dram", 3, 1.52587890625e-05},
			}},
			channels: []string{"package-0", "dram-0", "package-1", "dram-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			pmu, err := DiscoverPerf(loadFixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pmu, tt.want) {
				t.Errorf("DiscoverPerf =\n %+v\nwant\n %+v", pmu, tt.want)
			}
			zones, _, _ := perfZones(pmu)
			var names []string
			for _, z := range zones {
				names = append(names, z.Channel)
			}
			if !reflect.DeepEqual(names, tt.channels) {
				t.Errorf("perf channels = %v, want %v", names, tt.channels)
			}
			in, err := TotalRule(zones, false, false)
			if err != nil {
				t.Fatal(err)
			}
			for i, z := range zones {
				if in[i] != (z.Domain == "package") {
					t.Errorf("%s in total = %v", z.Channel, in[i])
				}
			}
		})
	}
}

func TestParseEventConfig(t *testing.T) {
	formats := map[string]string{"event": "config:0-7", "umask": "config:8-15"}
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"event=0x02", 0x02, false},
		{"event=0x01,umask=0x3", 0x301, false},
		{"other=5", 5, false},
		{"event", 0, true},
		{"event=zz", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEventConfig(tt.in, formats)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseEventConfig(%q) = %#x, %v; want %#x, err %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"0", []int{0}, false},
		{"0,28", []int{0, 28}, false},
		{"0-2,8\n", []int{0, 1, 2, 8}, false},
		{"3-1", nil, true},
		{"x", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCPUList(tt.in)
			if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseCPUList(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	d, ok := meters.Lookup(Name)
	if !ok || d.AutoRank != 10 || d.Detect == nil {
		t.Fatalf("rapl driver = %+v, %v; want AutoRank 10 with Detect", d, ok)
	}
}

func TestAutoMovesOnWithoutRAPL(t *testing.T) {
	cands := Detect(meters.Env{Fixture: true, SysfsRoot: t.TempDir()})
	if len(cands) != 1 || cands[0].Usable {
		t.Fatalf("Detect on an empty sysfs = %+v, want one unusable candidate", cands)
	}
}

func TestPerfZonesOrderAndPsys(t *testing.T) {
	pmu := PerfPMU{Type: 18, CPUs: []int{0, 8}, Sockets: []int{0, 1}, Events: []PerfEvent{
		{"energy-pkg", "package", 2, 1}, {"energy-cores", "core", 1, 1}, {"energy-psys", "psys", 5, 1},
	}}
	zones, cpus, _ := perfZones(pmu)
	var got []string
	for i, z := range zones {
		got = append(got, fmt.Sprintf("%s@%d nested=%v", z.Channel, cpus[i], z.Nested()))
	}
	want := []string{"package-0@0 nested=false", "core-0@0 nested=true", "package-1@8 nested=false", "core-1@8 nested=true", "psys@0 nested=false"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("perf zones = %v, want %v", got, want)
	}
	in, err := TotalRule(zones, true, false)
	if err != nil || !in[4] || in[0] || in[2] {
		t.Errorf("psys=1 total = %v, %v; want psys alone", in, err)
	}

	// A PMU with psys alone (some virtual machines expose just that): the
	// default total has no package zone; the machine is at fault, not the
	// spec, and the error says what would work.
	only, _, _ := perfZones(PerfPMU{Type: 9, CPUs: []int{0}, Sockets: []int{0}, Events: []PerfEvent{{"energy-psys", "psys", 5, 1}}})
	_, err = totalFor(only, options{}, spec(t, "rapl:backend=perf"))
	if !errors.Is(err, meters.ErrUnavailable) || errors.Is(err, meters.ErrSpec) || !strings.Contains(err.Error(), "psys=1") {
		t.Errorf("psys-only total: %v; want ErrUnavailable, not ErrSpec, naming psys=1", err)
	}
}

// TestRunStuckCounters: counters that never move (a virtual machine that
// exposes RAPL without counting) end Run with ErrUnavailable once
// StuckAfter has passed, rather than recording 0 W as a measurement; a
// counter that moves late enough, but in time, keeps the meter going.
func TestRunStuckCounters(t *testing.T) {
	const step = 10 * time.Millisecond
	for _, c := range []struct {
		name    string
		moveAt  int // reading at which package-0 first moves; 0: never
		wantErr bool
	}{
		{"never moves", 0, true},
		{"moves in time", int(StuckAfter/step) - 20, false},
		{"only a nested zone moves", -1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := loadFixture(t, "intel-1socket")
			m, err := Open(spec(t, "rapl:rate=1000"), meters.Env{Fixture: true, SysfsRoot: root})
			if err != nil {
				t.Fatal(err)
			}
			if m.stuck != 0 {
				t.Fatalf("a fixture tree's meter gives up on still counters after %v; want never", m.stuck)
			}
			m.stuck = StuckAfter // as on /sys
			m.src.Close()
			const readings = 400 // 4 s of fake time, twice StuckAfter
			var rs [][]uint64
			for r := range readings {
				pkg, core := uint64(1000), uint64(1000)
				if c.moveAt > 0 && r >= c.moveAt {
					pkg += uint64(r)
				}
				if c.moveAt < 0 {
					core += uint64(r) // core-0 is nested in package-0: not in the total
				}
				rs = append(rs, []uint64{pkg, core, 1000, 1000})
			}
			m.src = &fakeSource{readings: rs}
			t0 := time.Unix(1764160000, 0)
			k := 0
			m.clock = func() time.Time { k++; return t0.Add(time.Duration(k-1) * step) }
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n := 0
			err = m.Run(ctx, func(s meters.Sample) {
				if n++; n == readings*4 {
					cancel()
				}
			})
			if c.wantErr {
				if !errors.Is(err, meters.ErrUnavailable) || !strings.Contains(err.Error(), "does not count") {
					t.Fatalf("Run = %v; want ErrUnavailable saying the counters do not count", err)
				}
				if span := time.Duration(n/4-1) * step; span < StuckAfter || span > StuckAfter+2*step {
					t.Errorf("gave up after %v of readings, want %v", span, StuckAfter)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run = %v; want no error", err)
			}
		})
	}
}

// TestMovesProbe: detection's probe passes counters that move (even late
// in the window) and refuses ones that do not, or where only a zone
// outside the total moves.
func TestMovesProbe(t *testing.T) {
	root := loadFixture(t, "intel-1socket")
	for _, c := range []struct {
		name     string
		readings [][]uint64
		wantErr  bool
	}{
		{"package moves", [][]uint64{{1, 1, 1, 1}, {1, 1, 1, 1}, {2, 1, 1, 1}}, false},
		{"nothing moves", [][]uint64{{1, 1, 1, 1}}, true},
		{"only core moves", [][]uint64{{1, 1, 1, 1}, {1, 2, 1, 1}, {1, 3, 1, 1}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Open(spec(t, "rapl"), meters.Env{Fixture: true, SysfsRoot: root})
			if err != nil {
				t.Fatal(err)
			}
			m.src.Close()
			m.src = &fakeSource{readings: c.readings}
			err = m.moves(20*time.Millisecond, time.Millisecond)
			if c.wantErr != (err != nil) || (err != nil && !errors.Is(err, meters.ErrUnavailable)) {
				t.Errorf("moves = %v, want error %v (ErrUnavailable)", err, c.wantErr)
			}
		})
	}
}

// TestMachineAtAnyRoot: whether a tree is a fixture is the caller's word
// (meters.Env.Fixture), not a guess from its path. A tree at a root other
// than /sys that the caller does not call a fixture (a container's
// `--path.sysfs /host/sys`) is a machine: Run gives up on counters that do
// not move and says why, and detection probes them.
func TestMachineAtAnyRoot(t *testing.T) {
	root := loadFixture(t, "intel-1socket") // its counters never move
	env := meters.Env{SysfsRoot: root}      // not called a fixture

	m, err := Open(spec(t, "rapl:rate=1000"), env)
	if err != nil {
		t.Fatal(err)
	}
	if m.stuck != StuckAfter {
		m.src.Close()
		t.Fatalf("at sysfs root %s the meter gives up on still counters after %v; want %v, as on /sys", root, m.stuck, StuckAfter)
	}
	m.stuck = 50 * time.Millisecond // the check, not its length, is under test
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = m.Run(ctx, func(meters.Sample) {})
	if !errors.Is(err, meters.ErrUnavailable) || !strings.Contains(err.Error(), "does not count") {
		t.Errorf("Run on still counters = %v; want ErrUnavailable saying the machine does not count", err)
	}

	cands := detect(env, os.Open)
	if len(cands) == 0 || cands[0].Usable || !strings.Contains(cands[0].Reason, "no counter in the total moved") {
		t.Errorf("detect on still counters = %+v; want the sysfs candidate unusable because nothing moved", cands)
	}
}

// TestDescriptionNamesRoot: the description names the tree the meter
// reads, whether it came from the environment or from sysfs=DIR.
func TestDescriptionNamesRoot(t *testing.T) {
	root := loadFixture(t, "intel-1socket")
	for _, c := range []struct {
		name string
		spec string
		env  meters.Env
	}{
		{"environment", "rapl", meters.Env{Fixture: true, SysfsRoot: root}},
		{"sysfs option", "rapl:sysfs=" + root, meters.Env{Fixture: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Open(spec(t, c.spec), c.env)
			if err != nil {
				t.Fatal(err)
			}
			defer m.src.Close()
			want := filepath.Join(root, "class", "powercap")
			if d := m.Info().Description; !strings.Contains(d, want) {
				t.Errorf("description %q does not name %s", d, want)
			}
		})
	}
}

// TestPrecision: the energy step is the sum of the energy units of the
// zones in the total, each derived from its range (2^32-1 units), and the
// power step that over the interval.
func TestPrecision(t *testing.T) {
	const (
		client = 262143328850.0 / math.MaxUint32 * 1e-6 // 61.04 µJ = 2^-14 J
		dram   = 65712999613.0 / math.MaxUint32 * 1e-6  // 15.30 µJ
		amd    = 65532610987.0 / math.MaxUint32 * 1e-6  // 15.26 µJ = 2^-16 J
	)
	for _, c := range []struct {
		fixture, spec string
		step          float64 // J; 0: unknown
		interval      float64 // s
	}{
		{"intel-1socket", "rapl", client, 0.01},
		{"intel-1socket", "rapl:rate=1000", client, 0.001},
		{"intel-2socket", "rapl", 2 * client, 0.01},
		{"intel-2socket", "rapl:dram=1", 2*client + 2*dram, 0.01},
		{"amd", "rapl", amd, 0.01},
		{"no-max-range", "rapl", client, 0.01},
		{"no-max-range", "rapl:dram=1", 0, 0.01},
	} {
		t.Run(c.fixture+"/"+c.spec, func(t *testing.T) {
			m, err := Open(spec(t, c.spec), meters.Env{Fixture: true, SysfsRoot: loadFixture(t, c.fixture)})
			if err != nil {
				t.Fatal(err)
			}
			defer m.src.Close()
			p := m.Info().Precision
			if math.Abs(p.EnergyStepJ-c.step) > 1e-9 || math.Abs(p.PowerStepW-c.step/c.interval) > 1e-9 {
				t.Errorf("precision %+v; want energy step %.4g J, power step %.4g W", p, c.step, c.step/c.interval)
			}
			if p.RelError != 0 || !strings.Contains(p.Source, "not stated by Intel or AMD") {
				t.Errorf("accuracy %v, source %q; want not stated, with the published validations", p.RelError, p.Source)
			}
			if c.step == 0 && !strings.Contains(p.Source, "unknown") {
				t.Errorf("source %q does not say the unit is unknown", p.Source)
			}
			if !strings.Contains(m.Info().Description, p.String()) {
				t.Errorf("description %q does not give the precision %q", m.Info().Description, p.String())
			}
		})
	}
}

// TestPerfUnits: the perf backend takes each channel's energy unit from
// the powercap zone of the same name.
func TestPerfUnits(t *testing.T) {
	root := loadFixture(t, "intel-1socket")
	pmu, err := DiscoverPerf(root)
	if err != nil {
		t.Fatal(err)
	}
	zones, _, _ := perfZones(pmu)
	units := perfUnits(zones, root)
	for i, z := range zones {
		if z.Channel == "package-0" && math.Abs(units[i]-262143328850.0/math.MaxUint32*1e-6) > 1e-12 {
			t.Errorf("package-0 unit %v J, want 61.04 µJ", units[i])
		}
	}
	if got := perfUnits(zones, t.TempDir()); got[0] != 0 {
		t.Errorf("without a powercap tree: unit %v, want 0 (unknown)", got[0])
	}
}
