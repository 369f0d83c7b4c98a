// Package agent measures a machine other than the one the harness runs
// on: `harness agent` serves the meters of the machine under test over
// HTTP (Server), and the meter spec agent:HOST:PORT reads one of them
// (Meter) as if it were local: the same Sample stream, its times mapped
// from the agent's clock onto the harness clock.
//
// The mapping comes from NTP-style exchanges (package clock's Sync)
// before the recording, every SyncEvery during it and after it; run.json
// records the fitted offset and drift and a bound on the error of every
// sample time. A lost connection is retried; the agent keeps recording
// meanwhile and the meter fetches what it missed, so only readings that
// are truly gone (the agent restarted, its buffer overflowed, the run
// ended while it was unreachable) become gaps.
//
// Spec: agent:HOST:PORT[?token=T&meter=NAME]; the token may come from
// $HARNESS_AGENT_TOKEN instead, and never appears in the meter's name,
// its report or its log lines.
package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/academemes/harness/clock"
	"github.com/academemes/harness/meters"
)

// Name is the driver's name.
const Name = "agent"

const usage = "agent:HOST:PORT[?token=T&meter=NAME]  a meter served by `harness agent` on the machine under test; token also from $" + TokenEnv

func init() {
	meters.Register(meters.Driver{
		Name:  Name,
		Usage: usage,
		Open:  func(sp meters.Spec, env meters.Env) (meters.Meter, error) { return Open(sp, env) },
		Check: func(sp meters.Spec) error {
			_, err := parseOptions(sp)
			return err
		},
	})
}

// Timing of the exchanges and retries.
const (
	// SyncEvery is how often exchanges are made during a recording: often
	// enough that the drift is fitted within seconds and a time mapped
	// ahead of the last exchange is extrapolated by at most this long.
	SyncEvery = 2 * time.Second
	// RetryEvery is how often a lost agent is tried again.
	RetryEvery = time.Second
	// burstBefore and burstAfter exchanges bracket a recording, and
	// burstDuring are made every SyncEvery; each burst keeps its fastest.
	burstBefore = 8
	burstDuring = 3
	burstAfter  = 8
	// staleAfter: a stream silent this long (the agent sends an empty
	// chunk every second) is a lost connection, even if TCP has not
	// noticed.
	staleAfter = 5 * time.Second
	// requestTimeout bounds every request but the stream.
	requestTimeout = 5 * time.Second
)

// Errors callers may branch on, besides meters.ErrUnavailable and
// meters.ErrPermission.
var (
	// errGone: the agent no longer has the recording (it restarted or
	// the recording expired).
	errGone = errors.New("the agent no longer has the recording")
	// errRestarted: the agent answering is not the one that started the
	// session (its boot id changed).
	errRestarted = errors.New("the agent restarted")
)

type options struct {
	addr, host, token, meter string
}

func parseOptions(sp meters.Spec) (options, error) {
	var o options
	shown := sp
	shown.Raw = redact(sp)
	for k := range sp.Options {
		if k != "token" && k != "meter" {
			sep := "&"
			if !strings.Contains(shown.Raw, "?") {
				sep = "?"
			}
			shown.Raw += sep + k + "=" + sp.Options[k]
		}
	}
	if err := shown.Unknown("token", "meter"); err != nil {
		return o, err
	}
	host, port, err := net.SplitHostPort(sp.Arg)
	if err != nil || host == "" {
		return o, fmt.Errorf("%w %q: want agent:HOST:PORT, the address `harness agent --listen` serves on (%s)", meters.ErrSpec, redact(sp), usage)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return o, fmt.Errorf("%w %q: port %q: want 1-65535", meters.ErrSpec, redact(sp), port)
	}
	o.addr, o.host, o.meter = sp.Arg, host, sp.Options["meter"]
	o.token = sp.Options["token"]
	if o.token == "" {
		o.token = os.Getenv(TokenEnv)
	}
	return o, nil
}

// redact is the spec without its token: the meter's name in samples.csv,
// run.json and every message.
func redact(sp meters.Spec) string {
	s := Name + ":" + sp.Arg
	if m := sp.Options["meter"]; m != "" {
		s += "?meter=" + m
	}
	return s
}

