package agent

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"strconv"

	"github.com/academemes/harness/meters"
)

// The agent's HTTP API, version 1. Every path needs the bearer token when
// the agent has one. Times are the agent's clock in Unix nanoseconds.
//
//	GET    /v1/meters                      Describe: the agent and its meters
//	GET    /v1/clock[?recording=ID&ack=N]  ClockReply: T2 and T3 of an exchange; acknowledges readings below N
//	POST   /v1/recordings                  StartRequest -> Started: starts a recording
//	GET    /v1/recordings/ID/samples?from=N[&max=M]  one Chunk of readings from sequence number N
//	GET    /v1/recordings/ID/stream?from=N           Chunks as NDJSON, one a line, flushed as read
//	POST   /v1/recordings/ID/stop          Stopped: stops the meter; its readings stay fetchable
//	DELETE /v1/recordings/ID               drops the recording
const (
	pathMeters     = "/v1/meters"
	pathClock      = "/v1/clock"
	pathRecordings = "/v1/recordings"
)

// TokenEnv is the environment variable from which both `harness agent` and
// the agent meter take the token when none is given, so that it need not
// be written in a scenario or seen in a process list.
const TokenEnv = "HARNESS_AGENT_TOKEN"

// Describe is what GET /v1/meters answers.
type Describe struct {
	// Hostname is the agent machine's name, for run.json and people.
	Hostname string `json:"hostname"`
	// Boot changes every time the agent starts: a different Boot means the
	// recordings and the clock of the one before are gone.
	Boot    string        `json:"boot"`
	Version string        `json:"version,omitempty"`
	Meters  []MeterDetail `json:"meters"`
}

// MeterDetail is one meter an agent serves.
type MeterDetail struct {
	// Name is what the agent meter's meter=NAME option selects: the
	// driver's name ("rapl"), with -2, -3 ... when two share a driver.
	Name  string      `json:"name"`
	Spec  string      `json:"spec"`
	Info  meters.Info `json:"info"`
	Notes []string    `json:"notes,omitempty"`
}

// ClockReply is the agent's half of an exchange.
type ClockReply struct {
	Boot     string `json:"boot"`
	Received int64  `json:"t2_ns"`
	Replied  int64  `json:"t3_ns"`
}

// StartRequest starts a recording of one meter.
type StartRequest struct {
	Meter string `json:"meter"`
}

// Started is the answer to a StartRequest.
type Started struct {
	ID   string `json:"id"`
	Boot string `json:"boot"`
}

// Chunk is a run of consecutive readings, sequence numbers From to
// Next-1. A From above the one asked for means the readings between were
// dropped (the agent's buffer overflowed while no one fetched).
type Chunk struct {
	From     uint64    `json:"from"`
	Next     uint64    `json:"next"`
	Readings []Reading `json:"r"`
	// Done: the recording has stopped and Next is its end.
	Done bool `json:"done,omitempty"`
	// Error is why the meter stopped by itself, if it did.
	Error string `json:"error,omitempty"`
}

// Stopped is the answer to a stop: the remote meter's own report, its
// times on the agent's clock, and why it failed if it did.
type Stopped struct {
	Report *meters.Report `json:"report,omitempty"`
	Error  string         `json:"error,omitempty"`
	Next   uint64         `json:"next"`
}

// errorBody is every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// Reading is one sample on the agent's clock. On the wire it is a JSON
// array [channel, t_ns, watts, joules], with null for NaN: four numbers
// instead of an object, as a meter may send hundreds a second.
type Reading struct {
	Channel int
	TNs     int64
	Watts   float64
	Joules  float64
}

// MarshalJSON writes [channel,t_ns,watts,joules].
func (r Reading) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(r.Channel), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, r.TNs, 10)
	for _, f := range []float64{r.Watts, r.Joules} {
		b = append(b, ',')
		if math.IsNaN(f) || math.IsInf(f, 0) {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendFloat(b, f, 'g', -1, 64)
		}
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads [channel,t_ns,watts,joules]. The time is read as an
// integer: a float64 would round Unix nanoseconds to 256 ns.
func (r *Reading) UnmarshalJSON(b []byte) error {
	var raw [4]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("reading %s: want [channel, t_ns, watts, joules]: %w", b, err)
	}
	ch, err1 := strconv.Atoi(string(raw[0]))
	t, err2 := strconv.ParseInt(string(raw[1]), 10, 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("reading %s: channel and t_ns must be integers", b)
	}
	r.Channel, r.TNs = ch, t
	for i, dst := range []*float64{&r.Watts, &r.Joules} {
		v := raw[2+i]
		if bytes.Equal(v, []byte("null")) || len(v) == 0 {
			*dst = math.NaN()
			continue
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return fmt.Errorf("reading %s: %w", b, err)
		}
		*dst = f
	}
	return nil
}

// tokenOK compares a presented token with the agent's in constant time.
// Both are hashed first, so that neither the comparison's time nor its
// early exit on a length mismatch tells how long the token is.
func tokenOK(given, want string) bool {
	g, w := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// IsLoopback reports whether a listen address (HOST:PORT) is reachable
// only from this machine: a loopback IP or localhost. ":PORT" listens on
// every interface, so it is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
