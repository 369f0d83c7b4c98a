package validity

import (
	"sync"

	"github.com/academemes/harness/harness/internal/runstore"
)

// Tracker judges phases while a run goes: the runner hands it every
// request and sample it writes, and asks for a phase's validity as the
// phase ends. It keeps what the checks need in memory, indexed so that
// judging a phase reads only that phase's rows. Safe for concurrent use.
type Tracker struct {
	mu  sync.Mutex
	idx *index
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{idx: newIndex()} }

// AddRequest records one request.
func (t *Tracker) AddRequest(r runstore.Request) {
	t.mu.Lock()
	t.idx.addRequest(r)
	t.mu.Unlock()
}

// AddSample records one sample.
func (t *Tracker) AddSample(s runstore.Sample) {
	t.mu.Lock()
	t.idx.addSample(s)
	t.mu.Unlock()
}

// Phase judges phase i of meta with what has been recorded so far, as
// Evaluate would judge it from the run directory.
func (t *Tracker) Phase(meta *runstore.Meta, i int, th Thresholds) *runstore.Validity {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.idx.phase(meta, i, th)
}

// Run judges every phase of meta and the run as a whole, as Evaluate does.
func (t *Tracker) Run(meta *runstore.Meta, th Thresholds) (runWide *runstore.Validity, perPhase map[int]*runstore.Validity) {
	t.mu.Lock()
	defer t.mu.Unlock()
	perPhase = make(map[int]*runstore.Validity, len(meta.Phases))
	for i := range meta.Phases {
		perPhase[i] = t.idx.phase(meta, i, th)
	}
	return Combine(meta.Validity, meta.Phases, perPhase), perPhase
}

// Samples returns copies of a meter's samples, every channel, in [a, b).
func (t *Tracker) Samples(meter string, a, b int64) []runstore.Sample {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []runstore.Sample
	for k, ss := range t.idx.chans {
		if k.meter != meter {
			continue
		}
		lo, hi := window(ss, a, b)
		out = append(out, ss[lo:hi]...)
	}
	return out
}
