package runner

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestProgressWritesFromOneGoroutineAtATime: the bar's ticker and a new
// phase write to the same writer; run with -race, writes that are not
// serialised fail the test (a bytes.Buffer is not safe for concurrent use).
func TestProgressWritesFromOneGoroutineAtATime(t *testing.T) {
	var out bytes.Buffer
	var reqs, errs atomic.Int64
	p := newProgress(&out, true, time.Second, &reqs, &errs)
	for deadline := time.Now().Add(600 * time.Millisecond); time.Now().Before(deadline); {
		reqs.Add(1)
		p.phase("rep 1/1 wasm load")
		time.Sleep(time.Millisecond)
	}
	p.stop()
	got := out.String()
	if !strings.Contains(got, "rep 1/1 wasm load") || !strings.HasSuffix(got, "done\n") || !strings.Contains(got, "requests, 0 errors") {
		t.Errorf("progress output lacks the phase, the counts or the final line:\n%.300q", got)
	}
}
