package energy

import (
	"fmt"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/targets"
)

// BenchmarkAnalyze analyses runs of n requests and about n meter samples,
// at three sizes, to show that time grows linearly (compare ns/request).
//
//	go test ./harness/internal/energy -run '^$' -bench Analyze -benchtime=1x -benchmem
func BenchmarkAnalyze(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		const rate = 5000.0
		load := time.Duration(float64(n) / rate * float64(time.Second))
		idle := 10 * time.Second
		total := (idle + load).Seconds() + 2 // the meter runs a second either side
		cfg := synth.Config{
			Seed: 1, Reps: 1, Idle: idle, Load: load, IdleW: 20,
			Targets: []synth.Target{{Name: "w", Kind: "wasm", Mode: targets.Cold, JPerRequest: 0.01, EnergyCV: 0.3, Rate: rate, LatencyMs: 2, LatencyCV: 0.5}},
			Meters:  []synth.Meter{{Name: "p", RateHz: float64(n) / total, Watts: true, NoiseW: 0.5}},
		}
		run, _ := synth.Generate(cfg)
		b.Run(fmt.Sprintf("requests=%d/samples=%d", len(run.Requests), len(run.Samples)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Analyze(run); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(run.Requests)), "ns/request")
		})
	}
}
