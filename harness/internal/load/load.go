// Package load drives HTTP load against one target and reports every
// request. The open model (constant arrival rate per stage) goes through
// vegeta's attacker, which avoids coordinated omission; the sequential mode
// is the original study's closed loop, one request at a time with a pause.
package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/academemes/harness/clock"
	"github.com/academemes/harness/targets"
)

// Request is the request sent on every hit.
type Request struct {
	Method string
	URL    string
	Body   []byte
	Header http.Header
}

// Stage is a constant arrival rate for a duration.
type Stage struct {
	Rate     float64 // requests per second
	Duration time.Duration
}

// Sequential is a closed loop: one request at a time, Pause between the end
// of one and the start of the next, for Requests requests or for Duration.
type Sequential struct {
	Requests int
	Duration time.Duration
	Pause    time.Duration
}

// Hit is one request's outcome, stamped on the harness clock.
type Hit struct {
	Seq      int64
	Start    time.Time
	Latency  time.Duration
	Status   int // 0 when no response came
	BytesIn  int64
	BytesOut int64
	Cold     bool          // the target said X-Cold-Start: 1
	StartUp  time.Duration // the target's X-Start-Ns
	Err      string
}

// Options tune a run of load.
type Options struct {
	Timeout time.Duration // per request; 0 means 30s
	Workers uint64        // initial vegeta workers; 0 means vegeta's default
	// OnHit receives every hit as it completes, from one goroutine.
	OnHit func(Hit)
}

// Open drives the stages in order as one attack (one pacer over all
// stages) until they end or ctx is done. It returns when every request in
// flight has completed.
func Open(ctx context.Context, req Request, stages []Stage, opt Options) error {
	p, err := NewStagedPacer(stages)
	if err != nil {
		return err
	}
	vopts := []func(*vegeta.Attacker){
		vegeta.Timeout(timeout(opt)),
		vegeta.KeepAlive(true),
		vegeta.Redirects(vegeta.NoFollow),
	}
	if opt.Workers > 0 {
		vopts = append(vopts, vegeta.Workers(opt.Workers))
	}
	// An Attacker cannot be reused after an attack: one per call.
	atk := vegeta.NewAttacker(vopts...)
	tgt := vegeta.Target{Method: req.Method, URL: req.URL, Body: req.Body, Header: req.Header}
	began := time.Now()
	results := atk.Attack(vegeta.NewStaticTargeter(tgt), p, p.Duration(), "")
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	// vegeta is done once the last request, sent one interval before the
	// stages end, has completed; the load lasts the stages' full duration
	// so that throughput and the energy window are over the time asked for.
	defer func() {
		if rest := time.Until(began.Add(p.Duration())); rest > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(rest):
			}
		}
	}()
	for res := range results {
		h := Hit{
			Seq:      int64(res.Seq),
			Start:    onClock(res.Timestamp),
			Latency:  res.Latency,
			Status:   int(res.Code),
			BytesIn:  int64(res.BytesIn),
			BytesOut: int64(res.BytesOut),
			Err:      res.Error,
		}
		h.Cold, h.StartUp = targetFacts(res.Headers)
		res.Body = nil // only its size is kept
		if opt.OnHit != nil {
			opt.OnHit(h)
		}
	}
	return nil
}

// Closed runs the sequential loop until it is done or ctx is done.
func Closed(ctx context.Context, req Request, seq Sequential, opt Options) error {
	if seq.Requests <= 0 && seq.Duration <= 0 {
		return fmt.Errorf("load: sequential needs a request count or a duration")
	}
	client := &http.Client{
		Timeout:       timeout(opt),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true},
	}
	defer client.CloseIdleConnections()
	began := clock.Now()
	for i := int64(0); ; i++ {
		if seq.Requests > 0 && i >= int64(seq.Requests) {
			return nil
		}
		if seq.Duration > 0 && clock.Now().Sub(began) >= seq.Duration {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		h := hit(ctx, client, req, i)
		if opt.OnHit != nil {
			opt.OnHit(h)
		}
		if seq.Pause > 0 {
			t := time.NewTimer(seq.Pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
}

func hit(ctx context.Context, client *http.Client, req Request, seq int64) Hit {
	h := Hit{Seq: seq, Start: clock.Now()}
	r, err := http.NewRequestWithContext(ctx, req.Method, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		h.Err = err.Error()
		return h
	}
	for k, v := range req.Header {
		r.Header[k] = v
	}
	h.BytesOut = int64(len(req.Body))
	resp, err := client.Do(r)
	if err != nil {
		h.Latency = clock.Now().Sub(h.Start)
		h.Err = err.Error()
		return h
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	h.Latency = clock.Now().Sub(h.Start)
	h.Status = resp.StatusCode
	h.BytesIn = n
	h.Cold, h.StartUp = targetFacts(resp.Header)
	switch {
	case err != nil:
		h.Err = err.Error()
	case resp.StatusCode < 200 || resp.StatusCode >= 400:
		h.Err = resp.Status
	}
	return h
}

func timeout(opt Options) time.Duration {
	if opt.Timeout > 0 {
		return opt.Timeout
	}
	return 30 * time.Second
}

// targetFacts reads the per-request facts a target reports in headers.
func targetFacts(h http.Header) (cold bool, startUp time.Duration) {
	if h == nil {
		return false, 0
	}
	cold = h.Get(targets.HeaderColdStart) == "1"
	if ns, err := strconv.ParseInt(h.Get(targets.HeaderStartNs), 10, 64); err == nil && ns > 0 {
		startUp = time.Duration(ns)
	}
	return cold, startUp
}

// onClock maps a time taken with time.Now (as vegeta does) onto the
// harness clock through the monotonic readings both carry, so that a wall
// clock step during the run cannot shift requests against meter samples.
func onClock(t time.Time) time.Time {
	return clock.Start().Add(t.Sub(clock.Start()))
}
