// Package emulate is a Modbus TCP emulator of a metered PDU: it serves a
// power trace through a PDU's register map (regmap), with an energy counter
// that integrates the trace, on the server side of the same Modbus library
// the driver uses. Tests use it, and so can anyone without the device:
//
//	harness meters emulate gude-1105 --listen 127.0.0.1:1502 --watts 40
//
// It can drop its connections and answer exceptions on request, so that a
// driver's recovery can be tested.
package emulate

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/academemes/harness/meters/modbus/regmap"
)

// Config says what the emulated PDU serves.
type Config struct {
	// Map is the register layout; nil means regmap.Gude1105.
	Map *regmap.Map
	// Trace is the power of each outlet; nil means a constant 40 W.
	Trace *Trace
	// Lines and Outlets are how many line and outlet sensor blocks exist;
	// zero means 1 each. Each outlet serves Trace; each line serves the sum
	// of the outlets.
	Lines, Outlets int
	// Voltage (V), Frequency (Hz) and PowerFactor; zero means 230 V, 50 Hz
	// and 1.0. Current follows from power, voltage and power factor.
	Voltage, Frequency, PowerFactor float64
	// EnergyStartWh is the absolute energy counter's value at start: a real
	// PDU's counter is not zero when a measurement begins.
	EnergyStartWh float64
	// Clock is the emulator's time; nil means time.Now. A test passes a
	// faster clock (shared with the meter) so that the 1 Wh counter moves
	// within a short test.
	Clock func() time.Time
	// DropEvery, when positive, drops every connection after each
	// DropEvery-th input-register request, and then refuses connections
	// for DropFor.
	DropEvery int
	DropFor   time.Duration
	// Exception, when set to one of the library's exception errors
	// (mb.ErrServerDeviceBusy, mb.ErrIllegalDataAddress, ...), is the
	// answer to every input-register read.
	Exception error
	// MaxClients caps concurrent connections; zero means 4.
	MaxClients uint
	// Log receives the library's server log lines; nil discards them.
	Log io.Writer
}

// Server is a running emulator.
type Server struct {
	cfg   Config
	m     *regmap.Map
	addr  string
	start time.Time
	srv   *mb.ModbusServer

	requests atomic.Int64

	mu        sync.Mutex
	exception error
	stopped   bool
	dropping  bool
}

// Start listens on addr (HOST:PORT; port 0 picks a free one) and serves
// until Close.
func Start(addr string, cfg Config) (*Server, error) {
	if cfg.Map == nil {
		cfg.Map = &regmap.Gude1105
	}
	if cfg.Trace == nil {
		cfg.Trace = Constant(40)
	}
	if cfg.Lines <= 0 {
		cfg.Lines = 1
	}
	if cfg.Outlets <= 0 {
		cfg.Outlets = 1
	}
	if cfg.Voltage == 0 {
		cfg.Voltage = 230
	}
	if cfg.Frequency == 0 {
		cfg.Frequency = 50
	}
	if cfg.PowerFactor == 0 {
		cfg.PowerFactor = 1
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = 4
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	// The library listens on a URL and keeps its listener to itself, so a
	// port of 0 is resolved here first (and the listener given back) to
	// learn the address, and to restart on the same one after a drop.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulate: listen on %s: %w", addr, err)
	}
	addr = ln.Addr().String()
	ln.Close()

	s := &Server{cfg: cfg, m: cfg.Map, addr: addr, exception: cfg.Exception}
	s.srv, err = mb.NewServer(&mb.ServerConfiguration{
		URL:        "tcp://" + addr,
		Timeout:    2 * time.Minute,
		MaxClients: cfg.MaxClients,
		Logger:     log.New(cfg.Log, "gude-emulator: ", 0),
	}, (*handler)(s))
	if err != nil {
		return nil, fmt.Errorf("emulate: %w", err)
	}
	s.start = cfg.Clock()
	if err := s.srv.Start(); err != nil {
		return nil, fmt.Errorf("emulate: listen on %s: %w", addr, err)
	}
	return s, nil
}

// Addr is the HOST:PORT the emulator listens on.
func (s *Server) Addr() string { return s.addr }

// Requests counts the input-register requests served so far.
func (s *Server) Requests() int64 { return s.requests.Load() }

// SetException makes every later input-register read answer err (a
// library exception error); nil restores normal answers.
func (s *Server) SetException(err error) {
	s.mu.Lock()
	s.exception = err
	s.mu.Unlock()
}

// Drop closes every connection now and refuses new ones for d, as a PDU
// does when it reboots or its network link goes away.
func (s *Server) Drop(d time.Duration) {
	s.mu.Lock()
	if s.stopped || s.dropping {
		s.mu.Unlock()
		return
	}
	s.dropping = true
	s.mu.Unlock()
	s.srv.Stop()
	time.Sleep(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropping = false
	if !s.stopped {
		// Listening on the same address again; Go sets SO_REUSEADDR, so
		// the closed connections' TIME_WAIT does not block it.
		if err := s.srv.Start(); err != nil {
			fmt.Fprintf(s.cfg.Log, "gude-emulator: restart after drop: %v\n", err)
		}
	}
}

// Close stops the emulator and closes its connections.
func (s *Server) Close() error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	return s.srv.Stop()
}

