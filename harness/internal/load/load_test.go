package load

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestStagedPacer(t *testing.T) {
	p, err := NewStagedPacer([]Stage{{Rate: 10, Duration: time.Second}, {Rate: 100, Duration: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		elapsed time.Duration
		hits    uint64
		wait    time.Duration
		stop    bool
	}{
		{"first hit at once", 0, 0, 0, false},
		{"second hit after 100ms", 0, 1, 100 * time.Millisecond, false},
		{"behind schedule", 500 * time.Millisecond, 2, 0, false},
		{"into the second stage", time.Second, 10, 0, false},
		{"second stage rate", time.Second, 11, 10 * time.Millisecond, false},
		{"all sent", 2 * time.Second, 110, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait, stop := p.Pace(tc.elapsed, tc.hits)
			if stop != tc.stop || (!stop && (wait-tc.wait).Abs() > time.Microsecond) {
				t.Errorf("Pace(%v, %d) = %v, %v; want %v, %v", tc.elapsed, tc.hits, wait, stop, tc.wait, tc.stop)
			}
		})
	}
	if r := p.Rate(1500 * time.Millisecond); r != 100 {
		t.Errorf("Rate = %v, want 100", r)
	}
	for _, bad := range [][]Stage{nil, {{Rate: -1, Duration: time.Second}}, {{Rate: 1, Duration: 0}}} {
		if _, err := NewStagedPacer(bad); err == nil {
			t.Errorf("NewStagedPacer(%v) accepted", bad)
		}
	}
}

// TestStagedPacerTinyRates: a stage whose next hit falls after its end
// stops there, however small the rate. Past ~1e-10/s the interval
// overflowed time.Duration and went negative: rate 1e-300 sent 3,529
// requests in 2 s.
func TestStagedPacerTinyRates(t *testing.T) {
	for _, rate := range []float64{1e-300, 1e-10, 1e-3} {
		p, err := NewStagedPacer([]Stage{{Rate: rate, Duration: 2 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		if wait, stop := p.Pace(0, 0); wait != 0 || stop {
			t.Errorf("rate %g: first hit: Pace = %v, %v; want it at once", rate, wait, stop)
		}
		for _, elapsed := range []time.Duration{time.Millisecond, time.Second} {
			if wait, stop := p.Pace(elapsed, 1); !stop {
				t.Errorf("rate %g: second hit at %v: Pace = %v, %v; want the stages over", rate, elapsed, wait, stop)
			}
		}
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), 0} {
		if _, err := NewStagedPacer([]Stage{{Rate: bad, Duration: time.Second}}); err == nil {
			t.Errorf("NewStagedPacer accepted rate %v", bad)
		}
	}
}

func server(t *testing.T, inFlight *atomic.Int64, maxInFlight *atomic.Int64) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		body, _ := io.ReadAll(r.Body)
		if string(body) != `{"id":1}` {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Cold-Start", "1")
		w.Header().Set("X-Start-Ns", "12345")
		time.Sleep(2 * time.Millisecond)
		io.WriteString(w, "hello")
	}))
	t.Cleanup(s.Close)
	return s
}

func TestOpenRecordsEveryHit(t *testing.T) {
	var inFlight, maxInFlight atomic.Int64
	s := server(t, &inFlight, &maxInFlight)
	var mu sync.Mutex
	var hits []Hit
	began := time.Now()
	err := Open(context.Background(), Request{Method: "POST", URL: s.URL, Body: []byte(`{"id":1}`)},
		[]Stage{{Rate: 100, Duration: 300 * time.Millisecond}},
		Options{OnHit: func(h Hit) { mu.Lock(); hits = append(hits, h); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	// The last request goes out one interval before the stage ends; the
	// load still lasts the whole stage (a lower bound, not a speed check).
	if took := time.Since(began); took < 300*time.Millisecond {
		t.Errorf("Open returned after %v, before the stage's 300ms were over", took)
	}
	if len(hits) < 25 || len(hits) > 30 {
		t.Fatalf("got %d hits, want about 30", len(hits))
	}
	for _, h := range hits {
		if h.Status != 200 || h.Err != "" || !h.Cold || h.StartUp != 12345 || h.BytesIn != 5 || h.BytesOut != 8 {
			t.Fatalf("hit = %+v", h)
		}
		if h.Latency < 2*time.Millisecond || h.Start.IsZero() {
			t.Fatalf("hit timing = %+v", h)
		}
	}
}

func TestOpenStopsOnCancel(t *testing.T) {
	var inFlight, maxInFlight atomic.Int64
	s := server(t, &inFlight, &maxInFlight)
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	done := make(chan error)
	go func() {
		done <- Open(ctx, Request{Method: "POST", URL: s.URL, Body: []byte(`{"id":1}`)},
			[]Stage{{Rate: 50, Duration: time.Hour}}, Options{OnHit: func(Hit) {
				if n.Add(1) == 5 {
					cancel()
				}
			}})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Open did not return after cancel")
	}
	if n.Load() < 5 {
		t.Errorf("got %d hits", n.Load())
	}
}

func TestClosedIsSequential(t *testing.T) {
	var inFlight, maxInFlight atomic.Int64
	s := server(t, &inFlight, &maxInFlight)
	var hits []Hit
	err := Closed(context.Background(), Request{Method: "POST", URL: s.URL, Body: []byte(`{"id":1}`)},
		Sequential{Requests: 6, Pause: time.Millisecond}, Options{OnHit: func(h Hit) { hits = append(hits, h) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 6 {
		t.Fatalf("got %d hits, want 6", len(hits))
	}
	if maxInFlight.Load() != 1 {
		t.Errorf("%d requests were in flight at once, want 1", maxInFlight.Load())
	}
	for i, h := range hits {
		if h.Seq != int64(i) || h.Status != 200 || !h.Cold {
			t.Errorf("hit %d = %+v", i, h)
		}
		if i > 0 && h.Start.Before(hits[i-1].Start.Add(hits[i-1].Latency)) {
			t.Errorf("hit %d started before hit %d ended", i, i-1)
		}
	}
}

func TestClosedRecordsFailures(t *testing.T) {
	var hits []Hit
	err := Closed(context.Background(), Request{Method: "GET", URL: "http://127.0.0.1:1/"},
		Sequential{Requests: 2}, Options{Timeout: time.Second, OnHit: func(h Hit) { hits = append(hits, h) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 2 || hits[0].Err == "" || hits[0].Status != 0 {
		t.Fatalf("hits = %+v", hits)
	}
}
