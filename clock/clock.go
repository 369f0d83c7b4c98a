// Package clock is the harness's one process-wide clock.
//
// Every request and every meter sample is stamped with Now, so that they can
// be aligned later. Now is the wall time read once when the process started
// plus Go's monotonic offset since then: a wall-clock step (NTP, a suspended
// VM) during a run moves neither requests nor samples relative to each other.
package clock

import "time"

// Func returns the current time. Code that stamps data takes a Func so that
// tests can inject a clock; production code passes Now.
type Func func() time.Time

// start carries both the wall reading and the monotonic reading of the
// moment the process began.
var start = time.Now()

// Now returns the start wall time plus the monotonic time elapsed since. The
// result still carries a monotonic reading, so Sub between two results is
// exact.
func Now() time.Time {
	return start.Add(time.Since(start))
}

// Start is the moment the clock began, as wall time.
func Start() time.Time { return start }
