// Package modbus is the meter driver for metered PDUs read over Modbus TCP,
// first of all the Gude Expert Power Control 1105 that the study this
// harness comes from measured with.
//
// Spec:
//
//	modbus:HOST[:PORT][?unit=ID&outlet=N|line=N&phase=N&map=gude-1105&rate=HZ&energy=power|counter&timeout=D&giveup=D]
//
// The port defaults to 502, the map to gude-1105, the block to line 1
// (the whole strip on a single-line PDU), the rate to 2 Hz. Each poll reads
// the block's registers in one request, so that power, counter, voltage,
// current, power factor and frequency come from one moment, and stamps the
// sample at the midpoint of request and response on the harness clock.
//
// Two channels: "<block> AC" (in the total) carries active power, and
// "<block> AC energy counter" (not in the total, so it is never added to the
// first) carries the device's watt-hour counter as joules since the first
// reading. The first channel's Joules are NaN by default so that the
// analysis integrates power (the counter's 3600 J steps are too coarse for
// windows of seconds or minutes); energy=counter puts the counter there
// instead, for long runs. Voltage, current, power factor and frequency go
// into the Report's details as summary statistics.
//
// The emulator `harness meters emulate gude-1105` serves the same map
// (package emulate).
package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/modbus/emulate"
	"github.com/academemes/harness/meters/modbus/regmap"
)

// DriverName is the spec's driver part.
const DriverName = "modbus"

// Defaults of the spec's options.
const (
	DefaultRate    = 2.0
	DefaultTimeout = time.Second
	DefaultGiveUp  = 2 * time.Minute
	MaxRate        = 100.0
	// MaxTimeout and MaxGiveUp bound timeout= and giveup=: a reply later
	// than a minute is no poll, and a day without one no outage to wait
	// out.
	MaxTimeout = time.Minute
	MaxGiveUp  = 24 * time.Hour
)

// Energy sources for the in-total channel's Joules.
const (
	EnergyFromPower   = "power"
	EnergyFromCounter = "counter"
)

func init() {
	meters.Register(meters.Driver{
		Name:  DriverName,
		Usage: "modbus:HOST[:PORT][?unit=ID&outlet=N|line=N&phase=N&map=" + strings.Join(regmap.Names(), "|") + "&rate=HZ&energy=power|counter&timeout=1s&giveup=2m] (metered PDU over Modbus TCP; port 502)",
		Open: func(sp meters.Spec, env meters.Env) (meters.Meter, error) {
			return Open(context.Background(), sp, env)
		},
		Check: func(sp meters.Spec) error {
			_, err := ParseConfig(sp)
			return err
		},
		// A network meter cannot be found by looking around the machine,
		// and a PDU measures the whole device, not this process's CPU:
		// it is chosen by name only.
		Detect:   nil,
		AutoRank: 0,
	})
	meters.RegisterEmulator(meters.Emulator{
		Name:  "gude-1105",
		Usage: emulate.Usage,
		Run:   emulate.Main,
	})
}

// Config is a parsed modbus spec.
type Config struct {
	Addr    string // HOST:PORT
	Unit    uint8  // Modbus unit id; Gude devices ignore it
	Map     *regmap.Map
	Kind    regmap.Kind
	Index   int // line or outlet, from 0
	Phase   int // from 0
	Rate    float64
	Timeout time.Duration
	GiveUp  time.Duration
	Energy  string
}

// Block names the configured block for people: "line 1", "outlet 2 phase 3".
func (c Config) Block() string {
	s := fmt.Sprintf("%s %d", c.Kind, c.Index+1)
	if c.Phase > 0 {
		s += fmt.Sprintf(" phase %d", c.Phase+1)
	}
	return s
}

