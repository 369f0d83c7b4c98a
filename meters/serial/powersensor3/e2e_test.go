package powersensor3

import (
	"math"
	"strings"
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
	// The emulator's pairs: MLX20 (62.5 mV/A around 1.65 V, ±26.4 A) and
	// a 0.0877 divider (37.6 V): 993 W at full scale, 2.91 W per step.
	info := m.Info()
	for _, ch := range info.Channels {
		if math.Abs(ch.FullScaleW-26.4*3.3/0.0877) > 0.01 {
			t.Errorf("%s: full scale %.2f W, want %.2f W", ch.Name, ch.FullScaleW, 26.4*3.3/0.0877)
		}
	}
	if p := info.Precision; math.Abs(p.PowerStepW-2.913) > 0.001 || p.Source == "" || !strings.Contains(info.Description, p.String()) {
		t.Errorf("precision %+v (description %q); want a 2.913 W step with its source, in the description", p, info.Description)
	}
	r := serialtest.ConstantTrace(t, m, want, 3*time.Second)
	if r.Counters["frames"] < 20000 {
		t.Errorf("frames = %d in 3 s, want about 60,000", r.Counters["frames"])
	}
}