// Reading is what the emulator serves for a block at time now: exported
// for tests that compare a meter's figures with the truth.
func (s *Server) Reading(k regmap.Kind, now time.Time) regmap.Reading {
	d := now.Sub(s.start)
	n := 1.0
	if k == regmap.Line {
		n = float64(s.cfg.Outlets)
	}
	p := n * s.cfg.Trace.Power(d)
	// The counter shows whole watt-hours, truncated as an accumulator
	// that has not yet reached the next one would be.
	e := s.cfg.EnergyStartWh + math.Floor(n*s.cfg.Trace.Energy(d)/3600)
	return regmap.Reading{
		regmap.ActiveEnergy: e,
		regmap.ActivePower:  p,
		regmap.Voltage:      s.cfg.Voltage,
		regmap.Current:      math.Abs(p) / (s.cfg.Voltage * s.cfg.PowerFactor),
		regmap.Frequency:    s.cfg.Frequency,
		regmap.PowerFactor:  s.cfg.PowerFactor,
	}
}

// infoArea is Gude's "info area" at input registers 0x000-0x005: ports,
// ports with energy measurement, banks, line inputs, phases per line,
// inputs.
func (s *Server) infoArea() []uint16 {
	return []uint16{uint16(s.cfg.Outlets), uint16(s.cfg.Outlets), 0, uint16(s.cfg.Lines), 1, 0}
}

// register returns the value of input register a at time now, from blocks
// already encoded for this request (cache).
func (s *Server) register(a uint16, now time.Time, cache map[uint16][]uint16) (uint16, bool) {
	if info := s.infoArea(); int(a) < len(info) {
		return info[a], true
	}
	first, n := s.m.Span()
	for _, blk := range []struct {
		kind  regmap.Kind
		count int
	}{{regmap.Line, s.cfg.Lines}, {regmap.Outlet, s.cfg.Outlets}} {
		for i := 0; i < blk.count; i++ {
			base, err := s.m.Base(blk.kind, i, 0)
			if err != nil || a < base || a >= base+s.m.Stride {
				continue
			}
			// Inside a block, registers of fields the map does not
			// describe (power angle, reactive energy, ...) read as zero.
			off := a - base
			if off < first || off >= first+n {
				return 0, true
			}
			words, ok := cache[base]
			if !ok {
				words = s.m.Encode(s.Reading(blk.kind, now))
				cache[base] = words
			}
			return words[off-first], true
		}
	}
	return 0, false
}

// handler is the library's request handler for a Server.
type handler Server

// HandleInputRegisters serves measurements. One request is answered from
// one instant, as a device answers from one measurement snapshot.
func (h *handler) HandleInputRegisters(req *mb.InputRegistersRequest) ([]uint16, error) {
	s := (*Server)(h)
	n := s.requests.Add(1)
	if s.cfg.DropEvery > 0 && n%int64(s.cfg.DropEvery) == 0 {
		// Dropped from another goroutine: Stop waits for the library's
		// lock, which its client goroutines also take on their way out.
		go s.Drop(s.cfg.DropFor)
	}
	s.mu.Lock()
	exc := s.exception
	s.mu.Unlock()
	if exc != nil {
		return nil, exc
	}
	now := s.cfg.Clock()
	cache := map[uint16][]uint16{}
	out := make([]uint16, req.Quantity)
	for i := range out {
		v, ok := s.register(req.Addr+uint16(i), now, cache)
		if !ok {
			return nil, mb.ErrIllegalDataAddress
		}
		out[i] = v
	}
	return out, nil
}

// HandleCoils answers reads of the outlets' switch states (all on); the
// emulator does not switch, so writes are refused.
func (h *handler) HandleCoils(req *mb.CoilsRequest) ([]bool, error) {
	s := (*Server)(h)
	if req.IsWrite {
		return nil, mb.ErrIllegalFunction
	}
	if int(req.Addr)+int(req.Quantity) > s.cfg.Outlets {
		return nil, mb.ErrIllegalDataAddress
	}
	out := make([]bool, req.Quantity)
	for i := range out {
		out[i] = true
	}
	return out, nil
}

// HandleDiscreteInputs: the emulated PDU has no inputs.
func (h *handler) HandleDiscreteInputs(*mb.DiscreteInputsRequest) ([]bool, error) {
	return nil, mb.ErrIllegalDataAddress
}

// HandleHoldingRegisters: the emulated PDU has no settings to serve.
func (h *handler) HandleHoldingRegisters(*mb.HoldingRegistersRequest) ([]uint16, error) {
	return nil, mb.ErrIllegalDataAddress
}

// Exceptions maps the names the CLI accepts to the library's exception
// errors (and so to Modbus exception codes 1-4, 6, 10, 11).
var Exceptions = map[string]error{
	"illegal-function": mb.ErrIllegalFunction,
	"illegal-address":  mb.ErrIllegalDataAddress,
	"illegal-value":    mb.ErrIllegalDataValue,
	"device-failure":   mb.ErrServerDeviceFailure,
	"busy":             mb.ErrServerDeviceBusy,
	"gateway-path":     mb.ErrGWPathUnavailable,
	"gateway-target":   mb.ErrGWTargetFailedToRespond,
}

// ParseException accepts an exception name from Exceptions or its code.
func ParseException(s string) (error, error) {
	if e, ok := Exceptions[s]; ok {
		return e, nil
	}
	codes := map[int]string{1: "illegal-function", 2: "illegal-address", 3: "illegal-value", 4: "device-failure", 6: "busy", 10: "gateway-path", 11: "gateway-target"}
	if n, err := strconv.Atoi(s); err == nil {
		if name, ok := codes[n]; ok {
			return Exceptions[name], nil
		}
	}
	return nil, errors.New("unknown exception " + strconv.Quote(s) + "; use a name (illegal-function, illegal-address, illegal-value, device-failure, busy, gateway-path, gateway-target) or its code")
}
