// Package counter turns the energy counters that Prometheus exporters
// expose (node_exporter's node_rapl_*_joules_total, Scaphandre's
// scaph_host_energy_microjoules, Kepler's kepler_*_joules_total) into
// energy since a first reading: the unit from the metric's name, counter
// resets and wraparounds undone, several series summed without adding a
// reset of one to the others.
//
// It is shared by the openmetrics driver (which scrapes an exporter) and
// the prometheus driver (which reads the same series back from a server).
package counter

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// units names each energy unit an exporter may use, with its size in
// joules. Prometheus's naming rules ask for base units (joules), but
// exporters older than the rules, or that pass on a kernel counter as it
// is, use smaller ones.
var units = []struct {
	suffix string // as in a metric name, before an optional _total
	joules float64
	names  []string // spellings accepted by unit=
}{
	{"_joules", 1, []string{"J", "joules"}},
	{"_millijoules", 1e-3, []string{"mJ", "millijoules"}},
	{"_microjoules", 1e-6, []string{"uJ", "µJ", "microjoules"}},
	{"_nanojoules", 1e-9, []string{"nJ", "nanojoules"}},
	{"_watt_hours", 3600, []string{"Wh", "watt_hours"}},
	{"_kilowatt_hours", 3.6e6, []string{"kWh", "kilowatt_hours"}},
}

// UnitFromName returns the size in joules of one unit of the metric
// called name, read from its suffix: "_joules_total" is 1,
// "_microjoules" 1e-6. ok is false when the name does not say.
func UnitFromName(name string) (joules float64, ok bool) {
	base := strings.TrimSuffix(name, "_total")
	// Longest suffix first: "_kilowatt_hours" before "_watt_hours".
	best := ""
	for _, u := range units {
		if strings.HasSuffix(base, u.suffix) && len(u.suffix) > len(best) {
			best, joules = u.suffix, u.joules
		}
	}
	return joules, best != ""
}

// ParseUnit reads a unit= option: J, mJ, uJ (or µJ), nJ, Wh, kWh, or the
// names Prometheus uses (joules, microjoules, ...).
func ParseUnit(s string) (float64, error) {
	for _, u := range units {
		for _, n := range u.names {
			if s == n {
				return u.joules, nil
			}
		}
	}
	var all []string
	for _, u := range units {
		all = append(all, u.names[0])
	}
	return 0, fmt.Errorf("unit %q is not an energy unit; want one of %s", s, strings.Join(all, ", "))
}

// EnergyNames lists the metric names in names whose suffix says they
// count energy, sorted, for messages that suggest what to read instead.
func EnergyNames(names []string) []string {
	var out []string
	for _, n := range names {
		if _, ok := UnitFromName(n); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// IsAttribution reports whether the metric called name is an attribution
// model rather than a reading of a meter: Kepler's per-container, per-pod,
// per-process and per-VM counters split the node's RAPL energy by CPU
// share (kepler_container_joules_total, kepler_pod_cpu_joules_total), and
// so do Scaphandre's per-process figures. The node's own counters
// (kepler_node_*, scaph_host_*, node_rapl_*) are readings.
func IsAttribution(name string) bool {
	for _, p := range []string{"kepler_container_", "kepler_pod_", "kepler_process_", "kepler_vm_", "scaph_process_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Series follows one counter series. The zero value treats every decrease
// as a reset to zero, as Prometheus's rate() and increase() do: an
// exporter that restarts (Kepler, Scaphandre) begins again at 0, so
// everything the new reading shows was counted since the reset. A counter
// that wraps at a known modulus instead (a RAPL counter passed on as it
// is, node_exporter's node_rapl_*: max_energy_range_uj) is given Wrap, and
// a decrease then adds the way round.
type Series struct {
	// Wrap is the counter's modulus in its own unit; 0: a decrease is a
	// reset.
	Wrap float64

	started bool
	prev    float64
}

// Event says what a reading did to a series.
type Event int

// What Add saw.
const (
	First   Event = iota // the first reading: the baseline, no increase
	Rose                 // the counter rose or stood still
	Reset                // it went down and was taken as a reset to zero
	Wrapped              // it went down and was taken as one wrap at Wrap
	Invalid              // NaN, infinite or negative: ignored, the baseline kept
)

// Add takes the next reading v and returns the increase since the last
// one, in the counter's unit. A reading that went down is a reset (the
// increase is v) or, with Wrap, one wrap (Wrap - prev + v); a reading
// above Wrap, or a decrease where prev exceeds Wrap, cannot be a wrap and is
// taken as a reset.
func (s *Series) Add(v float64) (float64, Event) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, Invalid
	}
	if !s.started {
		s.started, s.prev = true, v
		return 0, First
	}
	prev := s.prev
	s.prev = v
	switch {
	case v >= prev:
		return v - prev, Rose
	case s.Wrap > 0 && prev <= s.Wrap && v <= s.Wrap:
		return s.Wrap - prev + v, Wrapped
	default:
		return v, Reset
	}
}

// Sum adds up the increases of several series, each followed on its own,
// so that one series' reset or disappearance never shows as a fall of the
// total (summing in PromQL, sum(x), would). A series first seen after the
// others starts from its first reading, as increase() does: what it
// counted before that reading is not known to have happened in the run.
type Sum struct {
	// Wrap is given to every series; see Series.
	Wrap float64
	// Scale converts the counters' unit to joules.
	Scale float64

	series map[string]*Series
	joules float64
	// Counts of what Add saw, for the meter's report.
	Resets, Wraps, Invalid, Series int
}

// Add takes a reading of the series called key and returns the total
// energy in joules since the first reading of any series.
func (s *Sum) Add(key string, v float64) float64 {
	if s.series == nil {
		s.series = map[string]*Series{}
	}
	sr, ok := s.series[key]
	if !ok {
		sr = &Series{Wrap: s.Wrap}
		s.series[key] = sr
		s.Series++
	}
	inc, ev := sr.Add(v)
	switch ev {
	case Reset:
		s.Resets++
	case Wrapped:
		s.Wraps++
	case Invalid:
		s.Invalid++
	}
	scale := s.Scale
	if scale == 0 {
		scale = 1
	}
	s.joules += inc * scale
	return s.joules
}

// Joules is the total so far.
func (s *Sum) Joules() float64 { return s.joules }