// Meter reads one meter of a remote agent.
type Meter struct {
	o      options
	name   string
	base   string // http://HOST:PORT
	client *http.Client
	stream *http.Client
	env    meters.Env
	agent  Describe
	remote MeterDetail
	info   meters.Info

	// Timing; tests shorten them.
	syncEvery, retryEvery, staleAfter time.Duration

	mu       sync.Mutex
	report   meters.Report
	remRep   *meters.Report
	sessions []*session
	lastT    time.Time
	joules   []float64 // last cumulative joules emitted, per channel
	offsetJ  []float64 // added to the current recording's joules, per channel
	gap      *meters.Gap
}

var (
	_ meters.Meter    = (*Meter)(nil)
	_ meters.Reporter = (*Meter)(nil)
	_ meters.Lagger   = (*Meter)(nil)
)

// Lag implements meters.Lagger: the agent sends what it read every
// DefaultFlushEvery; twice that and a round trip's worth of margin.
func (m *Meter) Lag() time.Duration { return 2*DefaultFlushEvery + 300*time.Millisecond }

// session is one run of one agent process (one boot): its clock and the
// recording on it.
type session struct {
	boot    string
	rec     string
	next    uint64 // sequence number of the next reading to fetch
	sync    clock.Sync
	samples int
}

// Open asks the agent what it serves and picks the meter: the one the
// meter option names, else the first. An agent that cannot be reached is
// meters.ErrUnavailable, a refused token meters.ErrPermission, each with
// what to do.
func Open(sp meters.Spec, env meters.Env) (*Meter, error) {
	o, err := parseOptions(sp)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: requestTimeout, KeepAlive: 15 * time.Second}).DialContext,
		ResponseHeaderTimeout: requestTimeout,
		MaxIdleConnsPerHost:   4,
	}
	m := &Meter{
		o: o, name: redact(sp), base: "http://" + o.addr, env: env.WithDefaults(),
		client:    &http.Client{Transport: tr, Timeout: requestTimeout},
		stream:    &http.Client{Transport: tr},
		syncEvery: SyncEvery, retryEvery: RetryEvery, staleAfter: staleAfter,
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := m.call(ctx, http.MethodGet, pathMeters, nil, &m.agent); err != nil {
		return nil, err
	}
	if len(m.agent.Meters) == 0 {
		return nil, fmt.Errorf("%w: agent %s serves no meter", meters.ErrUnavailable, o.addr)
	}
	var names []string
	for _, d := range m.agent.Meters {
		names = append(names, d.Name)
		if o.meter == "" && m.remote.Name == "" || d.Name == o.meter {
			m.remote = d
		}
	}
	if o.meter != "" && m.remote.Name != o.meter {
		return nil, fmt.Errorf("%w: agent %s has no meter %q; it serves: %s", meters.ErrUnavailable, o.addr, o.meter, strings.Join(names, ", "))
	}
	ri := m.remote.Info
	m.info = meters.Info{
		Name: m.name, Driver: Name, Kind: ri.Kind, Channels: ri.Channels, Precision: ri.Precision, Host: o.host,
		Description: fmt.Sprintf("%s on agent %s (%s), its times mapped from the agent's clock: %s", m.remote.Name, o.addr, m.agent.Hostname, ri.Description),
	}
	if len(names) > 1 && o.meter == "" {
		m.info.Description += fmt.Sprintf(" (the first of its meters %s; meter=NAME picks another)", strings.Join(names, ", "))
	}
	m.joules = make([]float64, len(ri.Channels))
	m.offsetJ = make([]float64, len(ri.Channels))
	for i := range m.joules {
		m.joules[i] = math.NaN()
	}
	return m, nil
}

// Info implements meters.Meter: the remote meter's kind, channels and
// precision under this meter's name.
func (m *Meter) Info() meters.Info { return m.info }

