package machine

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/estimate"
)

// OpenProbe is the MeterProbe of `harness doctor`: it opens each meter
// spec, runs it for the window and reports what it read.
func OpenProbe(specs []string, env meters.Env, margin float64) MeterProbe {
	return func(ctx context.Context, window time.Duration) []MeterFinding {
		out := make([]MeterFinding, len(specs))
		var wg sync.WaitGroup
		for i, spec := range specs {
			wg.Go(func() { out[i] = probeOne(ctx, spec, env, window, margin) })
		}
		wg.Wait()
		return out
	}
}

func probeOne(ctx context.Context, spec string, env meters.Env, window time.Duration, margin float64) MeterFinding {
	f := MeterFinding{Label: spec, MinW: math.NaN(), MaxW: math.NaN()}
	m, _, err := meters.Open(spec, env)
	if err != nil {
		f.Err = err
		return f
	}
	info := m.Info()
	f.Label = info.Label()
	f.Model = info.Kind == meters.Model
	f.CeilingW, f.CeilingWhy = meterCeiling(m, info)
	rctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	var mu sync.Mutex
	first := map[int]float64{}
	err = m.Run(rctx, func(s meters.Sample) {
		mu.Lock()
		defer mu.Unlock()
		f.Samples++
		if !math.IsNaN(s.Watts) {
			if math.IsNaN(f.MinW) || s.Watts < f.MinW {
				f.MinW = s.Watts
			}
			if math.IsNaN(f.MaxW) || s.Watts > f.MaxW {
				f.MaxW = s.Watts
			}
			if f.CeilingW > 0 && s.Watts >= f.CeilingW*(1-margin) {
				f.AtCeiling++
			}
		}
		if !math.IsNaN(s.Joules) {
			if j, ok := first[s.Channel]; !ok {
				first[s.Channel] = s.Joules
			} else if s.Joules != j {
				f.JoulesMoved = true
			}
		}
	})
	if err != nil && ctx.Err() == nil {
		f.Err = err
	}
	return f
}

// meterCeiling is a meter's ceiling: its channels' declared full scale,
// or, for the estimate, its model at full load.
func meterCeiling(m meters.Meter, info meters.Info) (float64, string) {
	// The estimate says how its ceiling follows from the model, which is
	// what a user must change (idle=, max_per_core=) to lift it.
	if e, ok := m.(*estimate.Meter); ok {
		md := e.Model()
		return float64(md.Max()), fmt.Sprintf("the model with every CPU busy: %v idle + %v x %d CPUs", md.Idle, md.MaxPerCore, md.Cores)
	}
	for _, c := range info.Channels {
		if c.FullScaleW > 0 {
			what := "the sensor's full scale"
			if info.Kind == meters.Model {
				what = "the model's maximum"
			}
			return c.FullScaleW, what
		}
	}
	return 0, ""
}