// ParseConfig checks a spec and reports every problem at once.
func ParseConfig(sp meters.Spec) (Config, error) {
	c := Config{Unit: 1, Map: &regmap.Gude1105, Kind: regmap.Line, Rate: DefaultRate,
		Timeout: DefaultTimeout, GiveUp: DefaultGiveUp, Energy: EnergyFromPower}
	if err := sp.Unknown("unit", "outlet", "line", "phase", "map", "rate", "energy", "timeout", "giveup"); err != nil {
		return c, err
	}
	var bad []string
	o := sp.Options
	if v, ok := o["map"]; ok {
		m, found := regmap.Lookup(v)
		if !found {
			bad = append(bad, fmt.Sprintf("map=%s is unknown; known: %s", v, strings.Join(regmap.Names(), ", ")))
		} else {
			c.Map = m
		}
	}
	host := strings.TrimSpace(sp.Arg)
	if host == "" {
		bad = append(bad, "no host: write modbus:HOST[:PORT]")
	} else if h, p, err := net.SplitHostPort(host); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			bad = append(bad, fmt.Sprintf("port %q is not a TCP port", p))
		}
		if err := checkHost(h, strings.HasPrefix(host, "[")); err != nil {
			bad = append(bad, err.Error())
		}
		c.Addr = net.JoinHostPort(h, p)
	} else {
		h, bracketed := host, false
		if strings.HasPrefix(h, "[") || strings.HasSuffix(h, "]") {
			h, bracketed = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), true
			if !strings.HasPrefix(host, "[") || !strings.HasSuffix(host, "]") {
				bad = append(bad, fmt.Sprintf("host %q: an IPv6 address goes in brackets, [::1] or [::1]:502", host))
				h = ""
			}
		}
		if h != "" {
			if err := checkHost(h, bracketed); err != nil {
				bad = append(bad, err.Error())
			}
		}
		c.Addr = net.JoinHostPort(h, strconv.Itoa(c.Map.DefaultPort))
	}
	intOpt := func(key string, lo, hi int) (int, bool) {
		v, ok := o[key]
		if !ok {
			return 0, false
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			bad = append(bad, fmt.Sprintf("%s=%s: want an integer from %d to %d", key, v, lo, hi))
			return 0, false
		}
		return n, true
	}
	if n, ok := intOpt("unit", 0, 255); ok {
		c.Unit = uint8(n)
	}
	_, hasOutlet := o["outlet"]
	_, hasLine := o["line"]
	if hasOutlet && hasLine {
		bad = append(bad, "outlet= and line= exclude each other")
	}
	if n, ok := intOpt("outlet", 1, 1024); ok {
		c.Kind, c.Index = regmap.Outlet, n-1
	}
	if n, ok := intOpt("line", 1, 1024); ok {
		c.Kind, c.Index = regmap.Line, n-1
	}
	if n, ok := intOpt("phase", 1, 3); ok {
		c.Phase = n - 1
	}
	if v, ok := o["rate"]; ok {
		r, err := strconv.ParseFloat(strings.TrimSuffix(strings.ToLower(v), "hz"), 64)
		if err != nil || !(r > 0 && r <= MaxRate) {
			bad = append(bad, fmt.Sprintf("rate=%s: want polls per second in (0, %g]", v, MaxRate))
		} else {
			c.Rate = r
		}
	}
	durOpt := func(key string, dst *time.Duration, hi time.Duration) {
		if v, ok := o[key]; ok {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Millisecond || d > hi {
				bad = append(bad, fmt.Sprintf("%s=%s: want a duration from 1ms to %v (500ms, 2s)", key, v, hi))
				return
			}
			*dst = d
		}
	}
	durOpt("timeout", &c.Timeout, MaxTimeout)
	durOpt("giveup", &c.GiveUp, MaxGiveUp)
	if v, ok := o["energy"]; ok {
		switch v {
		case EnergyFromPower, EnergyFromCounter:
			c.Energy = v
		default:
			bad = append(bad, fmt.Sprintf("energy=%s: want power or counter", v))
		}
	}
	if _, err := c.Map.Base(c.Kind, c.Index, c.Phase); err != nil {
		bad = append(bad, err.Error())
	}
	for _, f := range []regmap.Field{regmap.ActivePower, regmap.ActiveEnergy} {
		if _, ok := c.Map.Register(f); !ok {
			bad = append(bad, fmt.Sprintf("map %s has no %s register", c.Map.Name, f))
		}
	}
	if len(bad) > 0 {
		return c, fmt.Errorf("%w %q: %s", meters.ErrSpec, sp.Raw, strings.Join(bad, "; "))
	}
	return c, nil
}

// Meter reads one line or outlet of a metered PDU.
type Meter struct {
	cfg   Config
	env   meters.Env
	info  meters.Info
	start uint16 // first register read
	count uint16 // registers read per poll

	client *mb.ModbusClient // nil while disconnected

	mu  sync.Mutex
	rep report
}

