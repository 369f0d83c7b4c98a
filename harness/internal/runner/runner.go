// Package runner runs a scenario: it starts the targets and the meters,
// and for each repetition, targets interleaved (A B A B ...), records an
// idle baseline, a warmup, the measured load and a cooldown, writing every
// request and sample to the run directory as it goes.
package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/academemes/harness/clock"
	"github.com/academemes/harness/harness/internal/carbon"
	"github.com/academemes/harness/harness/internal/load"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/scenario"
	"github.com/academemes/harness/harness/internal/validity"
	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/targets"
)

// Options set where a run goes and how it talks to people.
type Options struct {
	RunsDir      string // default "runs"
	FunctionsDir string // "" for the functions embedded in the binary
	Version      string
	Env          meters.Env
	// Log receives progress lines; Progress draws a bar when Log is a
	// terminal.
	Log      io.Writer
	Terminal bool
	// Now stamps the run id; tests inject it.
	Now func() time.Time
	// Thresholds of the validity checks; nil for validity.Default().
	Thresholds *validity.Thresholds
	// Observer is told what the run does as it goes (a live view,
	// NewMetrics); nil for none.
	Observer Observer
}

// Result is what a run produced.
type Result struct {
	ID     string
	Dir    string
	Status string // runstore.Status*
	// Skipped lists targets that did not run, with the reason.
	Skipped []string
	// Validity is the run's, as run.json records it; nil with checks: off.
	Validity *runstore.Validity
	// Refused: a strict run found the machine busy and ran no phase.
	Refused bool
}

// ErrNoTargets means every target was skipped.
var ErrNoTargets = errors.New("no target could be started")

// ErrScenario means the run could not begin because of its scenario (a
// body_file that is gone, or no longer a file of bounded size, since the
// scenario was checked): a usage error, found before a run directory
// exists.
var ErrScenario = errors.New("the scenario cannot run")

// slot is one target's turn within a repetition.
type slot struct {
	t    *liveTarget
	rep  int
	load []phasePlan
}

type phasePlan struct {
	name string
	req  load.Request
}

type liveTarget struct {
	spec   scenario.Target
	target targets.Target
	meta   runstore.TargetMeta
}

