package runner

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/academemes/harness/clock"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/validity"
	"github.com/academemes/harness/meters"
)

// laggyMeter reads every 10 ms but delivers its readings in batches every
// 250 ms, as an agent's come over the network.
type laggyMeter struct{}

func (laggyMeter) Info() meters.Info {
	return meters.Info{Name: "laggy", Driver: "laggy", Kind: meters.Measured, Channels: []meters.Channel{{Name: "all", InTotal: true}}}
}
func (laggyMeter) Lag() time.Duration { return 600 * time.Millisecond }
func (laggyMeter) Run(ctx context.Context, emit func(meters.Sample)) error {
	read := time.NewTicker(10 * time.Millisecond)
	defer read.Stop()
	send := time.NewTicker(250 * time.Millisecond)
	defer send.Stop()
	var held []meters.Sample
	for {
		select {
		case <-ctx.Done():
			for _, s := range held {
				emit(s)
			}
			return nil
		case <-read.C:
			held = append(held, meters.Sample{T: clock.Now(), Watts: 10, Joules: meters.NaN})
		case <-send.C:
			for _, s := range held {
				emit(s)
			}
			held = held[:0]
		}
	}
}

func init() {
	meters.Register(meters.Driver{Name: "laggy", Open: func(meters.Spec, meters.Env) (meters.Meter, error) { return laggyMeter{}, nil }})
}

// TestStrictWaitsForLaggingMeters: a strict run judges each phase as it
// ends; a meter whose last samples are still on their way must not make
// the phase look short of samples and stop the run.
func TestStrictWaitsForLaggingMeters(t *testing.T) {
	sc := parse(t, scenarioYAML, "meters=[laggy]", "checks=strict", "repeat=1", "idle=500ms", "warmup=0s", "cooldown=300ms",
		"load.stages[0].duration=500ms", "targets=[{name: a, kind: fake, function: memes}]")
	th := validity.Default()
	th.ForeignCPUShare, th.LoadPerCore = 1e9, 1e9 // this test is about the meter, not a busy machine
	// A loaded machine delays the test meter's 10 ms ticks by tens of
	// milliseconds; a batch still in transit at the phase's end holds up
	// to 250 ms, which this still counts as a gap.
	th.GapFactor = 10
	// And a starved goroutine can start a phase's samples late: a stall of
	// a fifth of a short phase is the machine, not the lag under test.
	// Without the wait for lagging meters, a batch still in transit
	// leaves up to half the phase without samples.
	th.GapShare = 0.35
	res, err := Run(context.Background(), sc, Options{RunsDir: t.TempDir(), Log: io.Discard, Thresholds: &th})
	if err != nil {
		t.Fatalf("strict run failed: %v", err)
	}
	if res.Status != runstore.StatusComplete || res.Validity == nil || !res.Validity.Valid {
		t.Errorf("result %+v, validity %+v", res, res.Validity)
	}
}