var (
	_ meters.Meter    = (*Meter)(nil)
	_ meters.Reporter = (*Meter)(nil)
	_ io.Closer       = (*Meter)(nil)
)

// Open parses the spec, connects and reads the block once, so that a wrong
// address, a missing outlet or a device that is not a PDU is reported
// before a run starts. The connection stays open for Run.
func Open(ctx context.Context, sp meters.Spec, env meters.Env) (*Meter, error) {
	env = env.WithDefaults()
	cfg, err := ParseConfig(sp)
	if err != nil {
		return nil, err
	}
	base, _ := cfg.Map.Base(cfg.Kind, cfg.Index, cfg.Phase)
	first, n := cfg.Map.Span()
	m := &Meter{cfg: cfg, env: env, start: base + first, count: n}
	m.rep.init()
	name := cfg.Block() + " AC"
	m.info = meters.Info{
		Name:   sp.Raw,
		Driver: DriverName,
		Kind:   meters.Measured,
		Description: fmt.Sprintf("%s %s over Modbus TCP at %s (unit %d, input registers 0x%04x-0x%04x, %g Hz)",
			cfg.Map.Model, cfg.Block(), cfg.Addr, cfg.Unit, m.start, m.start+n-1, cfg.Rate),
		Channels: []meters.Channel{
			{Name: name, InTotal: true},
			{Name: name + " energy counter", InTotal: false},
		},
		Precision: precision(cfg.Map),
	}
	if err := m.connect(ctx); err != nil {
		return nil, err
	}
	if _, _, err := m.poll(); err != nil {
		m.Close()
		return nil, err
	}
	// The probe is not part of the run: counters start at Run.
	m.rep.requests, m.rep.latency = 0, stat{}
	return m, nil
}

// Info describes the meter.
func (m *Meter) Info() meters.Info { return m.info }

// precision is the resolution of the map's power and energy registers
// (whole watts and whole Wh on a Gude: 1 W, 3600 J) and the maker's
// stated accuracy.
func precision(mp *regmap.Map) meters.Precision {
	p := meters.Precision{RelError: mp.RelError}
	if r, ok := mp.Register(regmap.ActivePower); ok {
		p.PowerStepW = r.Scale // W per count
	}
	if r, ok := mp.Register(regmap.ActiveEnergy); ok {
		p.EnergyStepJ = r.Scale * 3600 // Wh per count, in J
	}
	p.Source = fmt.Sprintf("steps: one count of the %s's power (W) and energy (Wh) registers (map %s); %s", mp.Model, mp.Name, mp.Accuracy)
	return p
}

// Config returns the parsed spec.
func (m *Meter) Config() Config { return m.cfg }

// Close closes the connection if one is open. Run closes it too.
func (m *Meter) Close() error {
	if m.client == nil {
		return nil
	}
	err := m.client.Close()
	m.client = nil
	return err
}

