package energy

import (
	"math"
	"testing"

	"github.com/academemes/harness/harness/internal/runstore"
)

// The ratio model splits each interval's dynamic energy by that
// interval's CPU time, so a group busy while the power is high takes more
// than its share of the whole phase's CPU time.
func TestCPUSplit(t *testing.T) {
	const s = int64(1e9)
	tenW := func(t int64) float64 { return 10 * float64(t) / 1e9 } // 10 W throughout
	rows := func(r ...runstore.CPU) []runstore.CPU { return r }
	cases := []struct {
		name     string
		cpu      []runstore.CPU
		energyAt func(int64) float64
		idleW    float64
		win      [][2]int64
		wantJ    map[string]float64
		wantCPU  map[string]float64
		unattrJ  float64
	}{
		{
			name: "two intervals, shares differ",
			cpu: rows(
				cpuRow(0, "target", 0), cpuRow(0, "harness", 0),
				cpuRow(s, "target", 0.3), cpuRow(s, "harness", 0.1),
				cpuRow(2*s, "target", 0.3), cpuRow(2*s, "harness", 0.3)),
			energyAt: tenW, idleW: 4, win: [][2]int64{{0, 2 * s}},
			// 6 J dynamic a second: 3:1 in the first, all the harness's in the second.
			wantJ:   map[string]float64{"target": 4.5, "harness": 7.5},
			wantCPU: map[string]float64{"target": 0.3, "harness": 0.3},
		},
		{
			name: "window inside the samples: interpolated",
			cpu: rows(
				cpuRow(0, "target", 0), cpuRow(0, "harness", 0),
				cpuRow(s, "target", 0.3), cpuRow(s, "harness", 0.1),
				cpuRow(2*s, "target", 0.3), cpuRow(2*s, "harness", 0.3)),
			energyAt: tenW, idleW: 4, win: [][2]int64{{s / 2, 3 * s / 2}},
			wantJ:   map[string]float64{"target": 2.25, "harness": 0.75 + 3},
			wantCPU: map[string]float64{"target": 0.15, "harness": 0.15},
		},
		{
			name: "no CPU recorded after the last sample: unattributed",
			cpu: rows(
				cpuRow(0, "other", 0),
				cpuRow(s, "other", 0.5)),
			energyAt: tenW, idleW: 4, win: [][2]int64{{0, 2 * s}},
			wantJ:   map[string]float64{"other": 6},
			wantCPU: map[string]float64{"other": 0.5},
			unattrJ: 6,
		},
		{
			name: "a group first seen later counts from zero; two windows add up",
			cpu: rows(
				cpuRow(0, "harness", 1),
				cpuRow(s, "harness", 1.2), cpuRow(s, "dockerd", 0.2),
				cpuRow(2*s, "harness", 1.4), cpuRow(2*s, "dockerd", 0.2)),
			energyAt: tenW, idleW: 0, win: [][2]int64{{0, s}, {s, 2 * s}},
			wantJ:   map[string]float64{"harness": 5 + 10, "dockerd": 5},
			wantCPU: map[string]float64{"harness": 0.4, "dockerd": 0.2},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := buildCPU(tc.cpu)
			sp := &cpuSplit{cpuS: map[string]float64{}, joules: map[string]float64{}}
			for _, w := range tc.win {
				sp.add(cs, tc.energyAt, tc.idleW, w[0], w[1])
			}
			if math.Abs(sp.unattributed-tc.unattrJ) > 1e-9 {
				t.Errorf("unattributed %v J, want %v", sp.unattributed, tc.unattrJ)
			}
			sh := sp.shares("rapl")
			if len(sh.Groups) != len(tc.wantJ) {
				t.Fatalf("groups %+v, want %v", sh.Groups, tc.wantJ)
			}
			var total float64
			for _, j := range tc.wantJ {
				total += j
			}
			for _, g := range sh.Groups {
				if math.Abs(float64(g.DynamicJ)-tc.wantJ[g.Group]) > 1e-9 {
					t.Errorf("%s: %v J, want %v", g.Group, g.DynamicJ, tc.wantJ[g.Group])
				}
				if math.Abs(float64(g.Share)-tc.wantJ[g.Group]/total) > 1e-9 {
					t.Errorf("%s: share %v, want %v", g.Group, g.Share, tc.wantJ[g.Group]/total)
				}
				if math.Abs(float64(g.CPUS)-tc.wantCPU[g.Group]) > 1e-9 {
					t.Errorf("%s: %v CPU-s, want %v", g.Group, g.CPUS, tc.wantCPU[g.Group])
				}
			}
		})
	}
}

func cpuRow(t int64, g string, s float64) runstore.CPU {
	return runstore.CPU{TNs: t, Group: g, CPUS: s}
}

// Too few samples to form an interval give no series, and so no split.
func TestBuildCPUTooFew(t *testing.T) {
	if cs := buildCPU([]runstore.CPU{cpuRow(5, "other", 1)}); cs != nil {
		t.Errorf("one sample time: %+v, want none", cs)
	}
}
