package dockernode

import (
	"slices"
	"sync"
	"time"
)

// stats collects what the target saw, for Report.
type stats struct {
	mu         sync.Mutex
	startups   []time.Duration // create to ready, per container
	removes    []time.Duration
	cpuNs      []uint64 // CPU time per removed container
	cold       int      // cold requests answered
	resets     int
	failures   int
	errs       []string // the first few failures
	errsLeftOf int
}

const maxErrs = 10

func (s *stats) addStart(d time.Duration) {
	s.mu.Lock()
	s.startups = append(s.startups, d)
	s.mu.Unlock()
}
func (s *stats) addRemove(d time.Duration) {
	s.mu.Lock()
	s.removes = append(s.removes, d)
	s.mu.Unlock()
}
func (s *stats) addCPU(ns uint64) { s.mu.Lock(); s.cpuNs = append(s.cpuNs, ns); s.mu.Unlock() }
func (s *stats) addCold()         { s.mu.Lock(); s.cold++; s.mu.Unlock() }
func (s *stats) addReset()        { s.mu.Lock(); s.resets++; s.mu.Unlock() }

func (s *stats) addFailure(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	if len(s.errs) < maxErrs {
		s.errs = append(s.errs, msg)
	} else {
		s.errsLeftOf++
	}
}

// quantile is the nearest-rank quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (s *stats) report(r map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := slices.Sorted(slices.Values(s.startups))
	r["containers_started"] = len(st)
	r["cold_requests"] = s.cold
	r["resets"] = s.resets
	if len(st) > 0 {
		r["start_up_ns_p50"] = quantile(st, 0.5).Nanoseconds()
		r["start_up_ns_p99"] = quantile(st, 0.99).Nanoseconds()
		r["start_up_ns_max"] = st[len(st)-1].Nanoseconds()
	}
	if rm := slices.Sorted(slices.Values(s.removes)); len(rm) > 0 {
		r["remove_ns_p50"] = quantile(rm, 0.5).Nanoseconds()
	}
	var cpu uint64
	for _, c := range s.cpuNs {
		cpu += c
	}
	r["cpu_time_ns"] = cpu
	r["cpu_time_containers"] = len(s.cpuNs)
	r["cpu_time_source"] = "Docker stats API cpu_stats.cpu_usage.total_usage, read just before each container is removed"
	if len(s.cpuNs) > 0 {
		r["cpu_time_ns_mean"] = cpu / uint64(len(s.cpuNs))
	}
	r["failures"] = s.failures
	if len(s.errs) > 0 {
		r["errors"] = slices.Clone(s.errs)
		if s.errsLeftOf > 0 {
			r["errors_left_out"] = s.errsLeftOf
		}
	}
}