// connect opens a new connection. The library dials with a fixed 5 s
// timeout and no context, so the dial runs aside and is abandoned (and
// closed when it finishes) if ctx ends first.
func (m *Meter) connect(ctx context.Context) error {
	c, err := mb.NewClient(&mb.ClientConfiguration{
		URL:     "tcp://" + m.cfg.Addr,
		Timeout: m.cfg.Timeout,
		// Without a logger the library prints to stdout.
		Logger: log.New(m.env.Log, "modbus "+m.cfg.Addr+": ", 0),
	})
	if err != nil {
		return fmt.Errorf("modbus %s: %w", m.cfg.Addr, err)
	}
	if err := c.SetUnitId(m.cfg.Unit); err != nil {
		return fmt.Errorf("modbus %s: unit %d: %w", m.cfg.Addr, m.cfg.Unit, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Open() }()
	select {
	case err := <-done:
		if err != nil {
			return m.explain(err, "connect")
		}
		m.client = c
		return nil
	case <-ctx.Done():
		go func() {
			if <-done == nil {
				c.Close()
			}
		}()
		return ctx.Err()
	}
}

// poll reads the block once: the reading and the midpoint of request and
// response.
func (m *Meter) poll() (regmap.Reading, time.Time, error) {
	t0 := m.env.Clock()
	raw, err := m.client.ReadRawBytes(m.start, 2*m.count, mb.INPUT_REGISTER)
	t1 := m.env.Clock()
	mid := t0.Add(t1.Sub(t0) / 2)
	m.mu.Lock()
	m.rep.requests++
	m.rep.latency.add(t1.Sub(t0).Seconds() * 1000)
	m.mu.Unlock()
	if err != nil {
		return nil, mid, m.explain(err, "read")
	}
	rd, err := m.cfg.Map.Decode(raw)
	if err != nil {
		return nil, mid, fmt.Errorf("modbus %s: %w", m.cfg.Addr, err)
	}
	return rd, mid, nil
}

// Error kinds, for Run's decisions.
var (
	// errLost: the connection is gone or out of step; reconnect.
	errLost = errors.New("connection lost")
	// errTransient: the device answered an exception that may pass.
	errTransient = errors.New("the device answered a passing exception (retried)")
)

// explain turns a library or network error into one that says what
// happened, where, and what to check. Connection failures wrap
// meters.ErrUnavailable; exceptions that cannot pass (no such register,
// function not served) do not, because the device is there but the spec
// does not fit it.
func (m *Meter) explain(err error, op string) error {
	where := fmt.Sprintf("modbus %s", m.cfg.Addr)
	regs := fmt.Sprintf("input registers 0x%04x-0x%04x (%s, map %s)", m.start, m.start+m.count-1, m.cfg.Block(), m.cfg.Map.Name)
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %s: connection refused: nothing listens there; check that the PDU is on, that Modbus TCP is enabled in its configuration, and the port (default 502): %w", meters.ErrUnavailable, where, err)
	case errors.As(err, &dns):
		return fmt.Errorf("%w: %s: cannot resolve the host: %w", meters.ErrUnavailable, where, err)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Errorf("%w: %s: no route to the PDU: %w", meters.ErrUnavailable, where, err)
	case errors.Is(err, mb.ErrRequestTimedOut):
		return fmt.Errorf("%w: %s: no answer to a read of %s within %v (%w): %w", meters.ErrUnavailable, where, regs, m.cfg.Timeout, errLost, err)
	case op == "connect" && errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %s: no answer to a connection attempt within 5 s; check the address and any firewall: %w", meters.ErrUnavailable, where, err)
	case errors.Is(err, mb.ErrIllegalDataAddress):
		return fmt.Errorf("%s: the device answered exception 2 (illegal data address) to a read of %s: it has no such line or outlet, or is not a %s; check line=/outlet=/phase= and map=: %w", where, regs, m.cfg.Map.Model, err)
	case errors.Is(err, mb.ErrIllegalFunction):
		return fmt.Errorf("%s: the device answered exception 1 (illegal function) to a read of %s: it does not serve input registers (function 4), so it is not a %s: %w", where, regs, m.cfg.Map.Model, err)
	case errors.Is(err, mb.ErrIllegalDataValue):
		return fmt.Errorf("%s: the device answered exception 3 (illegal data value) to a read of %s: it refuses reading %d registers at once: %w", where, regs, m.count, err)
	case errors.Is(err, mb.ErrServerDeviceBusy), errors.Is(err, mb.ErrServerDeviceFailure),
		errors.Is(err, mb.ErrAcknowledge), errors.Is(err, mb.ErrGWPathUnavailable),
		errors.Is(err, mb.ErrGWTargetFailedToRespond), errors.Is(err, mb.ErrMemoryParityError):
		return fmt.Errorf("%s: %w to a read of %s: %w", where, errTransient, regs, err)
	case op == "connect":
		return fmt.Errorf("%w: %s: cannot connect: %w", meters.ErrUnavailable, where, err)
	}
	// EOF, reset, broken pipe, a protocol error or a wrong transaction or
	// unit id: the byte stream cannot be trusted any more.
	return fmt.Errorf("%w: %s: %w during a %s: %w", meters.ErrUnavailable, where, errLost, op, err)
}

