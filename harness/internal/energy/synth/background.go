package synth

import (
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/academemes/harness/harness/internal/runstore"
)

// Background is other work on the machine during a run, as a shared
// machine has it: not white noise but bursts, like a compiler's jobs,
// that keep some cores busy for seconds at a time and then stop. Their
// energy lands in every meter's figures (they measure the whole machine),
// and their CPU time is recorded per phase as the runner records other
// processes' (runstore.Phase.Foreign), so that the validity checks can be
// tested against runs whose truth is known.
type Background struct {
	// MeanGap is the mean quiet time between bursts (exponential).
	MeanGap time.Duration
	// MeanBurst is a burst's mean length and BurstCV its coefficient of
	// variation (log-normal: mostly short jobs, a few long ones).
	MeanBurst time.Duration
	BurstCV   float64
	// Cores is how many cores a burst keeps busy; WattsPerCore what each
	// busy core adds to the machine's power.
	Cores        float64
	WattsPerCore float64
	// Name is the busy process's name in the record ("cc1" when empty).
	Name string
}

// burst is one span [s, e) of background work.
type burst struct{ s, e int64 }

// bursts is a run's background work: its spans in time order with the
// energy of all spans before each, so that the energy up to any time is a
// search away.
type bursts struct {
	bg     Background
	spans  []burst
	priorJ []float64 // energy of spans[:i]
}

// burstSeed keeps the bursts' random stream apart from the run's own, so
// that a run with background differs from the same run without only by
// the bursts.
const burstSeed = 0xb6b6

// bursts lays out background work over [start, end) from seed; none when
// b is nil.
func (b *Background) bursts(seed uint64, start, end int64) bursts {
	if b == nil || b.MeanGap <= 0 || b.MeanBurst <= 0 {
		return bursts{}
	}
	bs := bursts{bg: *b}
	rng := rand.New(rand.NewPCG(seed, burstSeed))
	sig := math.Sqrt(math.Log(1 + b.BurstCV*b.BurstCV))
	t := start + int64(rng.ExpFloat64()*float64(b.MeanGap))
	var prior float64
	for t < end {
		d := int64(float64(b.MeanBurst) * math.Exp(sig*rng.NormFloat64()-sig*sig/2))
		bs.spans = append(bs.spans, burst{t, t + d})
		bs.priorJ = append(bs.priorJ, prior)
		prior += bs.watts() * float64(d) / 1e9
		t += d + int64(rng.ExpFloat64()*float64(b.MeanGap))
	}
	return bs
}

// watts is the power a burst adds.
func (bs bursts) watts() float64 { return bs.bg.Cores * bs.bg.WattsPerCore }

// cumJ is the background's energy from the start to x, in joules.
func (bs bursts) cumJ(x int64) float64 {
	i := sort.Search(len(bs.spans), func(i int) bool { return bs.spans[i].e > x }) // spans[:i] ended by x
	e := 0.0
	if i > 0 {
		e = bs.priorJ[i-1] + bs.watts()*float64(bs.spans[i-1].e-bs.spans[i-1].s)/1e9
	}
	if i < len(bs.spans) && bs.spans[i].s < x {
		e += bs.watts() * float64(x-bs.spans[i].s) / 1e9
	}
	return e
}

// totalJ is the background's energy over the whole run.
func (bs bursts) totalJ() float64 {
	if len(bs.spans) == 0 {
		return 0
	}
	return bs.cumJ(bs.spans[len(bs.spans)-1].e)
}

// overlapNs is how long the background was busy in [s, e).
func (bs bursts) overlapNs(s, e int64) int64 {
	var ns int64
	for _, b := range bs.spans {
		if lo, hi := max(b.s, s), min(b.e, e); hi > lo {
			ns += hi - lo
		}
	}
	return ns
}

// annotate records in each phase the background's CPU time as the runner
// records other processes' (on a machine of cores cores). It does nothing
// without background, so that runs made without it are unchanged.
func (bs bursts) annotate(phases []runstore.Phase, cores int) {
	if bs.bg.MeanGap <= 0 || bs.bg.MeanBurst <= 0 {
		return
	}
	name := bs.bg.Name
	if name == "" {
		name = "cc1"
	}
	for i := range phases {
		p := &phases[i]
		cpu := float64(bs.overlapNs(p.StartNs, p.EndNs)) / 1e9 * bs.bg.Cores
		share := 0.0
		if d := float64(p.EndNs-p.StartNs) / 1e9; d > 0 && cores > 0 {
			share = cpu / (float64(cores) * d)
		}
		p.Foreign = &runstore.ForeignCPU{CPUSeconds: cpu, Share: share}
		if cpu > 0 {
			p.Foreign.Top = []runstore.Process{{PID: 4242, Name: name, CPUSeconds: cpu, Share: share}}
		}
	}
}
