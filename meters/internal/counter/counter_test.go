package counter

import (
	"math"
	"testing"
)

func TestUnitFromName(t *testing.T) {
	tests := []struct {
		name   string
		joules float64
		ok     bool
	}{
		{"node_rapl_package_joules_total", 1, true},
		{"kepler_container_joules_total", 1, true},
		{"scaph_host_energy_microjoules", 1e-6, true},
		{"kepler_container_package_millijoules_total", 1e-3, true},
		{"gpu_energy_nanojoules_total", 1e-9, true},
		{"pdu_energy_kilowatt_hours_total", 3.6e6, true},
		{"pdu_energy_watt_hours", 3600, true},
		{"scaph_host_power_microwatts", 0, false},
		{"node_cpu_seconds_total", 0, false},
		{"joules", 0, false}, // a suffix needs a name before it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, ok := UnitFromName(tt.name)
			if j != tt.joules || ok != tt.ok {
				t.Errorf("UnitFromName(%q) = %g, %v; want %g, %v", tt.name, j, ok, tt.joules, tt.ok)
			}
		})
	}
}

func TestParseUnit(t *testing.T) {
	for in, want := range map[string]float64{"J": 1, "mJ": 1e-3, "uJ": 1e-6, "µJ": 1e-6, "microjoules": 1e-6, "nJ": 1e-9, "Wh": 3600, "kWh": 3.6e6} {
		if got, err := ParseUnit(in); err != nil || got != want {
			t.Errorf("ParseUnit(%q) = %g, %v; want %g", in, got, err, want)
		}
	}
	for _, in := range []string{"", "W", "joule", "MJ"} {
		if _, err := ParseUnit(in); err == nil {
			t.Errorf("ParseUnit(%q) accepted", in)
		}
	}
}

func TestSeries(t *testing.T) {
	tests := []struct {
		name   string
		wrap   float64
		in     []float64
		incs   []float64
		events []Event
	}{
		{"rises", 0, []float64{10, 12, 12, 15.5}, []float64{0, 2, 0, 3.5}, []Event{First, Rose, Rose, Rose}},
		{"reset counts from zero", 0, []float64{100, 110, 3, 5}, []float64{0, 10, 3, 2}, []Event{First, Rose, Reset, Rose}},
		{"wrap adds the way round", 50, []float64{40, 48, 2}, []float64{0, 8, 4}, []Event{First, Rose, Wrapped}},
		{"above the modulus is a reset", 50, []float64{40, 60, 1}, []float64{0, 20, 1}, []Event{First, Rose, Reset}},
		{"invalid keeps the baseline", 0, []float64{5, math.NaN(), -1, math.Inf(1), 7}, []float64{0, 0, 0, 0, 2}, []Event{First, Invalid, Invalid, Invalid, Rose}},
		{"invalid first reading", 0, []float64{math.NaN(), 5, 6}, []float64{0, 0, 1}, []Event{Invalid, First, Rose}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Series{Wrap: tt.wrap}
			for i, v := range tt.in {
				inc, ev := s.Add(v)
				if math.Abs(inc-tt.incs[i]) > 1e-12 || ev != tt.events[i] {
					t.Errorf("reading %d (%g): got %g, event %d; want %g, event %d", i, v, inc, ev, tt.incs[i], tt.events[i])
				}
			}
		})
	}
}

func TestSumFollowsEachSeries(t *testing.T) {
	// Two containers' counters in microjoules; b restarts (its exporter
	// or container did) and a third series appears late.
	s := Sum{Scale: 1e-6}
	steps := []struct {
		key  string
		v    float64
		want float64 // total joules after the reading
	}{
		{"a", 1e6, 0},
		{"b", 5e6, 0},
		{"a", 3e6, 2},
		{"b", 6e6, 3},
		{"b", 0.5e6, 3.5}, // reset: counted from 0, not -5.5 J
		{"c", 9e6, 3.5},   // first reading: a baseline only
		{"c", 10e6, 4.5},
	}
	for i, st := range steps {
		if got := s.Add(st.key, st.v); math.Abs(got-st.want) > 1e-9 {
			t.Fatalf("step %d (%s=%g): total %g J, want %g J", i, st.key, st.v, got, st.want)
		}
	}
	if s.Resets != 1 || s.Series != 3 || s.Wraps != 0 {
		t.Errorf("resets %d, series %d, wraps %d; want 1, 3, 0", s.Resets, s.Series, s.Wraps)
	}
}

func TestIsAttribution(t *testing.T) {
	for name, want := range map[string]bool{
		"kepler_container_joules_total":    true,
		"kepler_pod_cpu_joules_total":      true,
		"kepler_process_cpu_joules_total":  true,
		"scaph_process_energy_microjoules": true,
		"kepler_node_package_joules_total": false,
		"kepler_node_cpu_joules_total":     false,
		"scaph_host_energy_microjoules":    false,
		"node_rapl_package_joules_total":   false,
		"x_kepler_container_joules_total":  false,
	} {
		if got := IsAttribution(name); got != want {
			t.Errorf("IsAttribution(%q) = %v; want %v", name, got, want)
		}
	}
}