// Run polls at the configured rate until ctx is done. A lost connection is
// reopened with backoff (100 ms doubling to 5 s) and the span without
// samples is recorded as a gap; Run gives up when the device stays away
// longer than giveup, or at once on an exception that cannot pass.
func (m *Meter) Run(ctx context.Context, emit func(meters.Sample)) error {
	defer m.Close()
	period := time.Duration(float64(time.Second) / m.cfg.Rate)
	tick := time.NewTicker(period)
	defer tick.Stop()

	runStart := m.env.Clock()
	var (
		last      time.Time // last sample's stamp
		gapStart  time.Time
		gapReason string
		inGap     bool
		attempts  int
		backoff   = 100 * time.Millisecond
	)
	openGap := func(err error) {
		if inGap {
			return
		}
		inGap, gapStart, gapReason, attempts = true, last, err.Error(), 0
		if gapStart.IsZero() {
			gapStart = runStart
		}
		m.env.Logf("modbus %s: %v; retrying", m.cfg.Addr, err)
	}
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	defer func() {
		if inGap {
			m.mu.Lock()
			m.rep.gaps = append(m.rep.gaps, meters.Gap{Start: gapStart, End: m.env.Clock(),
				Reason: gapReason + " (not recovered before the meter stopped)"})
			m.mu.Unlock()
		}
	}()
	for {
		if ctx.Err() != nil {
			return nil
		}
		if m.client == nil {
			attempts++
			m.mu.Lock()
			m.rep.reconnects++
			m.mu.Unlock()
			if err := m.connect(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if m.env.Clock().Sub(gapStart) > m.cfg.GiveUp {
					return fmt.Errorf("modbus %s: gave up after %v without data (%d reconnect attempts): %w", m.cfg.Addr, m.cfg.GiveUp, attempts, err)
				}
				if !wait(backoff) {
					return nil
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
		}
		rd, t, err := m.poll()
		switch {
		case err == nil:
			if inGap {
				m.mu.Lock()
				m.rep.gaps = append(m.rep.gaps, meters.Gap{Start: gapStart, End: t,
					Reason: fmt.Sprintf("%s; recovered after %d reconnect attempt(s)", gapReason, attempts)})
				m.mu.Unlock()
				inGap = false
			}
			last = t
			m.emit(emit, rd, t)
		case errors.Is(err, errLost):
			m.mu.Lock()
			m.rep.lost++
			m.mu.Unlock()
			openGap(err)
			m.Close()
			continue // reconnect at once; backoff applies from the second try
		case errors.Is(err, errTransient):
			m.mu.Lock()
			m.rep.exceptions++
			m.mu.Unlock()
			openGap(err)
			if m.env.Clock().Sub(gapStart) > m.cfg.GiveUp {
				return fmt.Errorf("modbus %s: gave up after %v of exceptions: %w", m.cfg.Addr, m.cfg.GiveUp, err)
			}
		default:
			m.mu.Lock()
			m.rep.exceptions++
			m.mu.Unlock()
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// emit turns a reading into the two channels' samples and the report's
// statistics.
func (m *Meter) emit(emit func(meters.Sample), rd regmap.Reading, t time.Time) {
	m.mu.Lock()
	counterJ, p := m.rep.add(rd, t)
	m.mu.Unlock()
	j := meters.NaN
	if m.cfg.Energy == EnergyFromCounter {
		j = counterJ
	}
	emit(meters.Sample{Channel: 0, T: t, Watts: p, Joules: j})
	emit(meters.Sample{Channel: 1, T: t, Watts: meters.NaN, Joules: counterJ})
}

// Report says what the run looked like: gaps, counters, which energy source
// the in-total channel used and why, and the electrical context.
func (m *Meter) Report() meters.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rep.build(m.cfg)
}

// checkHost finds what is wrong with the host part of a spec: an IP
// address (an IPv6 one in brackets, bracketed), or a DNS name.
func checkHost(h string, bracketed bool) error {
	if a, err := netip.ParseAddr(h); err == nil {
		if bracketed && !a.Is6() {
			return fmt.Errorf("host %q: only an IPv6 address goes in brackets", h)
		}
		return nil
	}
	if bracketed || strings.Contains(h, ":") {
		return fmt.Errorf("host %q is not an IPv6 address", h)
	}
	if len(h) > 253 {
		return fmt.Errorf("host %q: a DNS name has at most 253 characters", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		ok := label != "" && len(label) <= 63 && label[0] != '-' && label[len(label)-1] != '-'
		for _, r := range label {
			ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}
		if !ok {
			return fmt.Errorf("host %q is neither an IP address nor a DNS name (labels of letters, digits and '-')", h)
		}
	}
	return nil
}
