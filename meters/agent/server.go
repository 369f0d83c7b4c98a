package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/academemes/harness/meters"
)

// Defaults of the agent.
const (
	// DefaultBuffer is how many readings a recording keeps that the
	// controller has not acknowledged: about 40 MB, 40 minutes of a
	// four-zone RAPL meter at 100 Hz. Past it the oldest are dropped and
	// the controller records a gap.
	DefaultBuffer = 1 << 20
	// DefaultLease is how long a recording lives without a word from its
	// controller (a fetch, an exchange that names it) before the agent
	// stops and drops it: a controller that crashed leaves nothing running
	// for long.
	DefaultLease = 10 * time.Minute
	// DefaultFlushEvery is how often a stream sends what was read. A
	// tenth of a second keeps the controller close to live at 10 wake-ups
	// a second on the machine under test; every reading carries its own
	// time, so the batching moves no sample.
	DefaultFlushEvery = 100 * time.Millisecond
	// heartbeatEvery is the longest a stream stays silent: an empty chunk
	// tells the controller that the connection still lives.
	heartbeatEvery = time.Second
	// maxChunk is the most readings in one chunk.
	maxChunk = 10000
)

// Config is what an agent serves and how.
type Config struct {
	// Specs are the meter specs to serve; none means auto.
	Specs []string
	// Env is where hardware is read, and Env.Clock is the agent's clock:
	// it stamps every reading and clock exchange (tests inject one that
	// is offset and drifting).
	Env meters.Env
	// Token is the bearer token every request must carry; "" serves
	// without one, which `harness agent` allows only on loopback.
	Token    string
	Hostname string // default os.Hostname()
	Version  string
	// Logf reports recordings starting, stopping and expiring. It never
	// receives the token.
	Logf func(format string, args ...any)
	// Buffer, Lease and FlushEvery default to DefaultBuffer, DefaultLease
	// and DefaultFlushEvery.
	Buffer     int
	Lease      time.Duration
	FlushEvery time.Duration
}

// Server is the agent: it serves its meters over HTTP (see the API at the
// top of wire.go).
type Server struct {
	cfg      Config
	describe Describe
	served   []*served

	mu     sync.Mutex
	recs   map[string]*recording
	nextID int
	quit   chan struct{}
	closed bool
}

// served is one meter the agent serves.
type served struct {
	name, spec string
	mu         sync.Mutex
	spare      meters.Meter // opened but not yet run: the next recording takes it
}

// NewServer opens every meter once, so that a spec that cannot be read is
// an error now, and describes them.
func NewServer(cfg Config) (*Server, error) {
	cfg.Env = cfg.Env.WithDefaults()
	if len(cfg.Specs) == 0 {
		cfg.Specs = []string{"auto"}
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultFlushEvery
	}
	var boot [8]byte
	rand.Read(boot[:])
	s := &Server{cfg: cfg, recs: map[string]*recording{}, quit: make(chan struct{})}
	s.describe = Describe{Hostname: cfg.Hostname, Boot: hex.EncodeToString(boot[:]), Version: cfg.Version}
	used := map[string]int{}
	for _, spec := range cfg.Specs {
		m, notes, err := meters.Open(spec, cfg.Env)
		if err != nil {
			return nil, fmt.Errorf("meter %s: %w", spec, err)
		}
		info := m.Info()
		name := info.Driver
		if used[name]++; used[name] > 1 {
			name += "-" + strconv.Itoa(used[name])
		}
		// auto chose a spec: reopen that one for later recordings.
		reopen := spec
		if sp, _ := meters.ParseSpec(spec); sp.Driver == "auto" {
			reopen = info.Name
		}
		s.served = append(s.served, &served{name: name, spec: reopen, spare: m})
		s.describe.Meters = append(s.describe.Meters, MeterDetail{Name: name, Spec: reopen, Info: info, Notes: notes})
	}
	go s.expire()
	return s, nil
}

// Describe returns what GET /v1/meters answers.
func (s *Server) Describe() Describe { return s.describe }

// Close stops every recording.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.quit)
	recs := s.recs
	s.recs = map[string]*recording{}
	s.mu.Unlock()
	for _, r := range recs {
		r.stop()
	}
}

