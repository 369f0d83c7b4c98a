package load

import (
	"fmt"
	"math"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// StagedPacer paces one attack through consecutive constant-rate stages.
// The expected number of hits by time t, H(t), is piecewise linear; hit k
// (counting from 0) is sent at the t where H(t) = k. One pacer over one
// attack keeps the arrival process continuous across stage boundaries.
type StagedPacer struct {
	stages []Stage
	starts []time.Duration // start of each stage
	before []float64       // expected hits before each stage
	total  time.Duration
}

var _ vegeta.Pacer = (*StagedPacer)(nil)

// NewStagedPacer checks and prepares the stages.
func NewStagedPacer(stages []Stage) (*StagedPacer, error) {
	if len(stages) == 0 {
		return nil, fmt.Errorf("load: no stages")
	}
	p := &StagedPacer{stages: stages}
	var hits float64
	for i, s := range stages {
		if s.Rate <= 0 || math.IsInf(s.Rate, 0) || math.IsNaN(s.Rate) || s.Duration <= 0 {
			return nil, fmt.Errorf("load: stage %d: rate %v for %v: both must be positive", i, s.Rate, s.Duration)
		}
		p.starts = append(p.starts, p.total)
		p.before = append(p.before, hits)
		hits += s.Rate * s.Duration.Seconds()
		p.total += s.Duration
	}
	return p, nil
}

// Duration is the length of all stages together.
func (p *StagedPacer) Duration() time.Duration { return p.total }

// Pace implements vegeta.Pacer.
func (p *StagedPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	at, ok := p.hitTime(float64(hits))
	if !ok {
		return 0, true
	}
	if at <= elapsed {
		return 0, false // behind: send now
	}
	return at - elapsed, false
}

// hitTime inverts H: when hit number k is due; false past the last stage.
func (p *StagedPacer) hitTime(k float64) (time.Duration, bool) {
	for i := len(p.stages) - 1; i >= 0; i-- {
		if k >= p.before[i] {
			s := p.stages[i]
			// Compare in float before converting: at a tiny rate the
			// offset overflows time.Duration (1/1e-300 s), and the
			// conversion's result is then negative, which sent every hit
			// at once.
			off := (k - p.before[i]) / s.Rate * float64(time.Second)
			if !(off < float64(s.Duration)) {
				return 0, false
			}
			return p.starts[i] + time.Duration(off), true
		}
	}
	return 0, false
}

// Rate implements vegeta.Pacer: the rate of the stage at elapsed.
func (p *StagedPacer) Rate(elapsed time.Duration) float64 {
	for i := len(p.stages) - 1; i >= 0; i-- {
		if elapsed >= p.starts[i] {
			if elapsed >= p.total {
				return 0
			}
			return p.stages[i].Rate
		}
	}
	return 0
}
