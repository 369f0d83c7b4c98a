package carbon

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/runstore"
)

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

const s = int64(time.Second)

// series is 100 g/kWh from 0 s, 500 from 10 s, until 20 s.
func series(t *testing.T) Intensity {
	t.Helper()
	in, err := Series([]Point{{0, 100}, {10 * s, 500}}, 20*s)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestPieces(t *testing.T) {
	in := series(t)
	tests := []struct {
		name  string
		in    Intensity
		a, b  int64
		want  []Piece
		wantE error
	}{
		{"inside one period", in, 2 * s, 5 * s, []Piece{{2 * s, 5 * s, 100}}, nil},
		{"across the step", in, 5 * s, 15 * s, []Piece{{5 * s, 10 * s, 100}, {10 * s, 15 * s, 500}}, nil},
		{"from a point", in, 10 * s, 12 * s, []Piece{{10 * s, 12 * s, 500}}, nil},
		{"to the end", in, 15 * s, 20 * s, []Piece{{15 * s, 20 * s, 500}}, nil},
		{"before the first point", in, -1 * s, 5 * s, nil, ErrNotCovered},
		{"past the end", in, 15 * s, 21 * s, nil, ErrNotCovered},
		{"constant", Constant(400), -100 * s, 100 * s, []Piece{{-100 * s, 100 * s, 400}}, nil},
		{"empty window", in, 5 * s, 5 * s, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.Pieces(tc.a, tc.b)
			if !errors.Is(err, tc.wantE) || len(got) != len(tc.want) {
				t.Fatalf("Pieces = %v, %v; want %v, %v", got, err, tc.want, tc.wantE)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("piece %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestSeriesRefuses(t *testing.T) {
	tests := []struct {
		name   string
		points []Point
		end    int64
	}{
		{"no points", nil, 10},
		{"out of order", []Point{{5, 1}, {5, 2}}, 10},
		{"negative", []Point{{0, -1}}, 10},
		{"NaN", []Point{{0, math.NaN()}}, 10},
		{"ends before its last point", []Point{{0, 1}, {5, 1}}, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Series(tc.points, tc.end); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestOperational: a machine drawing 100 W, 40 W of it idle, over 5-15 s
// of the series: the dynamic 60 W meet 100 g/kWh for 5 s and 500 for 5 s.
func TestOperational(t *testing.T) {
	cum := func(tNs int64) float64 { return 100 * float64(tNs) / 1e9 }
	in := series(t)
	tests := []struct {
		name  string
		idleW float64
		pue   float64
		want  float64
	}{
		{"dynamic", 40, 1, (60*5*100 + 60*5*500) / 3.6e6},
		{"whole device", 0, 1, (100*5*100 + 100*5*500) / 3.6e6},
		{"with a PUE", 40, 1.5, 1.5 * (60*5*100 + 60*5*500) / 3.6e6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Operational(cum, tc.idleW, 5*s, 15*s, in, tc.pue)
			if err != nil || !near(got, tc.want) {
				t.Errorf("Operational = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, err := Operational(cum, 0, 15*s, 25*s, in, 1); !errors.Is(err, ErrNotCovered) {
		t.Errorf("a window past the series: %v, want ErrNotCovered", err)
	}
	// A constant is E x I: 1 kWh at 400 g/kWh is 400 g.
	if got, _ := Operational(func(t int64) float64 { return float64(t) / 1e9 * 3.6e6 / 10 }, 0, 0, 10*s, Constant(400), 1); !near(got, 400) {
		t.Errorf("1 kWh at 400 g/kWh = %v g, want 400", got)
	}
}

func TestEmbodied(t *testing.T) {
	// 1000 kg over 4 years, half the machine, for one day.
	m := Embodied{TotalKg: 1000, LifetimeYears: 4, Share: 0.5}
	want := 1e6 * 86400 / (4 * 365.25 * 86400) * 0.5
	if got := m.Grams(86400); !near(got, want) {
		t.Errorf("M = %v g, want %v", got, want)
	}
	if got := (Embodied{TotalKg: 1}).Grams(1); !math.IsNaN(got) {
		t.Errorf("no lifetime: M = %v, want NaN", got)
	}
}

func TestParseCSV(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		points  []Point
		endNs   int64
		wantErr []string // each a line:col: prefix and words of its message
	}{
		{
			name:   "RFC 3339 with a header",
			in:     "datetime,carbon_intensity\n2026-12-04T10:00:00Z,350\n2026-12-04T11:00:00Z,410.5\n",
			points: []Point{{time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC).UnixNano(), 350}, {time.Date(2026, 12, 4, 11, 0, 0, 0, time.UTC).UnixNano(), 410.5}},
			endNs:  time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC).UnixNano(),
		},
		{
			name:   "UTC without zone, Unix seconds, comments",
			in:     "# grid\n2026-12-04 10:00:00, 300\n1796382000, 200\n",
			points: []Point{{time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC).UnixNano(), 300}, {1796382000 * s, 200}},
			endNs:  1796385600 * s,
		},
		{
			name:    "bad value and timestamp, each at its column",
			in:      "t,g\n2026-12-04T10:00:00Z,abc\nyesterday,300\n2026-12-04T11:00:00Z,-3\n",
			wantErr: []string{"2:22: \"abc\" is not a number", "3:1: \"yesterday\" is not a timestamp", "4:22: intensity must be"},
		},
		{
			name:    "out of order",
			in:      "2026-12-04T11:00:00Z,1\n2026-12-04T10:00:00Z,2\n",
			wantErr: []string{"2:1: timestamp 2026-12-04T10:00:00Z is not after the previous row's (line 1)"},
		},
		{
			name:    "three fields",
			in:      "2026-12-04T10:00:00Z,1,x\n2026-12-04T11:00:00Z,2\n",
			wantErr: []string{"1:24: want 2 fields"},
		},
		{
			name:    "implausible value",
			in:      "2026-12-04T10:00:00Z,400000\n2026-12-04T11:00:00Z,2\n",
			wantErr: []string{"1:22: 400000 gCO2e/kWh is more than any grid"},
		},
		{
			name:    "milliseconds",
			in:      "1796378400000,1\n1796378460000,1\n",
			wantErr: []string{"1:1: \"1796378400000\" is too large for Unix seconds", "2:1: \"1796378460000\" is too large"},
		},
		{
			name:    "one row",
			in:      "2026-12-04T10:00:00Z,1\n",
			wantErr: []string{"needs at least two rows"},
		},
		{
			name:    "too large",
			in:      strings.Repeat("#", MaxFileBytes+1),
			wantErr: []string{"larger than 1048576 bytes"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseCSV(strings.NewReader(tc.in))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(f.Points) != len(tc.points) || f.EndNs != tc.endNs || f.Rows != len(tc.points) {
					t.Fatalf("got %+v, want points %v ending %d", f, tc.points, tc.endNs)
				}
				for i := range f.Points {
					if f.Points[i] != tc.points[i] {
						t.Errorf("point %d = %+v, want %+v", i, f.Points[i], tc.points[i])
					}
				}
				return
			}
			var pe *ParseErrors
			if !errors.As(err, &pe) || len(pe.List) != len(tc.wantErr) {
				t.Fatalf("error %v, want %d problems %q", err, len(tc.wantErr), tc.wantErr)
			}
			for i, w := range tc.wantErr {
				if !strings.HasPrefix(pe.List[i].Error(), w) {
					t.Errorf("problem %d = %q, want it to start %q", i, pe.List[i].Error(), w)
				}
			}
		})
	}
}

// TestParseCSVCountsTheRest: a file of many bad rows lists ten and counts
// the others.
func TestParseCSVCountsTheRest(t *testing.T) {
	_, err := ParseCSV(strings.NewReader(strings.Repeat("2026-12-04T10:00:00Z,x\n", 15)))
	var pe *ParseErrors
	if !errors.As(err, &pe) || len(pe.List) != 10 || pe.More != 5 || !strings.Contains(err.Error(), "and 5 more") {
		t.Errorf("error %v", err)
	}
}

func TestTrimmed(t *testing.T) {
	rec := func() *runstore.Carbon {
		return &runstore.Carbon{IntensityFile: &runstore.IntensityFile{
			Points: []runstore.IntensityPoint{{TNs: 0, GPerKWh: 1}, {TNs: 10, GPerKWh: 2}, {TNs: 20, GPerKWh: 3}, {TNs: 30, GPerKWh: 4}}, EndNs: 40,
		}}
	}
	tests := []struct {
		name  string
		a, b  int64
		times []int64
		end   int64
	}{
		{"inside", 15, 25, []int64{10, 20}, 30},
		{"one period", 12, 18, []int64{10}, 20},
		{"all", 0, 40, []int64{0, 10, 20, 30}, 40},
		{"from before the first", -5, 5, []int64{0}, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := rec()
			r := Trimmed(orig, tc.a, tc.b)
			if len(orig.IntensityFile.Points) != 4 || orig.IntensityFile.EndNs != 40 {
				t.Errorf("the record trimmed from was changed: %+v", orig.IntensityFile)
			}
			var got []int64
			for _, p := range r.IntensityFile.Points {
				got = append(got, p.TNs)
			}
			if len(got) != len(tc.times) || r.IntensityFile.EndNs != tc.end {
				t.Fatalf("kept %v until %d, want %v until %d", got, r.IntensityFile.EndNs, tc.times, tc.end)
			}
			for i := range got {
				if got[i] != tc.times[i] {
					t.Fatalf("kept %v, want %v", got, tc.times)
				}
			}
			// What was kept gives the same intensity over [a, b).
			full, _ := FromRecord(rec())
			cut, err := FromRecord(r)
			if err != nil {
				t.Fatal(err)
			}
			a, b := max(tc.a, 0), tc.b
			p1, e1 := full.Intensity.Pieces(a, b)
			p2, e2 := cut.Intensity.Pieces(a, b)
			if e1 != nil || e2 != nil || len(p1) != len(p2) {
				t.Fatalf("pieces %v (%v) vs %v (%v)", p1, e1, p2, e2)
			}
		})
	}
}

func TestFromRecord(t *testing.T) {
	c, err := FromRecord(&runstore.Carbon{
		IntensityGPerKWh: &runstore.Sourced{Value: 400, Source: "--set carbon.intensity=400"},
		Embodied: &runstore.Embodied{TotalKg: runstore.Sourced{Value: 1000}, LifetimeYears: runstore.Sourced{Value: 4},
			Share: runstore.Sourced{Value: 1}},
	})
	if err != nil || !c.Intensity.IsConstant() || c.PUE != 1 || c.Embodied == nil || c.Embodied.TotalKg != 1000 {
		t.Fatalf("config %+v, %v", c, err)
	}
	if d := c.Describe(); !strings.Contains(d, "400 gCO2e/kWh") || !strings.Contains(d, "--set carbon.intensity=400") {
		t.Errorf("Describe = %q", d)
	}
	if c, err := FromRecord(nil); c != nil || err != nil {
		t.Errorf("no record: %v, %v", c, err)
	}
	if _, err := FromRecord(&runstore.Carbon{}); err == nil {
		t.Error("a record without an intensity accepted")
	}
}
