package clock

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// skewed is a remote clock: remote = local + offset + (local-t0)*drift.
type skewed struct {
	t0     int64 // local Unix ns where the drift term is zero
	offset int64
	drift  float64 // 200e-6: runs 200 ppm fast
}

func (c skewed) remote(local int64) int64 {
	return local + c.offset + int64(math.Round(float64(local-c.t0)*c.drift))
}

// local inverts remote.
func (c skewed) local(remote int64) float64 {
	return float64(c.t0) + (float64(remote-c.t0-c.offset))/(1+c.drift)
}

// delays draws the one-way delays of an exchange.
type delays func(r *rand.Rand) (out, back time.Duration)

func jitter(lo, hi time.Duration) delays {
	return func(r *rand.Rand) (time.Duration, time.Duration) {
		d := func() time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo))) }
		return d(), d()
	}
}

// TestSyncRecoversOffsetAndDrift runs exchanges before, during (every 2 s)
// and after a 10 s recording against a remote clock with a known offset and
// drift, maps a sample every 10 ms as they would come, and checks that
// the offset, the drift and every mapped time are within the bound the
// fit records.
func TestSyncRecoversOffsetAndDrift(t *testing.T) {
	tests := []struct {
		name      string
		clock     skewed
		delays    delays
		maxBound  time.Duration // the bound must also be useful
		burstSize int
	}{
		{"1.7 s ahead, 200 ppm fast, loopback jitter", skewed{offset: 1700 * int64(time.Millisecond), drift: 200e-6}, jitter(20*time.Microsecond, 200*time.Microsecond), 500 * time.Microsecond, 4},
		{"behind and slow", skewed{offset: -42 * int64(time.Second), drift: -150e-6}, jitter(50*time.Microsecond, 300*time.Microsecond), 500 * time.Microsecond, 4},
		{"asymmetric: the way out ten times longer", skewed{offset: 3 * int64(time.Millisecond), drift: 80e-6}, func(r *rand.Rand) (time.Duration, time.Duration) {
			d := 100*time.Microsecond + time.Duration(r.Int64N(int64(50*time.Microsecond)))
			return 10 * d, d
		}, 2 * time.Millisecond, 4},
		{"a LAN with stragglers", skewed{offset: 5 * int64(time.Millisecond), drift: 30e-6}, func(r *rand.Rand) (time.Duration, time.Duration) {
			out, back := jitter(200*time.Microsecond, time.Millisecond)(r)
			if r.IntN(3) == 0 {
				out += 40 * time.Millisecond // a retransmission
			}
			return out, back
		}, 2 * time.Millisecond, 5},
		{"one exchange a burst", skewed{offset: 900 * int64(time.Millisecond), drift: 200e-6}, jitter(20*time.Microsecond, 200*time.Microsecond), time.Millisecond, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			t0 := time.Unix(1764160000, 0)
			tt.clock.t0 = t0.UnixNano()
			now := t0
			burst := func(n int) []Exchange {
				var out []Exchange
				for range n {
					dOut, dBack := tt.delays(rng)
					sent := now
					arr := sent.Add(dOut)
					rep := arr.Add(5 * time.Microsecond)
					ret := rep.Add(dBack)
					out = append(out, Exchange{Sent: sent, Received: tt.clock.remote(arr.UnixNano()), Replied: tt.clock.remote(rep.UnixNano()), Returned: ret})
					now = ret.Add(time.Millisecond)
				}
				return out
			}
			var s Sync
			bursts := 1
			if !s.Add(burst(2 * tt.burstSize)...) {
				t.Fatal("first burst not kept")
			}
			type mapped struct {
				got  time.Time
				want float64
			}
			var maps []mapped
			next := now.Add(2 * time.Second)
			end := now.Add(10 * time.Second)
			for now.Before(end) {
				now = now.Add(10 * time.Millisecond)
				r := tt.clock.remote(now.UnixNano())
				maps = append(maps, mapped{s.Map(r), float64(now.UnixNano())})
				if now.After(next) {
					s.Add(burst(tt.burstSize)...)
					bursts++
					next = now.Add(2 * time.Second)
				}
			}
			now = now.Add(50 * time.Millisecond)
			s.Add(burst(2 * tt.burstSize)...)
			bursts++
			f := s.Fit()

			trueOffset := tt.clock.local(f.AtNs) - float64(f.AtNs)
			trueDrift := (1/(1+tt.clock.drift) - 1) * 1e6
			t.Logf("offset %.0f ns (true %.0f), drift %.3f ppm (true %.3f ± %.3f), bound %.0f ns over %d points, rtt min %v median %v",
				f.OffsetNs, trueOffset, f.DriftPPM, trueDrift, f.DriftBoundPPM, f.BoundNs, f.Points, f.RoundTripMin, f.RoundTripMedian)
			if d := math.Abs(f.OffsetNs - trueOffset); d > f.BoundNs {
				t.Errorf("offset %.0f ns is %.0f ns from the true %.0f ns, beyond the bound %.0f ns", f.OffsetNs, d, trueOffset, f.BoundNs)
			}
			if d := math.Abs(f.DriftPPM - trueDrift); d > f.DriftBoundPPM {
				t.Errorf("drift %.3f ppm is %.3f ppm from the true %.3f ppm, beyond the bound %.3f ppm", f.DriftPPM, d, trueDrift, f.DriftBoundPPM)
			}
			worst := 0.0
			for _, m := range maps {
				worst = math.Max(worst, math.Abs(float64(m.got.UnixNano())-m.want))
			}
			if worst > f.BoundNs {
				t.Errorf("a mapped time is %.0f ns off, beyond the bound %.0f ns", worst, f.BoundNs)
			}
			if f.BoundNs > float64(tt.maxBound) {
				t.Errorf("bound %.0f ns is wider than %v: the fit is not using its best exchanges", f.BoundNs, tt.maxBound)
			}
			if f.Points != bursts {
				t.Errorf("kept %d exchanges, want one per burst: %d", f.Points, bursts)
			}
		})
	}
}

