package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/academemes/harness/clock"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/validity"
	"github.com/academemes/harness/harness/internal/validity/machine"
)

// ErrInvalid means a strict run stopped because the machine was busy or a
// phase was invalid; run.json keeps what was recorded and says why.
var ErrInvalid = errors.New("invalid run (checks: strict)")

// watch is the validity machinery of one run: the system check before the
// load, other processes' CPU time through every phase, and the checks of
// each phase as it ends. A nil watch (checks: off) records nothing.
type watch struct {
	policy string
	th     validity.Thresholds
	track  *validity.Tracker
	mon    *machine.Monitor    // nil when /proc cannot be read
	cpu    *runstore.CPUWriter // cpu.csv, the attribution model's input; nil without mon
	// smu keeps each sample and its stamp together, so that cpu.csv's
	// times grow with its totals.
	smu   sync.Mutex
	close func()

	mu        sync.Mutex
	phaseFrom machine.Totals
	phaseT0   time.Time
}

// newWatch prepares the checks for policy; nil for validity.Off.
func newWatch(policy string, th *validity.Thresholds) *watch {
	if policy == validity.Off {
		return nil
	}
	w := &watch{policy: policy, th: validity.Default(), track: validity.NewTracker(), close: func() {}}
	if th != nil {
		w.th = *th
	}
	return w
}

func (r *run) addSample(s runstore.Sample) {
	r.w.AddSample(s)
	if r.watch != nil {
		r.watch.track.AddSample(s)
	}
}

func (r *run) addRequest(q runstore.Request) {
	r.w.AddRequest(q)
	if r.watch != nil {
		r.watch.track.AddRequest(q)
	}
}

// systemCheck runs once the targets are up, before the first phase: it
// looks at the machine for about a second, records what it found, and in
// strict mode refuses to go on when the machine is busy. It then starts
// watching other processes through the run.
func (r *run) systemCheck(ctx context.Context) error {
	wt := r.watch
	if wt == nil {
		return nil
	}
	runID := r.w.Meta().ID
	class := machine.Classifier{Self: os.Getpid()}
	cfg := machine.Config{ProcFS: r.env.ProcfsRoot, SysFS: r.env.SysfsRoot, Thresholds: wt.th, RunID: runID, Meter: r.meterProbe}
	for _, lt := range r.live {
		if lt.spec.Kind == "docker-node" || lt.spec.Kind == "openfaas" {
			class.Engine = true
		}
	}
	if eng, err := machine.ConnectEngine(ctx); err == nil {
		wt.close = func() { eng.Close() }
		cfg.Engine = eng
		if class.Engine {
			class.Container = machine.RunContainers(eng, runID)
		}
	}
	cfg.Classifier = class
	rep, err := machine.Check(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// No /proc to read: the checks of the data still run.
		r.warn("system check: %v; other processes' CPU is not watched in this run", err)
		return nil
	}
	probs := rep.Problems()
	r.w.Update(func(m *runstore.Meta) {
		m.Validity = &runstore.Validity{Valid: len(probs) == 0, Problems: append([]runstore.Problem{}, probs...)}
		m.Warnings = append(m.Warnings, rep.Warnings()...)
	})
	for _, it := range rep.Items {
		if it.Status != machine.OK {
			r.logf("system check: %s: %s: %s", it.Status, it.Name, it.Found)
		}
	}
	if busy := rep.Busy(); len(busy) > 0 && wt.policy == validity.Strict {
		var what []string
		for _, it := range busy {
			what = append(what, it.Name+": "+it.Found)
		}
		return fmt.Errorf("%w: the machine is busy before the load: %s (harness doctor says more; --checks warn runs anyway and marks the run)", ErrInvalid, strings.Join(what, "; "))
	}
	if s, err := machine.NewSampler(r.env.ProcfsRoot, class); err == nil {
		wt.mon = machine.NewMonitor(s)
		if cw, err := runstore.CreateCPU(r.w.Dir()); err == nil {
			wt.cpu = cw
		} else {
			r.warn("no %s, so no attribution by CPU share: %v", runstore.CPUFile, err)
		}
		wt.sample()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(wt.th.MonitorInterval)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					wt.sample()
				}
			}
		}()
		prev := wt.close
		wt.close = func() {
			close(stop)
			<-done
			if wt.cpu != nil {
				wt.cpu.Close()
			}
			prev()
		}
	}
	return nil
}

// sample samples processes now and appends each attribution group's CPU
// time to cpu.csv, stamped on the run's clock.
func (wt *watch) sample() (machine.Totals, error) {
	wt.smu.Lock()
	defer wt.smu.Unlock()
	tot, err := wt.mon.Sample()
	if wt.cpu != nil && err == nil {
		t := clock.Now().UnixNano()
		rows := make([]runstore.CPU, 0, len(tot.Groups))
		for _, g := range slices.Sorted(maps.Keys(tot.Groups)) {
			rows = append(rows, runstore.CPU{TNs: t, Group: g, CPUS: tot.Groups[g]})
		}
		wt.cpu.Add(rows...)
	}
	return tot, err
}