// Run records until ctx is done. It returns an error only when the agent
// cannot be reached or refuses at the start, or when the remote meter
// itself failed; a connection lost later is retried every RetryEvery.
func (m *Meter) Run(ctx context.Context, emit func(meters.Sample)) error {
	sess, err := m.newSession(ctx)
	if err != nil {
		return err
	}
	var runErr error
	connected := true
	for ctx.Err() == nil {
		err := m.follow(ctx, sess, emit)
		if ctx.Err() != nil {
			break
		}
		var ended *remoteEnded
		if errors.As(err, &ended) {
			runErr = fmt.Errorf("agent %s: meter %s stopped: %s", m.o.addr, m.remote.Name, ended.msg)
			break
		}
		connected = false
		m.count("agent_disconnects")
		lost := m.env.Clock()
		m.env.Logf("agent %s: %v; retrying every %v (the agent goes on recording)", m.o.addr, err, m.retryEvery)
		gone := errors.Is(err, errGone)
		if gone {
			m.openGap(fmt.Sprintf("agent %s lost the recording: %v", m.o.addr, err))
		}
		sess, connected = m.reconnect(ctx, sess, lost, gone)
	}
	m.finish(sess, connected, emit)
	return runErr
}

// newSession makes the exchanges before a recording and starts one.
func (m *Meter) newSession(ctx context.Context) (*session, error) {
	s := &session{}
	if err := m.burst(ctx, s, burstBefore, false); err != nil {
		return nil, err
	}
	if err := m.startRecording(ctx, s); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.sessions = append(m.sessions, s)
	m.mu.Unlock()
	return s, nil
}

func (m *Meter) startRecording(ctx context.Context, s *session) error {
	var st Started
	if err := m.call(ctx, http.MethodPost, pathRecordings, StartRequest{Meter: m.remote.Name}, &st); err != nil {
		return err
	}
	if st.Boot != s.boot {
		return fmt.Errorf("agent %s: %w while the recording started", m.o.addr, errRestarted)
	}
	s.rec, s.next = st.ID, 0
	// A new recording counts its energy from 0 again: carry on from what
	// was emitted, so that the cumulative joules never fall back.
	m.mu.Lock()
	for i, j := range m.joules {
		if !math.IsNaN(j) {
			m.offsetJ[i] = j
		}
	}
	m.mu.Unlock()
	return nil
}

// burst makes n exchanges and keeps the fastest. The first exchange of a
// new session sets its boot; an agent answering with another boot is
// errRestarted. ack acknowledges the readings fetched so far.
func (m *Meter) burst(ctx context.Context, s *session, n int, ack bool) error {
	exs := make([]clock.Exchange, 0, n)
	for range n {
		ex, boot, err := m.exchange(ctx, s, ack)
		if err != nil {
			return err
		}
		if s.boot == "" {
			s.boot = boot
		}
		if boot != s.boot {
			return fmt.Errorf("agent %s: %w (boot %s, was %s)", m.o.addr, errRestarted, boot, s.boot)
		}
		exs = append(exs, ex)
	}
	m.mu.Lock()
	s.sync.Add(exs...)
	m.mu.Unlock()
	m.countN("agent_exchanges", int64(n))
	return nil
}

// exchange is one round trip to the clock endpoint.
func (m *Meter) exchange(ctx context.Context, s *session, ack bool) (clock.Exchange, string, error) {
	u := m.base + pathClock
	if ack && s.rec != "" {
		u += "?recording=" + s.rec + "&ack=" + strconv.FormatUint(s.next, 10)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return clock.Exchange{}, "", err
	}
	m.auth(req)
	t1 := m.env.Clock()
	resp, err := m.client.Do(req)
	if err != nil {
		return clock.Exchange{}, "", m.netErr(err)
	}
	defer resp.Body.Close()
	var cr ClockReply
	if err := m.decode(resp, &cr); err != nil {
		return clock.Exchange{}, "", err
	}
	t4 := m.env.Clock()
	return clock.Exchange{Sent: t1, Received: cr.Received, Replied: cr.Replied, Returned: t4}, cr.Boot, nil
}

// remoteEnded: the remote meter stopped by itself.
type remoteEnded struct{ msg string }

func (e *remoteEnded) Error() string { return "the remote meter stopped: " + e.msg }

