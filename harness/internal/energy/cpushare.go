package energy

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/academemes/harness/harness/internal/runstore"
)

// CPUShares is a phase's dynamic energy on one meter split among groups of
// processes by their CPU time: the ratio model Kepler and Scaphandre use.
// It is a model on top of the meter, never a measurement: CPU time is not
// energy (a stalled core, memory, the GPU and the disks draw power that no
// CPU tick counts), and each interval's whole dynamic energy goes to the
// groups that ran in it.
type CPUShares struct {
	// Model says what this is, naming the meter underneath.
	Model  string       `json:"model"`
	Groups []GroupShare `json:"groups"`
	// UnattributedJ is dynamic energy of intervals in which cpu.csv
	// records no CPU time at all (none covers them, or nothing ran).
	UnattributedJ Float `json:"unattributed_j"`
}

// GroupShare is one group's part of a phase's dynamic energy.
type GroupShare struct {
	Group string `json:"group"` // as cpu.csv names it
	Role  string `json:"role"`  // what it is in the terms
	// CPUS is the group's CPU time over the phase's steady windows,
	// CPUShare its part of all groups' CPU time there.
	CPUS     Float `json:"cpu_s"`
	CPUShare Float `json:"cpu_share"`
	// DynamicJ is the dynamic energy the model gives the group, Share its
	// part of the attributed dynamic energy (interval by interval, so it
	// can differ from CPUShare when the load varies).
	DynamicJ Float `json:"dynamic_j"`
	Share    Float `json:"share"`
}

// GroupRoles names cpu.csv's groups for readers. The harness's group is
// one process: its load generator, its meters and an in-process Purify
// cannot be told apart by CPU time (goroutines move between threads).
var GroupRoles = map[string]string{
	"target":     "function/platform (the run's containers)",
	"dockerd":    "container runtime (dockerd)",
	"containerd": "container runtime (containerd, shims, runc)",
	"harness":    "harness process (load generator, meters, in-process Purify)",
	"kernel":     "rest of the machine (kernel threads)",
	"other":      "rest of the machine (other processes)",
}

// groupOrder is the order groups are shown in; unknown groups follow.
var groupOrder = []string{"target", "dockerd", "containerd", "harness", "kernel", "other"}

// cpuSeries is cpu.csv as cumulative CPU time per group on one time axis.
type cpuSeries struct {
	t      []int64              // sample times, increasing
	groups map[string][]float64 // cumulative CPU-s at each of t
}

// buildCPU reads cpu.csv's rows into a series; nil when there are fewer
// than two sample times. A group missing from a sample keeps its last value
// (0 before it first appears).
func buildCPU(rows []runstore.CPU) *cpuSeries {
	byT := map[int64]map[string]float64{}
	for _, r := range rows {
		if byT[r.TNs] == nil {
			byT[r.TNs] = map[string]float64{}
		}
		byT[r.TNs][r.Group] = r.CPUS
	}
	if len(byT) < 2 {
		return nil
	}
	cs := &cpuSeries{groups: map[string][]float64{}}
	for t := range byT {
		cs.t = append(cs.t, t)
	}
	slices.Sort(cs.t)
	for _, r := range rows {
		if cs.groups[r.Group] == nil {
			cs.groups[r.Group] = make([]float64, len(cs.t))
		}
	}
	for g, v := range cs.groups {
		last := 0.0
		for i, t := range cs.t {
			if x, ok := byT[t][g]; ok {
				last = max(last, x) // cumulative: never back
			}
			v[i] = last
		}
	}
	return cs
}

// at is group g's cumulative CPU time at t, linear between samples and
// flat outside them.
func (cs *cpuSeries) at(g string, t int64) float64 {
	v, n := cs.groups[g], len(cs.t)
	switch {
	case t <= cs.t[0]:
		return v[0]
	case t >= cs.t[n-1]:
		return v[n-1]
	}
	i := sort.Search(n, func(i int) bool { return cs.t[i] > t })
	return interp(cs.t[i-1], v[i-1], cs.t[i], v[i], t)
}

// cpuSplit is the split of some windows' dynamic energy by CPU share.
type cpuSplit struct {
	cpuS         map[string]float64
	joules       map[string]float64
	unattributed float64
}

// add splits the dynamic energy of window [s,e) (energy at a cumulative
// counter's points, less idleW) among the groups: interval by interval
// between cpu.csv's samples, each group takes the part of the interval's
// dynamic energy that its CPU time is of all groups' CPU time there.
func (sp *cpuSplit) add(cs *cpuSeries, energyAt func(int64) float64, idleW float64, s, e int64) {
	grid := []int64{s}
	for _, t := range cs.t {
		if t > s && t < e {
			grid = append(grid, t)
		}
	}
	grid = append(grid, e)
	for i := 1; i < len(grid); i++ {
		a, b := grid[i-1], grid[i]
		dyn := energyAt(b) - energyAt(a) - idleW*float64(b-a)/1e9
		var total float64
		d := make(map[string]float64, len(cs.groups))
		for g := range cs.groups {
			d[g] = max(cs.at(g, b)-cs.at(g, a), 0)
			total += d[g]
		}
		if total <= 0 {
			sp.unattributed += dyn
			continue
		}
		for g, x := range d {
			sp.cpuS[g] += x
			if x > 0 { // a group that did not run takes nothing, not a -0
				sp.joules[g] += dyn * x / total
			} else if _, ok := sp.joules[g]; !ok {
				sp.joules[g] = 0
			}
		}
	}
}

// shares is the split as summary.json records it, the model labelled
// with meter.
func (sp *cpuSplit) shares(meter string) *CPUShares {
	out := &CPUShares{
		Model:         fmt.Sprintf("attribution by CPU-time share: a model on top of %s", meter),
		UnattributedJ: Float(sp.unattributed),
	}
	var cpuTotal, jTotal float64
	for g := range sp.cpuS {
		cpuTotal += sp.cpuS[g]
		jTotal += sp.joules[g]
	}
	names := make([]string, 0, len(sp.cpuS))
	for g := range sp.cpuS {
		names = append(names, g)
	}
	rank := func(g string) int {
		if i := slices.Index(groupOrder, g); i >= 0 {
			return i
		}
		return len(groupOrder)
	}
	slices.SortFunc(names, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		if a < b {
			return -1
		}
		return 1
	})
	for _, g := range names {
		gs := GroupShare{Group: g, Role: GroupRoles[g], CPUS: Float(sp.cpuS[g]), CPUShare: nan, DynamicJ: Float(sp.joules[g]), Share: nan}
		if gs.Role == "" {
			gs.Role = g
		}
		if cpuTotal > 0 {
			gs.CPUShare = Float(sp.cpuS[g] / cpuTotal)
		}
		if jTotal != 0 && !math.IsNaN(jTotal) {
			gs.Share = Float(sp.joules[g] / jTotal)
		}
		out.Groups = append(out.Groups, gs)
	}
	return out
}
