package modbus

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/modbus/emulate"
	"github.com/academemes/harness/meters/modbus/regmap"
)

func spec(t *testing.T, s string) meters.Spec {
	t.Helper()
	sp, err := meters.ParseSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		check   func(Config) bool
		wantErr string
	}{
		{"defaults", "modbus:pdu.lab", func(c Config) bool {
			return c.Addr == "pdu.lab:502" && c.Unit == 1 && c.Map.Name == "gude-1105" && c.Kind == regmap.Line &&
				c.Index == 0 && c.Rate == DefaultRate && c.Energy == EnergyFromPower
		}, ""},
		{"port given", "modbus:192.0.2.7:1502", func(c Config) bool { return c.Addr == "192.0.2.7:1502" }, ""},
		{"ipv6 without port", "modbus:[2001:db8::7]", func(c Config) bool { return c.Addr == "[2001:db8::7]:502" }, ""},
		{"ipv6 with port", "modbus:[::1]:1502", func(c Config) bool { return c.Addr == "[::1]:1502" }, ""},
		{"the spec example", "modbus:192.0.2.7:502?unit=1&outlet=2&map=gude-1105&rate=2", func(c Config) bool {
			return c.Kind == regmap.Outlet && c.Index == 1 && c.Rate == 2
		}, ""},
		{"line, phase, counter", "modbus:h?line=2&phase=3&energy=counter&rate=5Hz", func(c Config) bool {
			return c.Kind == regmap.Line && c.Index == 1 && c.Phase == 2 && c.Energy == EnergyFromCounter && c.Rate == 5 && c.Block() == "line 2 phase 3"
		}, ""},
		{"timeouts", "modbus:h?timeout=250ms&giveup=10s", func(c Config) bool { return c.Timeout == 250*time.Millisecond && c.GiveUp == 10*time.Second }, ""},
		{"no host", "modbus:", nil, "no host"},
		{"bad port", "modbus:h:99999", nil, "not a TCP port"},
		{"unknown option", "modbus:h?outlets=2", nil, "unknown option"},
		{"unknown map", "modbus:h?map=apc", nil, "map=apc is unknown"},
		{"outlet and line", "modbus:h?outlet=1&line=1", nil, "exclude each other"},
		{"outlet zero", "modbus:h?outlet=0", nil, "outlet=0"},
		{"rate too high", "modbus:h?rate=1000", nil, "rate=1000"},
		{"bad energy", "modbus:h?energy=both", nil, "energy=both"},
		{"every problem at once", "modbus:h:0?rate=-1&unit=300", nil, "unit=300"},
		{"ipv6 without brackets", "modbus:::1", func(c Config) bool { return c.Addr == "[::1]:502" }, ""},
		{"a name ending in a dot", "modbus:pdu.lab.?unit=2", func(c Config) bool { return c.Addr == "pdu.lab.:502" }, ""},
		// Hosts that are neither an address nor a name were accepted and
		// failed only when the run dialled them.
		{"unclosed bracket", "modbus:[::1", nil, `host "[::1": an IPv6 address goes in brackets`},
		{"closing bracket only", "modbus:::1]", nil, "goes in brackets"},
		{"ipv4 in brackets", "modbus:[192.0.2.7]", nil, "only an IPv6 address goes in brackets"},
		{"ipv4 in brackets with a port", "modbus:[192.0.2.7]:502", nil, "only an IPv6 address goes in brackets"},
		{"not an address in brackets", "modbus:[pdu]:502", nil, `host "pdu" is not an IPv6 address`},
		{"spaces", "modbus:pdu lab", nil, "neither an IP address nor a DNS name"},
		{"a path", "modbus:../../etc/passwd", nil, "neither an IP address nor a DNS name"},
		{"empty label", "modbus:pdu..lab:502", nil, "neither an IP address nor a DNS name"},
		{"timeout too long", "modbus:h?timeout=1000h", nil, "timeout=1000h: want a duration from 1ms to 1m0s"},
		{"give-up too long", "modbus:h?giveup=9999h", nil, "giveup=9999h: want a duration from 1ms to 24h0m0s"},
		{"timeout below a millisecond", "modbus:h?timeout=1ns", nil, "timeout=1ns"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(spec(t, tc.spec))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, meters.ErrSpec) {
					t.Fatalf("err = %v, want ErrSpec containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	d, ok := meters.Lookup(DriverName)
	if !ok || d.AutoRank != 0 || d.Detect != nil {
		t.Fatalf("driver %q: found %v, AutoRank %d, Detect set %v; want registered, out of auto", DriverName, ok, d.AutoRank, d.Detect != nil)
	}
	found := false
	for _, e := range meters.Emulators() {
		found = found || e.Name == "gude-1105"
	}
	if !found {
		t.Error("emulator gude-1105 not registered")
	}
}

// scaledClock runs speed times faster than real time, from now.
func scaledClock(speed float64) func() time.Time {
	t0 := time.Now()
	return func() time.Time { return t0.Add(time.Duration(float64(time.Since(t0)) * speed)) }
}

// record runs m until stop says so, collecting its samples.
func record(t *testing.T, m *Meter, stop func(samples []meters.Sample) bool) ([]meters.Sample, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []meters.Sample
	err := m.Run(ctx, func(s meters.Sample) {
		got = append(got, s)
		if stop(got) {
			cancel()
		}
	})
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("the test's safety deadline passed with %d samples", len(got))
	}
	return got, err
}

func channel(s []meters.Sample, ch int) []meters.Sample {
	var out []meters.Sample
	for _, x := range s {
		if x.Channel == ch {
			out = append(out, x)
		}
	}
	return out
}

func count(ch int, n int) func([]meters.Sample) bool {
	return func(s []meters.Sample) bool { return len(channel(s, ch)) >= n }
}

// A 40 W trace served by the emulator and recorded by the meter reads 40 W
// within 0.5%, and the energy counter agrees with the integrated power.
// Emulator and meter share a clock running 3600 times faster than real
// time, so that the 1 Wh counter steps many times in a short test.
func TestRecord40WTrace(t *testing.T) {
	clk := scaledClock(3600)
	tr, err := emulate.ReadTrace(strings.NewReader("t_s,watts\n0,40\n60,40\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := emulate.Start("127.0.0.1:0", emulate.Config{Trace: tr, Clock: clk, EnergyStartWh: 52345, PowerFactor: 0.95, Voltage: 229})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m, err := Open(context.Background(), spec(t, "modbus:"+srv.Addr()+"?rate=100"), meters.Env{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	got, err := record(t, m, count(0, 60))
	if err != nil {
		t.Fatal(err)
	}
	power, counter := channel(got, 0), channel(got, 1)
	var sum, integ float64
	for i, s := range power {
		sum += s.Watts
		if !math.IsNaN(s.Joules) {
			t.Fatalf("sample %d: in-total channel has Joules %v with energy=power", i, s.Joules)
		}
		if i > 0 {
			if !s.T.After(power[i-1].T) {
				t.Fatalf("sample %d not after the one before", i)
			}
			integ += (s.Watts + power[i-1].Watts) / 2 * s.T.Sub(power[i-1].T).Seconds()
		}
	}
	mean := sum / float64(len(power))
	t.Logf("mean %.4f W over %d samples; counter %.0f J, integrated power %.0f J over %v (clock x3600)",
		mean, len(power), counter[len(counter)-1].Joules, integ, power[len(power)-1].T.Sub(power[0].T))
	if math.Abs(mean-40)/40 > 0.005 {
		t.Errorf("mean power %.3f W, want 40 W within 0.5%%", mean)
	}
	if counter[0].Joules != 0 {
		t.Errorf("counter channel starts at %v J, want 0 (relative to the first reading)", counter[0].Joules)
	}
	cJ := counter[len(counter)-1].Joules
	// The counter shows whole Wh: it may trail the true energy by up to
	// one step at each end.
	if math.Abs(cJ-integ) > 2*3600 {
		t.Errorf("counter %.0f J vs integrated power %.0f J: differ by more than two 1 Wh steps", cJ, integ)
	}
	if integ < 20*3600 {
		t.Errorf("only %.0f J integrated; the scaled clock should give tens of Wh", integ)
	}
	rep := m.Report()
	if rep.Details["energy_source"] != EnergyFromPower || !strings.Contains(rep.Details["energy_source_why"].(string), "3600 J") {
		t.Errorf("details say energy_source %v: %v", rep.Details["energy_source"], rep.Details["energy_source_why"])
	}
	if v := rep.Details["voltage_v"].(map[string]any)["mean"].(float64); v != 229 {
		t.Errorf("voltage mean %v, want 229", v)
	}
	if pf := rep.Details["power_factor"].(map[string]any)["mean"].(float64); math.Abs(pf-0.95) > 1e-9 {
		t.Errorf("power factor mean %v, want 0.95", pf)
	}
	if a := rep.Details["current_a"].(map[string]any)["mean"].(float64); math.Abs(a-0.184) > 0.0015 {
		t.Errorf("current mean %v A, want 40/(229*0.95) = 0.184 A", a)
	}
	if len(rep.Gaps) != 0 || len(rep.Warnings) != 0 {
		t.Errorf("gaps %v warnings %v, want none", rep.Gaps, rep.Warnings)
	}
	info := m.Info()
	if len(info.Channels) != 2 || !info.Channels[0].InTotal || info.Channels[1].InTotal {
		t.Errorf("channels %+v: want power in the total, counter not", info.Channels)
	}
}

func TestEnergyFromCounter(t *testing.T) {
	clk := scaledClock(3600)
	srv, err := emulate.Start("127.0.0.1:0", emulate.Config{Trace: emulate.Constant(100), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m, err := Open(context.Background(), spec(t, "modbus:"+srv.Addr()+"?rate=50&energy=counter&outlet=1"), meters.Env{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	got, err := record(t, m, count(0, 20))
	if err != nil {
		t.Fatal(err)
	}
	p, c := channel(got, 0), channel(got, 1)
	for i := range p {
		if p[i].Joules != c[i].Joules || math.Mod(p[i].Joules, 3600) != 0 {
			t.Fatalf("sample %d: in-total Joules %v, counter %v: want the counter's whole Wh", i, p[i].Joules, c[i].Joules)
		}
	}
	if p[len(p)-1].Joules <= 0 {
		t.Error("counter never moved")
	}
}

// The sample is stamped at the midpoint of request and response.
func TestMidpointStamp(t *testing.T) {
	srv, err := emulate.Start("127.0.0.1:0", emulate.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	base, calls := time.Unix(1000, 0), 0
	clk := func() time.Time { // every reading of the clock is 10 ms later
		mu.Lock()
		defer mu.Unlock()
		calls++
		return base.Add(time.Duration(calls) * 10 * time.Millisecond)
	}
	m, err := Open(context.Background(), spec(t, "modbus:"+srv.Addr()), meters.Env{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	before := calls
	_, mid, err := m.poll()
	if err != nil {
		t.Fatal(err)
	}
	want := base.Add(time.Duration(before+1)*10*time.Millisecond + 5*time.Millisecond)
	if !mid.Equal(want) {
		t.Errorf("stamp %v, want %v (halfway between the two clock readings)", mid.Sub(base), want.Sub(base))
	}
}

// The driver's request and the decoding of a hand-made response, byte for
// byte, against a fake device on a socket.
func TestWireTranscript(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Read input registers (4) at 0x3a00, 12 registers, unit 7; MBAP
	// transaction 1 (Open's probe) then 2, protocol 0, length 6.
	const pdu = "07" + "04" + "3a00" + "000c"
	const answer = "07" + "04" + "18" +
		"0001e240" + // energy 123456 Wh
		"00000028" + // power 40 W
		"000000e6" + // 230 V
		"000000ae" + // 174 mA
		"00001388" + // 50.00 Hz
		"000003e8" // power factor 1.000
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		for txn := 1; txn <= 2; txn++ {
			wantReq, _ := hex.DecodeString(fmt.Sprintf("%04x00000006", txn) + pdu)
			resp, _ := hex.DecodeString(fmt.Sprintf("%04x0000001b", txn) + answer)
			req := make([]byte, len(wantReq))
			if _, err := io.ReadFull(c, req); err != nil {
				errc <- err
				return
			}
			if !bytes.Equal(req, wantReq) {
				errc <- errors.New("request " + hex.EncodeToString(req) + ", want " + hex.EncodeToString(wantReq))
				return
			}
			if _, err := c.Write(resp); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	m, err := Open(context.Background(), spec(t, "modbus:"+ln.Addr().String()+"?unit=7&outlet=1"), meters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rd, _, err := m.poll()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	want := regmap.Reading{regmap.ActiveEnergy: 123456, regmap.ActivePower: 40, regmap.Voltage: 230,
		regmap.Current: 0.174, regmap.Frequency: 50, regmap.PowerFactor: 1}
	for f, w := range want {
		if math.Abs(rd[f]-w) > 1e-9 {
			t.Errorf("%s = %v, want %v", f, rd[f], w)
		}
	}
}

// A connection lost mid-run is reopened; the span without samples is a gap
// in the report, and no sample falls inside it.
func TestConnectionLossAndRecovery(t *testing.T) {
	const dropFor = 150 * time.Millisecond
	srv, err := emulate.Start("127.0.0.1:0", emulate.Config{DropEvery: 15, DropFor: dropFor})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var log bytes.Buffer
	m, err := Open(context.Background(), spec(t, "modbus:"+srv.Addr()+"?rate=100"), meters.Env{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	got, err := record(t, m, func(s []meters.Sample) bool { return len(m.Report().Gaps) >= 2 && len(channel(s, 0)) >= 40 })
	if err != nil {
		t.Fatal(err)
	}
	rep := m.Report()
	if rep.Counters["reconnects"] < 2 || rep.Counters["connection_lost"] < 2 {
		t.Errorf("counters %v: want at least two losses and reconnects", rep.Counters)
	}
	power := channel(got, 0)
	for _, g := range rep.Gaps {
		t.Logf("gap %v: %s", g.End.Sub(g.Start).Round(time.Millisecond), g.Reason)
		if g.End.Sub(g.Start) < dropFor {
			t.Errorf("gap %v long, but the device refused connections for %v", g.End.Sub(g.Start), dropFor)
		}
		if !strings.Contains(g.Reason, "modbus "+srv.Addr()) || !strings.Contains(g.Reason, "recovered") {
			t.Errorf("gap reason %q: want the address and the recovery", g.Reason)
		}
		for _, s := range power {
			if s.T.After(g.Start) && s.T.Before(g.End) {
				t.Errorf("sample at %v inside gap [%v, %v]", s.T, g.Start, g.End)
			}
		}
	}
	for i := 1; i < len(power); i++ {
		if !power[i].T.After(power[i-1].T) {
			t.Fatalf("sample %d not after the one before", i)
		}
	}
	if !strings.Contains(log.String(), "retrying") {
		t.Errorf("log %q: want a word about the retry", log.String())
	}
}

func TestExceptions(t *testing.T) {
	tests := []struct {
		name        string
		exc         error
		spec        string
		want        string
		unavailable bool
	}{
		{"no such outlet", nil, "?outlet=5", "exception 2 (illegal data address) to a read of input registers 0x3e80-0x3e8b (outlet 5", false},
		{"exception 2 on a served block", mb.ErrIllegalDataAddress, "", "illegal data address", false},
		{"not a PDU", mb.ErrIllegalFunction, "", "does not serve input registers", false},
		{"busy", mb.ErrServerDeviceBusy, "", "server device busy", false},
		{"device failure", mb.ErrServerDeviceFailure, "", "server device failure", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := emulate.Start("127.0.0.1:0", emulate.Config{Exception: tc.exc})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			_, err = Open(context.Background(), spec(t, "modbus:"+srv.Addr()+tc.spec), meters.Env{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), srv.Addr()) {
				t.Fatalf("err = %v, want it to name the address and say %q", err, tc.want)
			}
			if meters.IsUnavailable(err) != tc.unavailable {
				t.Errorf("IsUnavailable = %v, want %v", meters.IsUnavailable(err), tc.unavailable)
			}
		})
	}
}

// Mid-run, a passing exception (busy) is a gap; one that cannot pass
// (illegal address) ends Run with the reason.
func TestExceptionsMidRun(t *testing.T) {
	srv, err := emulate.Start("127.0.0.1:0", emulate.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m, err := Open(context.Background(), spec(t, "modbus:"+srv.Addr()+"?rate=100"), meters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	busy := make(chan int64, 1)
	go func() {
		// Clear the exception once the device has answered three
		// requests with it.
		n0 := <-busy
		for srv.Requests() < n0+3 {
			time.Sleep(2 * time.Millisecond)
		}
		srv.SetException(nil)
	}()
	got, err := record(t, m, func(s []meters.Sample) bool {
		switch len(channel(s, 0)) {
		case 5:
			srv.SetException(mb.ErrServerDeviceBusy)
			busy <- srv.Requests()
		case 10:
			srv.SetException(mb.ErrIllegalDataAddress)
		}
		return false
	})
	if err == nil || !strings.Contains(err.Error(), "illegal data address") || meters.IsUnavailable(err) {
		t.Fatalf("Run returned %v, want the illegal data address explained, not 'unavailable'", err)
	}
	if n := len(channel(got, 0)); n != 10 {
		t.Errorf("%d samples, want 10", n)
	}
	rep := m.Report()
	if len(rep.Gaps) != 1 || !strings.Contains(rep.Gaps[0].Reason, "busy") {
		t.Fatalf("gaps %+v, want one for the busy spell", rep.Gaps)
	}
	if rep.Counters["exceptions"] < 4 {
		t.Errorf("exceptions counted %d, want at least 3 busy and 1 illegal address", rep.Counters["exceptions"])
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Open(context.Background(), spec(t, "modbus:"+addr), meters.Env{})
	if !meters.IsUnavailable(err) || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "Modbus TCP is enabled") {
		t.Fatalf("err = %v, want ErrUnavailable saying connection refused and what to check", err)
	}
}

// A device that accepts the connection but never answers times out with
// the configured timeout.
func TestTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	_, err = Open(context.Background(), spec(t, "modbus:"+ln.Addr().String()+"?timeout=50ms"), meters.Env{})
	if !meters.IsUnavailable(err) || !strings.Contains(err.Error(), "no answer to a read") || !strings.Contains(err.Error(), "50ms") {
		t.Fatalf("err = %v, want ErrUnavailable saying no answer within 50ms", err)
	}
}

// Run gives up when the device stays away longer than giveup.
func TestGiveUp(t *testing.T) {
	srv, err := emulate.Start("127.0.0.1:0", emulate.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(context.Background(), spec(t, "modbus:"+srv.Addr()+"?rate=100&giveup=300ms"), meters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = record(t, m, func(s []meters.Sample) bool {
		if len(s) == 2 {
			srv.Close()
		}
		return false
	})
	if !meters.IsUnavailable(err) || !strings.Contains(err.Error(), "gave up after 300ms") {
		t.Fatalf("Run returned %v, want it to give up, unavailable", err)
	}
	rep := m.Report()
	if len(rep.Gaps) != 1 || !strings.Contains(rep.Gaps[0].Reason, "not recovered") {
		t.Errorf("gaps %+v, want one unrecovered gap", rep.Gaps)
	}
}

// TestPrecision: a Gude 1105 reports whole watts and whole Wh, and Gude
// states no accuracy; the meter says so, and a map that states one
// passes it on.
func TestPrecision(t *testing.T) {
	srv, err := emulate.Start("127.0.0.1:0", emulate.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m, err := Open(context.Background(), spec(t, "modbus:"+srv.Addr()), meters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := m.Info().Precision
	if p.PowerStepW != 1 || p.EnergyStepJ != 3600 || p.RelError != 0 {
		t.Errorf("precision %+v; want 1 W and 3600 J steps, accuracy not stated", p)
	}
	if !strings.Contains(p.Source, "not stated") || !strings.Contains(p.Source, "gude-1105") {
		t.Errorf("source %q does not name the map and say the accuracy is not stated", p.Source)
	}

	stated := regmap.Gude1105
	stated.RelError, stated.Accuracy = 0.01, "a datasheet"
	if q := precision(&stated); q.RelError != 0.01 || !strings.Contains(q.Source, "a datasheet") {
		t.Errorf("a map that states 1 %%: %+v", q)
	}
}