// follow streams the recording's readings and makes the exchanges during
// it, until ctx is done (nil), the connection is lost, or the remote meter
// ends by itself (*remoteEnded).
func (m *Meter) follow(ctx context.Context, s *session, emit func(meters.Sample)) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u := fmt.Sprintf("%s%s/%s/stream?from=%d", m.base, pathRecordings, s.rec, s.next)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	m.auth(req)
	resp, err := m.stream.Do(req)
	if err != nil {
		return m.netErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m.decode(resp, nil)
	}
	chunks := make(chan Chunk)
	errc := make(chan error, 1)
	go func() {
		dec := json.NewDecoder(resp.Body)
		for {
			var c Chunk
			if err := dec.Decode(&c); err != nil {
				errc <- err
				return
			}
			select {
			case chunks <- c:
			case <-sctx.Done():
				return
			}
		}
	}()
	tick := time.NewTicker(m.syncEvery)
	defer tick.Stop()
	stale := time.NewTimer(m.staleAfter)
	defer stale.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-chunks:
			stale.Reset(m.staleAfter)
			m.take(s, c, emit)
			if c.Done {
				if c.Error == "" {
					// Only a stop ends a meter without an error: the
					// agent is shutting down, or let the recording
					// expire. Try again; a new agent is a new session.
					return fmt.Errorf("%w: it ended the recording", errGone)
				}
				return &remoteEnded{c.Error}
			}
		case err := <-errc:
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return errors.New("the agent closed the stream")
			}
			if ctx.Err() != nil {
				return nil
			}
			return m.netErr(err)
		case <-stale.C:
			return fmt.Errorf("no word from the agent for %v", m.staleAfter)
		case <-tick.C:
			if err := m.burst(ctx, s, burstDuring, true); err != nil {
				if errors.Is(err, errRestarted) {
					return err
				}
				m.count("agent_exchange_errors")
			}
		}
	}
}

// take maps a chunk's readings onto the harness clock and emits them.
func (m *Meter) take(s *session, c Chunk, emit func(meters.Sample)) {
	m.mu.Lock()
	if c.From > s.next {
		m.countLocked("agent_readings_dropped", int64(c.From-s.next))
		m.openGapLocked(fmt.Sprintf("the agent dropped %d readings: its buffer overflowed while they could not be fetched", c.From-s.next))
	}
	out := make([]meters.Sample, 0, len(c.Readings))
	for _, r := range c.Readings {
		if r.Channel < 0 || r.Channel >= len(m.joules) {
			m.countLocked("agent_bad_channel", 1)
			continue
		}
		t := s.sync.Map(r.TNs)
		j := r.Joules
		if !math.IsNaN(j) {
			j += m.offsetJ[r.Channel]
			m.joules[r.Channel] = j
		}
		if m.gap != nil {
			m.gap.End = t
			m.report.Gaps = append(m.report.Gaps, *m.gap)
			m.gap = nil
		}
		m.lastT = t
		out = append(out, meters.Sample{Channel: r.Channel, T: t, Watts: r.Watts, Joules: j})
	}
	s.next = c.Next
	s.samples += len(out)
	m.mu.Unlock()
	for _, smp := range out {
		emit(smp)
	}
}

// reconnect tries the agent every RetryEvery until it answers or ctx is
// done. The same agent goes on with the same recording, from the first
// reading not fetched; a restarted one (or one that lost the recording)
// gets a new session and recording, and the readings lost between are a
// gap.
func (m *Meter) reconnect(ctx context.Context, s *session, lost time.Time, gone bool) (*session, bool) {
	said := false
	for {
		select {
		case <-ctx.Done():
			return s, false
		case <-time.After(m.retryEvery):
		}
		ex, boot, err := m.exchange(ctx, s, false)
		if err != nil {
			if !said && ctx.Err() == nil {
				m.env.Logf("%v", err)
				said = true
			}
			continue
		}
		if boot == s.boot {
			m.mu.Lock()
			s.sync.Add(ex)
			m.mu.Unlock()
			if !gone {
				m.env.Logf("agent %s: back after %v; fetching the readings it kept", m.o.addr, m.env.Clock().Sub(lost).Round(time.Millisecond))
				return s, true
			}
			// The recording is gone but the agent is the same: a new
			// recording on the same clock.
			if err := m.startRecording(ctx, s); err != nil {
				m.env.Logf("agent %s: %v", m.o.addr, err)
				continue
			}
			return s, true
		}
		m.count("agent_restarts")
		m.openGap(fmt.Sprintf("agent %s restarted: the readings it had not sent were lost", m.o.addr))
		ns, err := m.newSession(ctx)
		if err != nil {
			m.env.Logf("agent %s: restarted, but a new recording failed: %v", m.o.addr, err)
			continue
		}
		m.env.Logf("agent %s restarted after %v: recording again; the readings lost between are a gap", m.o.addr, m.env.Clock().Sub(lost).Round(time.Millisecond))
		return ns, true
	}
}