// Handler serves the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathClock, s.serveClock)
	mux.HandleFunc("GET "+pathMeters, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.describe) })
	mux.HandleFunc("POST "+pathRecordings, s.serveStart)
	mux.HandleFunc("GET "+pathRecordings+"/{id}/samples", s.serveChunk)
	mux.HandleFunc("GET "+pathRecordings+"/{id}/stream", s.serveStream)
	mux.HandleFunc("POST "+pathRecordings+"/{id}/stop", s.serveStop)
	mux.HandleFunc("DELETE "+pathRecordings+"/{id}", s.serveDelete)
	if s.cfg.Token == "" {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !tokenOK(given, s.cfg.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="harness agent"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{"missing or wrong token"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// serveClock answers an exchange: T2 is read first thing, T3 last, so
// that the agent's own handling is inside [T2, T3] and out of the round
// trip.
func (s *Server) serveClock(w http.ResponseWriter, r *http.Request) {
	t2 := s.cfg.Env.Clock().UnixNano()
	if id := r.URL.Query().Get("recording"); id != "" {
		if rec := s.recording(id); rec != nil {
			if n, err := strconv.ParseUint(r.URL.Query().Get("ack"), 10, 64); err == nil {
				rec.ack(n)
			}
			rec.touch()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	t3 := s.cfg.Env.Clock().UnixNano()
	b, _ := json.Marshal(ClockReply{Boot: s.describe.Boot, Received: t2, Replied: t3})
	w.Write(b)
}

func (s *Server) serveStart(w http.ResponseWriter, r *http.Request) {
	var req StartRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"want {\"meter\": NAME}: " + err.Error()})
		return
	}
	var sv *served
	for _, x := range s.served {
		if x.name == req.Meter {
			sv = x
		}
	}
	if sv == nil {
		writeJSON(w, http.StatusNotFound, errorBody{fmt.Sprintf("no meter %q here; this agent serves: %s", req.Meter, strings.Join(s.names(), ", "))})
		return
	}
	m, err := sv.take(s.cfg.Env)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{fmt.Sprintf("meter %s: %v", sv.name, err)})
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"the agent is shutting down"})
		return
	}
	s.nextID++
	id := strconv.Itoa(s.nextID)
	rec := newRecording(id, sv.name, s.cfg.Buffer)
	s.recs[id] = rec
	s.mu.Unlock()
	rec.run(m)
	s.cfg.Logf("recording %s of %s started", id, sv.name)
	writeJSON(w, http.StatusCreated, Started{ID: id, Boot: s.describe.Boot})
}

func (s *Server) names() []string {
	var out []string
	for _, x := range s.served {
		out = append(out, x.name)
	}
	return out
}

// take returns the spare meter, or opens a fresh one.
func (sv *served) take(env meters.Env) (meters.Meter, error) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if m := sv.spare; m != nil {
		sv.spare = nil
		return m, nil
	}
	m, _, err := meters.Open(sv.spec, env)
	return m, err
}

func (s *Server) recording(id string) *recording {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recs[id]
}

// lookup finds the recording a request names, or answers 404.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *recording {
	rec := s.recording(r.PathValue("id"))
	if rec == nil {
		writeJSON(w, http.StatusNotFound, errorBody{fmt.Sprintf("no recording %q (boot %s): the agent restarted, or the recording expired or was deleted", r.PathValue("id"), s.describe.Boot)})
	}
	return rec
}

func (s *Server) serveChunk(w http.ResponseWriter, r *http.Request) {
	rec := s.lookup(w, r)
	if rec == nil {
		return
	}
	from, err := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"from: want a sequence number"})
		return
	}
	n := maxChunk
	if v := r.URL.Query().Get("max"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			writeJSON(w, http.StatusBadRequest, errorBody{"max: want a positive number"})
			return
		}
	}
	rec.ack(from)
	writeJSON(w, http.StatusOK, rec.chunk(from, min(n, maxChunk)))
}

// serveStream sends chunks from the sequence number asked for, one a
// line, every FlushEvery while there are readings and at least every
// heartbeatEvery, until the recording has ended and all of it was sent or
// the controller goes away.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	rec := s.lookup(w, r)
	if rec == nil {
		return
	}
	from, err := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"from: want a sequence number"})
		return
	}
	rec.ack(from)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	tick := time.NewTicker(s.cfg.FlushEvery)
	defer tick.Stop()
	last := time.Now()
	for {
		c := rec.chunk(from, maxChunk)
		if len(c.Readings) > 0 || c.Done || c.From != from || time.Since(last) >= heartbeatEvery {
			if enc.Encode(c) != nil || rc.Flush() != nil {
				return
			}
			rec.touch()
			last = time.Now()
			from = c.Next
			if c.Done && len(c.Readings) == 0 {
				return
			}
			if len(c.Readings) == maxChunk {
				continue // more is waiting
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.quit:
			return
		case <-tick.C:
		}
	}
}

