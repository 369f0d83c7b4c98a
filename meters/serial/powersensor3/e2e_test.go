package powersensor3

import (
	"testing"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/serial/emulate"
	"github.com/academemes/harness/meters/serial/serialtest"
)

func TestEndToEndConstantTrace(t *testing.T) {
	want := []float64{50, 30, 20, 10}
	link := serialtest.StartEmulator(t, &emulate.PowerSensor3{Trace: emulate.Constant(want)}, emulate.Faults{})
	m, err := New("powersensor3:"+link, link, Options{Rate: 100}, meters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.Info().Channels); got != 4 {
		t.Fatalf("channels = %d, want 4", got)
	}
	r := serialtest.ConstantTrace(t, m, want, 3*time.Second)
	if r.Counters["frames"] < 20000 {
		t.Errorf("frames = %d in 3 s, want about 60,000", r.Counters["frames"])
	}
}