// finish stops the recording, makes the exchanges after it, fetches what
// is left and drops the recording. An agent that cannot be reached leaves
// the time since the last reading as a gap.
func (m *Meter) finish(s *session, connected bool, emit func(meters.Sample)) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*requestTimeout)
	defer cancel()
	end := m.env.Clock()
	err := errors.New("unreachable when the recording ended")
	if connected {
		err = m.drain(ctx, s, emit)
	}
	if err != nil {
		m.env.Logf("agent %s: %v; the readings after the last one fetched are lost", m.o.addr, err)
		m.mu.Lock()
		if m.gap == nil && !m.lastT.IsZero() && end.After(m.lastT) {
			m.gap = &meters.Gap{Start: m.lastT, Reason: fmt.Sprintf("agent %s: %v", m.o.addr, err)}
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	if m.gap != nil {
		m.gap.End = end
		if end.Before(m.gap.Start) {
			m.gap.End = m.gap.Start
		}
		m.report.Gaps = append(m.report.Gaps, *m.gap)
		m.gap = nil
	}
	m.mu.Unlock()
}

// drain stops the remote meter, exchanges, then fetches every reading
// left, so that the last ones are mapped between two exchanges.
func (m *Meter) drain(ctx context.Context, s *session, emit func(meters.Sample)) error {
	var st Stopped
	if err := m.call(ctx, http.MethodPost, pathRecordings+"/"+s.rec+"/stop", nil, &st); err != nil {
		return fmt.Errorf("stopping the recording: %w", err)
	}
	if err := m.burst(ctx, s, burstAfter, true); err != nil {
		m.env.Logf("agent %s: exchanges after the recording: %v", m.o.addr, err)
	}
	for {
		var c Chunk
		if err := m.call(ctx, http.MethodGet, fmt.Sprintf("%s/%s/samples?from=%d", pathRecordings, s.rec, s.next), nil, &c); err != nil {
			return fmt.Errorf("fetching the last readings: %w", err)
		}
		m.take(s, c, emit)
		if c.Done || len(c.Readings) == 0 {
			break
		}
	}
	m.call(ctx, http.MethodDelete, pathRecordings+"/"+s.rec, nil, nil)
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := st.Report; r != nil {
		rep := *r
		// The remote meter's gaps are on the agent's clock.
		for i, g := range rep.Gaps {
			rep.Gaps[i].Start = s.sync.Map(g.Start.UnixNano())
			rep.Gaps[i].End = s.sync.Map(g.End.UnixNano())
		}
		m.remRep = &rep
	}
	if st.Error != "" {
		m.report.Warnings = append(m.report.Warnings, "the remote meter stopped with: "+st.Error)
	}
	return nil
}

// Report implements meters.Reporter: the gaps and counters of the link,
// the remote meter's own gaps, counters and warnings, and the clock fit
// of the session that delivered most readings, with the largest bound of
// any session.
func (m *Meter) Report() meters.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := meters.Report{Counters: map[string]int64{}, Details: map[string]any{
		"agent":        m.o.addr,
		"agent_host":   m.agent.Hostname,
		"remote_meter": m.remote.Name,
		"remote_spec":  m.remote.Spec,
	}}
	for k, v := range m.report.Counters {
		r.Counters[k] = v
	}
	r.Gaps = append(r.Gaps, m.report.Gaps...)
	r.Warnings = append(r.Warnings, m.report.Warnings...)
	if rr := m.remRep; rr != nil {
		r.Gaps = append(r.Gaps, rr.Gaps...)
		for k, v := range rr.Counters {
			r.Counters[k] += v
		}
		for _, w := range rr.Warnings {
			r.Warnings = append(r.Warnings, "on the agent: "+w)
		}
		if rr.ClockFit != nil {
			r.Details["remote_device_clock_fit"] = *rr.ClockFit
		}
	}
	var best *session
	var bound float64
	var fits []map[string]any
	for _, s := range m.sessions {
		if !s.sync.Ready() {
			continue
		}
		f := s.sync.Fit()
		bound = math.Max(bound, f.BoundNs)
		if best == nil || s.samples > best.samples {
			best = s
		}
		fits = append(fits, map[string]any{"boot": s.boot, "offset_ns": f.OffsetNs, "at_ns": f.AtNs, "drift_ppm": f.DriftPPM,
			"bound_ns": f.BoundNs, "points": f.Points, "round_trip_min_ns": int64(f.RoundTripMin), "round_trip_median_ns": int64(f.RoundTripMedian), "readings": s.samples})
	}
	if best != nil {
		f := best.sync.Fit()
		r.ClockFit = &meters.ClockFit{
			OffsetNs: f.OffsetNs, AtNs: f.AtNs, DriftPPM: f.DriftPPM, Points: f.Points,
			ResidualRMSNs: f.ResidualRMSNs, ResidualMaxNs: f.ResidualMaxNs,
			BoundNs: bound, DriftBoundPPM: f.DriftBoundPPM,
		}
		r.Details["round_trip_min_ns"] = int64(f.RoundTripMin)
		r.Details["round_trip_median_ns"] = int64(f.RoundTripMedian)
	}
	if len(fits) > 1 {
		r.Details["clock_sessions"] = fits
		r.Warnings = append(r.Warnings, fmt.Sprintf("the agent restarted: %d clock fits, one per run of the agent (details: clock_sessions); the clock fit shown is that of the longest", len(fits)))
	}
	return r
}