// Run runs sc. It returns when the run is complete, failed or interrupted
// (ctx done); in every case the run directory holds all that was recorded
// and run.json says how it ended. A run that cannot even begin returns an
// error and no Result.
func Run(ctx context.Context, sc *scenario.Scenario, opt Options) (*Result, error) {
	if opt.RunsDir == "" {
		opt.RunsDir = "runs"
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	// Targets, meters and the progress bar log from their own goroutines.
	opt.Log = &lockedWriter{w: opt.Log}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Observer == nil {
		opt.Observer = noObserver{}
	}
	env := opt.Env
	if env.Log == nil {
		env.Log = opt.Log
	}
	env = env.WithDefaults()
	logf := func(format string, args ...any) { fmt.Fprintf(opt.Log, format+"\n", args...) }

	// What the scenario names is read before the run directory exists, so
	// that a run that cannot begin leaves none behind.
	bodies, err := readBodies(sc)
	if err != nil {
		return nil, err
	}
	id, dir, err := newRunDir(opt.RunsDir, sc.Name, opt.Now())
	if err != nil {
		return nil, err
	}
	meta := runstore.Meta{
		ID: id, Scenario: sc.Name, Description: sc.Description, Version: opt.Version,
		Started: clock.Now(), Host: readHost(env.ProcfsRoot, env.SysfsRoot), Repeat: sc.Repeat,
		Load: runstore.LoadMeta{Method: sc.Load.Request.Method, Path: sc.Load.Request.Path, Workers: sc.Load.Workers},
	}
	// run.json rewrites at every phase: it carries an intensity series
	// only as far as a run may last, and at the end only the run's span.
	meta.Carbon = carbon.Trimmed(sc.Carbon, meta.Started.UnixNano(), meta.Started.Add(carbon.Horizon).UnixNano())
	if sc.Load.Sequential != nil {
		meta.Load.Model = "sequential"
	} else {
		meta.Load.Model = "open"
	}
	// The copy of the scenario keeps no meter's token (an agent's).
	w, err := runstore.Create(dir, []byte(meters.Redact(string(sc.Source))), meta)
	if err != nil {
		return nil, err
	}
	res := &Result{ID: id, Dir: dir}
	logf("run %s -> %s", id, dir)
	opt.Observer.RunStarted(w.Meta())

	r := &run{sc: sc, opt: opt, env: env, w: w, logf: logf, watch: newWatch(sc.Checks, opt.Thresholds), bodies: bodies}
	runErr := r.execute(ctx)
	res.Validity, err = r.finishChecks()
	opt.Observer.Validity(res.Validity)
	if runErr == nil {
		runErr = err
	}
	res.Refused = errors.Is(runErr, ErrInvalid) && len(w.Meta().Phases) == 0
	status := runstore.StatusComplete
	switch {
	case ctx.Err() != nil:
		status = runstore.StatusInterrupted
	case runErr != nil:
		status = runstore.StatusFailed
	}
	res.Status = status
	res.Skipped = r.skipped
	err = w.Update(func(m *runstore.Meta) {
		m.Status = status
		m.Ended = clock.Now()
		m.Carbon = carbon.Trimmed(m.Carbon, m.Started.UnixNano(), m.Ended.UnixNano())
		if runErr != nil {
			m.Error = runErr.Error()
		}
	})
	err = errors.Join(err, w.Close())
	if err != nil {
		return res, err
	}
	if runErr != nil && status != runstore.StatusInterrupted {
		return res, runErr
	}
	return res, nil
}

// run holds the state of one run in progress.
type run struct {
	sc      *scenario.Scenario
	opt     Options
	env     meters.Env
	w       *runstore.Writer
	logf    func(string, ...any)
	skipped []string

	live    []*liveTarget
	markers []meters.Marker
	// bodies holds each body_file's content, read before the run began.
	bodies  map[string][]byte
	lagging []lagging // meters whose samples arrive late

	requests atomic.Int64
	errors   atomic.Int64

	watch *watch // the validity checks; nil with checks: off
}

func (r *run) execute(ctx context.Context) (err error) {
	// Meters first, so that target start-up is recorded too.
	meterCtx, stopMeters := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() {
		stopMeters()
		wg.Wait()
	}()
	if err := r.startMeters(meterCtx, &wg); err != nil {
		return err
	}
	defer r.stopTargets()
	if err := r.startTargets(ctx); err != nil {
		return err
	}
	if err := r.systemCheck(ctx); err != nil {
		return err
	}
	r.opt.Observer.Validity(r.w.Meta().Validity)
	slots, err := r.plan()
	if err != nil {
		return err
	}
	prog := newProgress(r.opt.Log, r.opt.Terminal, r.plannedDuration(slots), &r.requests, &r.errors)
	defer prog.stop()
	for _, s := range slots {
		if err := r.runSlot(ctx, s, prog); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

func (r *run) startMeters(ctx context.Context, wg *sync.WaitGroup) error {
	for i, spec := range r.sc.Meters {
		m, notes, err := meters.Open(spec, r.env)
		for _, n := range notes {
			r.logf("%s", n)
		}
		if err != nil {
			return fmt.Errorf("meter %s: %w", meters.Redact(spec), err)
		}
		info := m.Info()
		mm := runstore.MeterMetaFrom(info)
		mm.Notes = notes
		// The machine measured: the scenario's host:, else the meter's
		// own address (an agent's), else this one.
		mm.Host = hostName(cmp.Or(r.sc.MeterHost(i), info.Host))
		idx := len(r.w.Meta().Meters)
		r.w.Update(func(meta *runstore.Meta) { meta.Meters = append(meta.Meters, mm) })
		r.opt.Observer.MeterStarted(mm)
		desc := info.Description
		if info.Kind == meters.Model && !strings.Contains(desc, "not a measurement") {
			desc += " — an estimate from a model, not a measurement"
		}
		if mm.Host != runstore.HostLocal {
			desc += " (measures " + mm.Host + ")"
		}
		r.logf("meter %s: %s", info.Label(), desc)
		if mk, ok := m.(meters.Marker); ok {
			r.markers = append(r.markers, mk)
		}
		if lg, ok := m.(meters.Lagger); ok {
			r.lagging = append(r.lagging, lagging{info.Name, lg.Lag()})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := info.Name
			err := m.Run(ctx, func(s meters.Sample) {
				smp := runstore.SampleFrom(name, s)
				r.addSample(smp)
				r.opt.Observer.Sample(smp)
			})
			var rep *runstore.MeterReport
			if rp, ok := m.(meters.Reporter); ok {
				rep = runstore.MeterReportFrom(rp.Report())
			}
			r.w.Update(func(meta *runstore.Meta) {
				meta.Meters[idx].Report = rep
				if err != nil {
					meta.Meters[idx].Error = err.Error()
					meta.Warnings = append(meta.Warnings, fmt.Sprintf("meter %s stopped early at %s: %v", name, clock.Now().Format(time.RFC3339), err))
				}
			})
			if err != nil {
				r.logf("meter %s stopped: %v (the run goes on; its data so far is kept)", name, err)
			}
		}()
	}
	return nil
}

func (r *run) startTargets(ctx context.Context) error {
	for _, ts := range r.sc.Targets {
		spec := targets.Spec{
			Name: ts.Name, Kind: ts.Kind, Function: ts.Function, Mode: targets.Mode(ts.Mode),
			Options: ts.Options, FunctionsDir: r.opt.FunctionsDir, RunID: r.w.Meta().ID,
			Logf: func(format string, args ...any) { r.logf(ts.Name+": "+format, args...) },
		}
		lt := &liveTarget{spec: ts, meta: runstore.TargetMetaFrom(targets.Info{Name: ts.Name, Kind: ts.Kind, Mode: spec.Mode, Function: ts.Function})}
		host := targetHost(ts, spec)
		lt.meta.Host = host
		t, err := targets.New(spec)
		if err == nil {
			lt.target = t
			lt.meta = runstore.TargetMetaFrom(t.Info())
			lt.meta.Host = host
			where := ""
			if host != runstore.HostLocal {
				where = ", served from " + host
			}
			r.logf("target %s (%s, %s, %s%s): starting", ts.Name, ts.Kind, ts.Mode, ts.Function, where)
			err = t.Start(ctx)
			if err == nil {
				lt.meta.URL = t.URL().String()
				r.live = append(r.live, lt)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				r.stopOne(lt)
				return ctx.Err()
			}
			// Only a platform that is not there skips a target; any
			// other error (a bad option, a missing function, refused
			// credentials) is a mistake that the run must not hide.
			switch {
			case !errors.Is(err, targets.ErrUnavailable):
				r.stopOne(lt)
				return fmt.Errorf("target %s: %w", ts.Name, err)
			case ts.Required:
				r.stopOne(lt)
				return fmt.Errorf("target %s is required (required: true) but its platform is unavailable: %w", ts.Name, err)
			}
			lt.meta.Skipped = true
			lt.meta.SkipReason = err.Error()
			r.skipped = append(r.skipped, fmt.Sprintf("%s: %v", ts.Name, err))
			r.logf("target %s skipped: %v", ts.Name, err)
			r.stopOne(lt)
		}
		r.w.Update(func(m *runstore.Meta) { m.Targets = append(m.Targets, lt.meta) })
	}
	if len(r.live) == 0 {
		return ErrNoTargets
	}
	return nil
}

// stopTargets stops every started target with a fresh context, so that a
// Ctrl-C still removes what the targets created.
func (r *run) stopTargets() {
	for _, lt := range r.live {
		r.stopOne(lt)
		if rp, ok := lt.target.(targets.Reporter); ok {
			rep := rp.Report()
			name := lt.spec.Name
			r.w.Update(func(m *runstore.Meta) {
				for i := range m.Targets {
					if m.Targets[i].Name == name {
						m.Targets[i].Report = rep
					}
				}
			})
		}
	}
}

func (r *run) stopOne(lt *liveTarget) {
	if lt.target == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := lt.target.Stop(ctx); err != nil {
		r.logf("target %s: stop: %v", lt.spec.Name, err)
		r.w.Update(func(m *runstore.Meta) {
			m.Warnings = append(m.Warnings, fmt.Sprintf("target %s: stop: %v", lt.spec.Name, err))
		})
	}
}

// plan builds the order of slots: every repetition runs each target once,
// in the scenario's order (order: fixed) or in an order drawn anew for
// each repetition from the seed (order: random), which run.json records.
func (r *run) plan() ([]slot, error) {
	var seed uint64
	if r.sc.Order != scenario.OrderFixed {
		seed = r.sc.Seed
		for seed == 0 { // 0 means fixed in run.json: draw until it is not
			seed = rand.Uint64()
		}
	}
	var slots []slot
	var order []string
	for rep, turns := range targetOrder(len(r.live), r.sc.Repeat, seed) {
		for _, i := range turns {
			lt := r.live[i]
			order = append(order, lt.spec.Name)
			s := slot{t: lt, rep: rep}
			inputs := r.sc.Load.Inputs
			if len(lt.spec.Inputs) > 0 {
				inputs = lt.spec.Inputs
			}
			if len(inputs) == 0 {
				inputs = []scenario.Input{{}}
			}
			for _, in := range inputs {
				req, err := r.request(lt, in)
				if err != nil {
					return nil, err
				}
				name := runstore.PhaseLoad
				if in.Name != "" {
					name += "/" + in.Name
				}
				s.load = append(s.load, phasePlan{name: name, req: req})
			}
			slots = append(slots, s)
		}
	}
	r.w.Update(func(m *runstore.Meta) { m.Order, m.OrderSeed = order, seed })
	return slots, nil
}

// targetOrder is the order of n targets in each of reps repetitions: the
// given order every time when seed is 0, else a permutation per
// repetition drawn from seed, so that no target always follows the same
// one (the heat and drift a turn leaves behind fall on all alike) and the
// same seed gives the same order.
func targetOrder(n, reps int, seed uint64) [][]int {
	rng := rand.New(rand.NewPCG(seed, 0x0de7))
	out := make([][]int, reps)
	for rep := range out {
		if seed == 0 {
			out[rep] = make([]int, n)
			for i := range n {
				out[rep][i] = i
			}
			continue
		}
		out[rep] = rng.Perm(n)
	}
	return out
}

// request builds the HTTP request for one target and input: the scenario's
// path (and the input's) is appended to the target's URL.
func (r *run) request(lt *liveTarget, in scenario.Input) (load.Request, error) {
	lr := r.sc.Load.Request
	u := *lt.target.URL()
	for _, p := range []string{lr.Path, in.Path} {
		if p == "" {
			continue
		}
		ref, err := url.Parse(p)
		if err != nil {
			return load.Request{}, fmt.Errorf("load path %q: %w", p, err)
		}
		if ref.Path != "" {
			u.Path = strings.TrimSuffix(u.Path, "/") + "/" + strings.TrimPrefix(ref.Path, "/")
		}
		if ref.RawQuery != "" {
			if u.RawQuery != "" {
				u.RawQuery += "&"
			}
			u.RawQuery += ref.RawQuery
		}
	}
	body := []byte(lr.Body)
	file := lr.BodyFile
	if in.Body != "" || in.BodyFile != "" {
		body, file = []byte(in.Body), in.BodyFile
	}
	if file != "" {
		b, ok := r.bodies[file]
		if !ok {
			var err error
			if b, err = scenario.ReadBody(file); err != nil {
				return load.Request{}, err
			}
		}
		body = b
	}
	h := http.Header{}
	for k, v := range lr.Headers {
		h.Set(k, v)
	}
	if len(body) > 0 && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	return load.Request{Method: lr.Method, URL: u.String(), Body: body, Header: h}, nil
}

func (r *run) plannedDuration(slots []slot) time.Duration {
	per := r.sc.Idle + r.sc.Warmup + r.sc.Cooldown
	var total time.Duration
	for _, s := range slots {
		total += per + time.Duration(len(s.load))*r.sc.Load.TotalLoadDuration()
	}
	return total
}

// step is one phase of a slot and the function that runs it.
type step struct {
	name string
	run  func(context.Context) ([]runstore.Stage, error)
}

// runSlot runs one target's turn: reset, idle, warmup, load phases,
// cooldown, and a reset again so that the target does not run warm during
// the others' turns.
func (r *run) runSlot(ctx context.Context, s slot, prog *progress) error {
	lt := s.t
	if err := lt.target.Reset(ctx); err != nil && ctx.Err() == nil {
		r.warn("target %s: reset before rep %d: %v", lt.spec.Name, s.rep, err)
	}
	steps := []step{{runstore.PhaseIdle, r.wait(r.sc.Idle)}}
	if r.sc.Warmup > 0 {
		steps = append(steps, step{runstore.PhaseWarmup, r.drive(lt, s.rep, runstore.PhaseWarmup, s.load[0].req, true)})
	}
	for _, lp := range s.load {
		steps = append(steps, step{lp.name, r.drive(lt, s.rep, lp.name, lp.req, false)})
	}
	steps = append(steps, step{runstore.PhaseCooldown, r.wait(r.sc.Cooldown)})

	for _, st := range steps {
		prog.phase(fmt.Sprintf("rep %d/%d %s %s", s.rep+1, r.sc.Repeat, lt.spec.Name, st.name))
		r.mark(fmt.Sprintf("%s/%s/%d start", lt.spec.Name, st.name, s.rep))
		ph := runstore.Phase{Target: lt.spec.Name, Name: st.name, Rep: s.rep, StartNs: clock.Now().UnixNano()}
		// The phase goes into run.json open (no end) as it starts, so
		// that a harness killed mid-phase leaves it on record; Load closes
		// it at the last row the files hold.
		var idx int
		if uerr := r.w.Update(func(m *runstore.Meta) { idx = len(m.Phases); m.Phases = append(m.Phases, ph) }); uerr != nil {
			return uerr
		}
		r.phaseStarted()
		r.opt.Observer.PhaseStarted(ph)
		stages, err := st.run(ctx)
		ph.EndNs = clock.Now().UnixNano()
		ph.Stages = stages
		ph.Interrupted = ctx.Err() != nil
		r.mark(fmt.Sprintf("%s/%s/%d end", lt.spec.Name, st.name, s.rep))
		verr := r.phaseEnded(idx, &ph)
		r.opt.Observer.Validity(r.w.Meta().Validity)
		if uerr := r.w.Update(func(m *runstore.Meta) { m.Phases[idx] = ph }); uerr != nil {
			return uerr
		}
		if err != nil {
			return err
		}
		if verr != nil {
			return verr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if err := lt.target.Reset(ctx); err != nil && ctx.Err() == nil {
		r.warn("target %s: reset after rep %d: %v", lt.spec.Name, s.rep, err)
	}
	return nil
}

func (r *run) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.logf("warning: %s", msg)
	r.w.Update(func(m *runstore.Meta) { m.Warnings = append(m.Warnings, msg) })
}

func (r *run) mark(label string) {
	for _, m := range r.markers {
		m.Mark(label)
	}
}

func (r *run) wait(d time.Duration) func(context.Context) ([]runstore.Stage, error) {
	return func(ctx context.Context) ([]runstore.Stage, error) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return nil, nil
	}
}

// drive runs the load of one phase. Warmup uses the first stage's rate (or
// the sequential loop) for the warmup duration.
func (r *run) drive(lt *liveTarget, rep int, phase string, req load.Request, warmup bool) func(context.Context) ([]runstore.Stage, error) {
	return func(ctx context.Context) ([]runstore.Stage, error) {
		opt := load.Options{
			Timeout: r.sc.Load.Timeout,
			Workers: r.sc.Load.Workers,
			OnHit: func(h load.Hit) {
				r.requests.Add(1)
				if h.Err != "" {
					r.errors.Add(1)
				}
				q := runstore.Request{
					Target: lt.spec.Name, Phase: phase, Rep: rep, Seq: h.Seq,
					StartNs: h.Start.UnixNano(), LatencyNs: int64(h.Latency), Status: h.Status,
					BytesIn: h.BytesIn, BytesOut: h.BytesOut, Cold: h.Cold, StartUpNs: int64(h.StartUp), Error: h.Err,
				}
				r.addRequest(q)
				r.opt.Observer.Request(q)
			},
		}
		var stages []runstore.Stage
		begin := clock.Now()
		if seq := r.sc.Load.Sequential; seq != nil {
			ls := load.Sequential{Requests: seq.Requests, Duration: seq.Duration, Pause: seq.Pause}
			if warmup {
				ls = load.Sequential{Duration: r.sc.Warmup, Pause: seq.Pause}
			}
			err := load.Closed(ctx, req, ls, opt)
			return []runstore.Stage{{StartNs: begin.UnixNano(), EndNs: clock.Now().UnixNano()}}, err
		}
		var ls []load.Stage
		at := begin.UnixNano()
		for _, st := range r.sc.Load.Stages {
			ls = append(ls, load.Stage{Rate: st.Rate, Duration: st.Duration})
			stages = append(stages, runstore.Stage{Rate: st.Rate, StartNs: at, EndNs: at + int64(st.Duration)})
			at += int64(st.Duration)
		}
		if warmup {
			ls = []load.Stage{{Rate: r.sc.Load.Stages[0].Rate, Duration: r.sc.Warmup}}
			stages = []runstore.Stage{{Rate: ls[0].Rate, StartNs: begin.UnixNano(), EndNs: begin.UnixNano() + int64(r.sc.Warmup)}}
		}
		err := load.Open(ctx, req, ls, opt)
		return stages, err
	}
}

// readBodies reads every body_file of sc, bounded (scenario.ReadBody).
func readBodies(sc *scenario.Scenario) (map[string][]byte, error) {
	files := []string{sc.Load.Request.BodyFile}
	for _, in := range sc.Load.Inputs {
		files = append(files, in.BodyFile)
	}
	for _, t := range sc.Targets {
		for _, in := range t.Inputs {
			files = append(files, in.BodyFile)
		}
	}
	bodies := map[string][]byte{}
	for _, f := range files {
		if _, done := bodies[f]; done || f == "" {
			continue
		}
		b, err := scenario.ReadBody(f)
		if err != nil {
			return nil, fmt.Errorf("%w: body_file: %w", ErrScenario, err)
		}
		bodies[f] = b
	}
	return bodies, nil
}

// newRunDir picks runs/<YYYYMMDD-HHMMSS>-<scenario>, with a suffix if two
// runs start in the same second.
func newRunDir(runsDir, name string, now time.Time) (string, string, error) {
	base := now.Format("20060102-150405") + "-" + name
	if err := os.MkdirAll(runsDir, 0o755); err != nil {
		return "", "", err
	}
	id := base
	for i := 2; ; i++ {
		if _, err := os.Stat(filepath.Join(runsDir, id)); errors.Is(err, os.ErrNotExist) {
			return id, filepath.Join(runsDir, id), nil
		}
		id = fmt.Sprintf("%s-%d", base, i)
	}
}

// lockedWriter lets several goroutines write whole lines to one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