// meterProbe is the system check's look at the run's own meters, already
// running: what they delivered during the check's window.
func (r *run) meterProbe(ctx context.Context, window time.Duration) []machine.MeterFinding {
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(window):
	}
	a, b := t0.UnixNano(), time.Now().UnixNano()
	var out []machine.MeterFinding
	for _, m := range r.snapshot().Meters {
		f := machine.MeterFinding{Label: m.Label, MinW: math.NaN(), MaxW: math.NaN(), Model: validity.IsModel(m), CeilingW: validity.Ceiling(m, 0)}
		if f.CeilingW > 0 {
			f.CeilingWhy = "the meter's declared full scale"
		}
		first := map[int]float64{}
		for _, s := range r.watch.track.Samples(m.Name, a, b) {
			f.Samples++
			if !math.IsNaN(s.Watts) {
				f.MinW = minNaN(f.MinW, s.Watts)
				f.MaxW = -minNaN(-f.MaxW, -s.Watts)
				if f.CeilingW > 0 && s.Watts >= f.CeilingW*(1-r.watch.th.SaturationMargin) {
					f.AtCeiling++
				}
			}
			if !math.IsNaN(s.Joules) {
				if j, ok := first[s.Channel]; !ok {
					first[s.Channel] = s.Joules
				} else if j != s.Joules {
					f.JoulesMoved = true
				}
			}
		}
		out = append(out, f)
	}
	return out
}

func minNaN(a, b float64) float64 {
	if math.IsNaN(a) || b < a {
		return b
	}
	return a
}

// phaseStarted marks where other processes' CPU time of a phase begins.
func (r *run) phaseStarted() {
	wt := r.watch
	if wt == nil || wt.mon == nil {
		return
	}
	from, _ := wt.sample()
	wt.mu.Lock()
	wt.phaseFrom, wt.phaseT0 = from, time.Now()
	wt.mu.Unlock()
}

// phaseEnded records, in ph, other processes' CPU time over the phase and
// the phase's checks, and keeps the run's validity up to date. In strict
// mode an invalid phase stops the run.
func (r *run) phaseEnded(idx int, ph *runstore.Phase) error {
	wt := r.watch
	if wt == nil {
		return nil
	}
	r.awaitLagging(ph.EndNs)
	if wt.mon != nil {
		to, _ := wt.sample()
		wt.mu.Lock()
		ph.Foreign = wt.mon.Foreign(wt.phaseFrom, to, time.Since(wt.phaseT0).Seconds())
		wt.mu.Unlock()
	}
	meta := r.snapshot()
	meta.Phases[idx] = *ph
	ph.Validity = wt.track.Phase(&meta, idx, wt.th)
	meta.Phases[idx] = *ph
	runWide := validity.Combine(meta.Validity, meta.Phases, storedValidity(meta.Phases))
	r.w.Update(func(m *runstore.Meta) { m.Validity = runWide })
	if !ph.Validity.Valid && wt.policy == validity.Strict && !ph.Interrupted {
		return fmt.Errorf("%w: %s", ErrInvalid, problemList(ph.Validity.Problems))
	}
	return nil
}

// lagging is a meter whose samples arrive up to lag after they were read.
type lagging struct {
	name string
	lag  time.Duration
}

// awaitLagging waits, up to each lagging meter's lag, until it has
// delivered a sample from the phase's end on, so that the phase is not
// judged short of samples that are merely on their way.
func (r *run) awaitLagging(endNs int64) {
	for _, m := range r.lagging {
		deadline := time.Now().Add(m.lag)
		for len(r.watch.track.Samples(m.name, endNs, math.MaxInt64)) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// finishChecks judges every phase again once the meters have stopped (their
// reports, with gaps and the estimate's model, are in run.json by then) and
// records the run's validity. In strict mode an invalid run fails.
func (r *run) finishChecks() (*runstore.Validity, error) {
	wt := r.watch
	if wt == nil {
		return nil, nil
	}
	wt.close()
	meta := r.snapshot()
	if len(meta.Phases) == 0 && meta.Validity == nil {
		return nil, nil // nothing ran and nothing was found: nothing to judge
	}
	runWide, perPhase := wt.track.Run(&meta, wt.th)
	r.w.Update(func(m *runstore.Meta) {
		for i := range m.Phases {
			if v := perPhase[i]; v != nil && i < len(meta.Phases) {
				m.Phases[i].Validity = v
			}
		}
		m.Validity = runWide
	})
	if !runWide.Valid && wt.policy == validity.Strict {
		return runWide, fmt.Errorf("%w: %s", ErrInvalid, problemList(runWide.Problems))
	}
	return runWide, nil
}

// snapshot copies run.json as it stands, with its own phases and meters,
// so that the checks read them while targets and meters update the run.
func (r *run) snapshot() runstore.Meta {
	var out runstore.Meta
	r.w.Update(func(m *runstore.Meta) {
		out = *m
		out.Phases = slices.Clone(m.Phases)
		out.Meters = slices.Clone(m.Meters)
	})
	return out
}

func storedValidity(phases []runstore.Phase) map[int]*runstore.Validity {
	out := make(map[int]*runstore.Validity, len(phases))
	for i, p := range phases {
		out[i] = p.Validity
	}
	return out
}

func problemList(ps []runstore.Problem) string {
	var parts []string
	for i, p := range ps {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ps)-3))
			break
		}
		where := p.Phase
		if where == "" {
			where = "run"
		}
		parts = append(parts, where+": "+p.Message)
	}
	return strings.Join(parts, "; ")
}