func (m *Meter) count(k string) { m.countN(k, 1) }

func (m *Meter) countN(k string, n int64) {
	m.mu.Lock()
	m.countLocked(k, n)
	m.mu.Unlock()
}

func (m *Meter) countLocked(k string, n int64) {
	if m.report.Counters == nil {
		m.report.Counters = map[string]int64{}
	}
	m.report.Counters[k] += n
}

func (m *Meter) openGap(reason string) {
	m.mu.Lock()
	m.openGapLocked(reason)
	m.mu.Unlock()
}

// openGapLocked opens a gap from the last reading emitted (or now, before
// any); the next reading closes it.
func (m *Meter) openGapLocked(reason string) {
	if m.gap != nil {
		return
	}
	start := m.lastT
	if start.IsZero() {
		start = m.env.Clock()
	}
	m.gap = &meters.Gap{Start: start, Reason: reason}
}

func (m *Meter) auth(req *http.Request) {
	if m.o.token != "" {
		req.Header.Set("Authorization", "Bearer "+m.o.token)
	}
}

// call makes one request with a JSON body (nil: none) and decodes the
// JSON answer into out (nil: ignored).
func (m *Meter) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	m.auth(req)
	resp, err := m.client.Do(req)
	if err != nil {
		return m.netErr(err)
	}
	defer resp.Body.Close()
	return m.decode(resp, out)
}

// decode reads a JSON answer into out, or turns an error answer into an
// error that says what to do.
func (m *Meter) decode(resp *http.Response, out any) error {
	if resp.StatusCode/100 == 2 {
		if out == nil {
			return nil
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
			return fmt.Errorf("agent %s: bad answer to %s: %w", m.o.addr, resp.Request.URL.Path, err)
		}
		return nil
	}
	var eb errorBody
	json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&eb)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		how := "it wants one: give the agent's --token as ?token=T or in $" + TokenEnv
		if m.o.token != "" {
			how = "give the token the agent was started with (--token or $" + TokenEnv + " on its side), as ?token=T or in $" + TokenEnv
		}
		return fmt.Errorf("%w: agent %s refused the token: %s", meters.ErrPermission, m.o.addr, how)
	case http.StatusNotFound:
		if strings.HasPrefix(resp.Request.URL.Path, pathRecordings+"/") {
			return fmt.Errorf("%w: %s", errGone, eb.Error)
		}
		return fmt.Errorf("%w: %s at %s answers 404 to %s: is it a `harness agent` of this version?", meters.ErrUnavailable, m.o.addr, m.o.addr, resp.Request.URL.Path)
	}
	msg := eb.Error
	if msg == "" {
		msg = resp.Status
	}
	return fmt.Errorf("agent %s: %s: %s", m.o.addr, resp.Request.URL.Path, msg)
}

// netErr says what a failed connection means for a user.
func (m *Meter) netErr(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the address is said already
	}
	return fmt.Errorf("%w: agent %s cannot be reached (%v): is `harness agent --listen %s` running there, and the port open to this machine?",
		meters.ErrUnavailable, m.o.addr, err, m.o.addr)
}