func (s *Server) serveStop(w http.ResponseWriter, r *http.Request) {
	rec := s.lookup(w, r)
	if rec == nil {
		return
	}
	rec.stop()
	rec.touch()
	st := rec.stopped()
	s.cfg.Logf("recording %s of %s stopped: %d readings", rec.id, rec.meter, st.Next)
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request) {
	rec := s.lookup(w, r)
	if rec == nil {
		return
	}
	s.mu.Lock()
	delete(s.recs, rec.id)
	s.mu.Unlock()
	rec.stop()
	w.WriteHeader(http.StatusNoContent)
}

// expire stops and drops the recordings whose controller has not been
// heard from for a lease.
func (s *Server) expire() {
	t := time.NewTicker(max(s.cfg.Lease/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		s.mu.Lock()
		var old []*recording
		for id, r := range s.recs {
			if r.idle() > s.cfg.Lease {
				old = append(old, r)
				delete(s.recs, id)
			}
		}
		s.mu.Unlock()
		for _, r := range old {
			r.stop()
			s.cfg.Logf("recording %s of %s dropped: no word from its controller for %v", r.id, r.meter, s.cfg.Lease)
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// recording is one run of one meter and the readings not yet
// acknowledged.
type recording struct {
	id, meter string
	limit     int
	cancel    context.CancelFunc
	done      chan struct{} // closed when the meter's Run returned

	mu      sync.Mutex
	buf     []Reading
	start   uint64 // sequence number of buf[0]
	ended   bool
	runErr  error
	report  *meters.Report
	contact time.Time
}

func newRecording(id, meter string, limit int) *recording {
	return &recording{id: id, meter: meter, limit: limit, done: make(chan struct{}), contact: time.Now()}
}

// run runs m until stop.
func (r *recording) run(m meters.Meter) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		err := m.Run(ctx, r.add)
		var rep *meters.Report
		if rp, ok := m.(meters.Reporter); ok {
			x := rp.Report()
			rep = &x
		}
		r.mu.Lock()
		r.ended, r.runErr, r.report = true, err, rep
		r.mu.Unlock()
	}()
}

// add keeps one reading; past the limit the oldest is dropped.
func (r *recording) add(s meters.Sample) {
	r.mu.Lock()
	r.buf = append(r.buf, Reading{Channel: s.Channel, TNs: s.T.UnixNano(), Watts: s.Watts, Joules: s.Joules})
	if over := len(r.buf) - r.limit; over > 0 {
		r.buf = r.buf[over:]
		r.start += uint64(over)
	}
	r.mu.Unlock()
}

// ack drops the readings below n: the controller has them.
func (r *recording) ack(n uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= r.start {
		return
	}
	k := min(n-r.start, uint64(len(r.buf)))
	// Copy what is left, so that the dropped readings' memory is freed.
	r.buf = append([]Reading(nil), r.buf[k:]...)
	r.start += k
}

// chunk returns up to n readings from sequence number from (or from the
// oldest kept, if those were dropped).
func (r *recording) chunk(from uint64, n int) Chunk {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.start + uint64(len(r.buf))
	from = min(max(from, r.start), end)
	to := min(from+uint64(n), end)
	c := Chunk{From: from, Next: to, Readings: append([]Reading(nil), r.buf[from-r.start:to-r.start]...)}
	if r.ended && to == end {
		c.Done = true
		if r.runErr != nil {
			c.Error = r.runErr.Error()
		}
	}
	return c
}

// stop ends the meter's Run and waits for it (10 s at most: a driver
// stuck in a read must not hang the agent).
func (r *recording) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
	}
}

func (r *recording) stopped() Stopped {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Stopped{Report: r.report, Next: r.start + uint64(len(r.buf))}
	if r.runErr != nil {
		st.Error = r.runErr.Error()
	} else if !r.ended {
		st.Error = "the meter did not stop within 10 s"
	}
	return st
}

func (r *recording) touch() {
	r.mu.Lock()
	r.contact = time.Now()
	r.mu.Unlock()
}

func (r *recording) idle() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Since(r.contact)
}