// TestSyncBoundGrowsBeyondTheExchanges: a time mapped after the last
// exchange is extrapolated, and the bound says so.
func TestSyncBoundGrowsBeyondTheExchanges(t *testing.T) {
	c := skewed{t0: time.Unix(1764160000, 0).UnixNano(), offset: int64(time.Second), drift: 100e-6}
	ex := func(at time.Time, rtt time.Duration) Exchange {
		arr := at.Add(rtt / 2)
		return Exchange{Sent: at, Received: c.remote(arr.UnixNano()), Replied: c.remote(arr.UnixNano()), Returned: at.Add(rtt)}
	}
	t0 := time.Unix(1764160000, 0)
	var s Sync
	s.Add(ex(t0, 100*time.Microsecond))
	one := s.Fit()
	if one.BoundNs != 50_000 || one.DriftBoundPPM != MaxDriftPPM || one.DriftPPM != 0 {
		t.Errorf("one exchange: fit %+v, want bound 50 µs (half the round trip), drift 0 ± %g ppm", one, MaxDriftPPM)
	}
	// Mapped 10 s later with only that exchange: the assumed drift limit
	// applies, 500 ppm of 10 s is 5 ms.
	far := c.remote(t0.Add(10 * time.Second).UnixNano())
	got := s.Map(far)
	f := s.Fit()
	if err := math.Abs(float64(got.UnixNano() - t0.Add(10*time.Second).UnixNano())); err > f.BoundNs {
		t.Errorf("extrapolated time %.0f ns off, bound %.0f ns", err, f.BoundNs)
	}
	if f.BoundNs < 4.9e6 || f.BoundNs > 5.2e6 {
		t.Errorf("extrapolated 10 s from one exchange: bound %.0f ns, want about 5 ms", f.BoundNs)
	}
}

// TestSyncRejectsInconsistentExchanges: a burst whose every exchange has
// time running backwards keeps nothing.
func TestSyncRejectsInconsistentExchanges(t *testing.T) {
	t0 := time.Unix(1764160000, 0)
	tests := []struct {
		name string
		ex   Exchange
	}{
		{"answer before question", Exchange{Sent: t0, Received: 10, Replied: 20, Returned: t0.Add(-time.Millisecond)}},
		{"remote replied before it received", Exchange{Sent: t0, Received: 20, Replied: 10, Returned: t0.Add(time.Millisecond)}},
		{"remote took longer than the round trip", Exchange{Sent: t0, Received: 0, Replied: int64(2 * time.Millisecond), Returned: t0.Add(time.Millisecond)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sync
			if s.Add(tt.ex) || s.Ready() {
				t.Errorf("kept %+v", tt.ex)
			}
		})
	}
}
