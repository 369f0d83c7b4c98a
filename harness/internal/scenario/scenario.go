// Package scenario reads, overrides and validates scenario files.
//
// Configuration flows one way: the defaults below, then the file, then
// --set overrides, then one Validate that reports every problem at once,
// each with the file:line:col (or the --set) it came from.
package scenario

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/academemes/harness/harness/internal/runstore"
)

// Defaults, used where a scenario says nothing. Five repetitions: the
// repetition is the unit of replication, intervals need at least three,
// and five give a t interval that is not mostly the t quantile. Short
// phases keep a run within minutes.
const (
	DefaultRepeat   = 5
	DefaultIdle     = 5 * time.Second
	DefaultWarmup   = 2 * time.Second
	DefaultCooldown = 2 * time.Second
	DefaultMethod   = "POST"
	DefaultTimeout  = 30 * time.Second
	DefaultOrder    = OrderRandom
)

// Orders of the targets within a repetition.
const (
	// OrderRandom shuffles the targets anew in each repetition, from
	// Seed, so that no target always runs after the same one (and inherits
	// its heat or the drift of its turn).
	OrderRandom = "random"
	// OrderFixed keeps the scenario's order in every repetition: A B A B.
	OrderFixed = "fixed"
)

// Scenario is one experiment: targets, meters and the load to drive.
type Scenario struct {
	Name        string
	Description string
	Repeat      int
	Idle        time.Duration // baseline with targets started but unloaded
	Warmup      time.Duration // load that is not scored
	Cooldown    time.Duration // unloaded tail, lets power settle
	Meters      []string      // meter spec strings
	Targets     []Target
	Load        Load

	// MeterHosts names, per meter (same index as Meters), the machine it
	// measures, from a meter entry's host: ("" when not said: the meter's
	// own address, else this machine). Read it with MeterHost.
	MeterHosts []string

	// Checks is the validity policy: validity.Strict, Warn (the
	// default) or Off. `harness run --checks` overrides it.
	Checks string

	// Order is OrderRandom or OrderFixed. Seed makes a random order
	// repeatable; 0 (or absent) draws one at run time, which run.json
	// records.
	Order string
	Seed  uint64

	// Carbon is the carbon: block as run.json records it, every value
	// with its source and an intensity file's points read; nil when the
	// scenario has none (and the run has no carbon figures).
	Carbon *runstore.Carbon

	// File is the path the scenario was read from; Dir is its directory,
	// against which body_file and functions paths resolve.
	File string
	Dir  string
	// Source is the scenario as run, overrides applied, as YAML.
	Source []byte
}

// Target is one platform with one function.
type Target struct {
	Name     string
	Kind     string
	Function string
	Mode     string
	// Required makes an unavailable platform fail the run instead of being
	// skipped.
	Required bool
	Options  map[string]any
	// Inputs, when given, replace load.inputs for this target, so that
	// each function can get the inputs that suit it.
	Inputs []Input

	// Host names the machine that serves the target; "" lets the kind say
	// (a wasm target's options.remote), else it is this machine.
	Host string

	// Positions of option errors: an unknown key at the key, a bad value
	// at the value.
	optionKeys, optionValues map[string]*yaml.Node
}

// Load is the request and how it is driven.
type Load struct {
	Request    Request
	Stages     []Stage     // open model (constant arrival rate per stage)
	Sequential *Sequential // closed loop, one request at a time
	Inputs     []Input     // optional: one measured phase per input
	Timeout    time.Duration
	// Workers is the initial number of vegeta workers (0: vegeta's default).
	Workers uint64
}

// Request is the HTTP request sent to every target.
type Request struct {
	Method   string
	Path     string // appended to the target's URL; may hold a query
	Body     string
	BodyFile string
	Headers  map[string]string
}

// Stage is a constant arrival rate for a duration.
type Stage struct {
	Rate     float64 // requests per second
	Duration time.Duration
}

// Sequential is the original study's method: one request at a time, a
// pause between them, for a number of requests or a duration.
type Sequential struct {
	Requests int
	Duration time.Duration
	Pause    time.Duration
}

// Input is one variant of the request; each gets its own measured phase.
type Input struct {
	Name     string
	Body     string
	BodyFile string
	Path     string
}

// MeterHost is the host: given for meter i, "" when none was.
func (sc *Scenario) MeterHost(i int) string {
	if i < len(sc.MeterHosts) {
		return sc.MeterHosts[i]
	}
	return ""
}

// TotalLoadDuration is the planned length of one load phase per input, or 0
// when a sequential run is bounded by a request count.
func (l Load) TotalLoadDuration() time.Duration {
	var d time.Duration
	for _, s := range l.Stages {
		d += s.Duration
	}
	if l.Sequential != nil {
		d += l.Sequential.Duration
	}
	return d
}

// ReadFile reads, overrides and validates a scenario file. A *Errors lists
// every problem found.
func ReadFile(path string, sets []string) (*Scenario, error) {
	data, err := ReadBounded(path, MaxFileBytes)
	if err != nil {
		return nil, &Errors{List: []Error{{File: path, Msg: err.Error()}}}
	}
	return Parse(path, data, sets)
}

// Parse is ReadFile on data already read; path names it in errors.
func Parse(path string, data []byte, sets []string) (*Scenario, error) {
	p := &parser{file: path, origin: map[*yaml.Node]string{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.add(nil, "", "%s", yamlErrMsg(err))
		if ln := yamlErrLine(err); ln > 0 {
			p.errs[len(p.errs)-1].Line = ln
			p.errs[len(p.errs)-1].Col = yamlErrCol(data, ln, err)
		}
		return nil, p.result()
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.add(root, "", "a scenario must be a mapping of fields (name:, targets:, load:, ...)")
		return nil, p.result()
	}
	for _, s := range sets {
		if err := p.applySet(root, s); err != nil {
			p.errs = append(p.errs, Error{File: "--set " + s, Msg: err.Error()})
		}
	}
	if len(p.errs) > 0 {
		return nil, p.result()
	}
	sc := p.scenario(root)
	sc.File = path
	sc.Dir = filepath.Dir(path)
	p.validate(sc, root)
	if len(p.errs) > 0 {
		return nil, p.result()
	}
	src, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, err
	}
	sc.Source = src
	return sc, nil
}

// Error is one problem, with where it is.
type Error struct {
	File      string // path, or "--set PATH=VALUE"
	Line, Col int    // 0 when unknown
	Path      string // the field, e.g. load.stages[0].rate
	Msg       string
}

// Error formats the problem as file:line:col: field: message.
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a scenario.
type Errors struct{ List []Error }

// Error lists every problem, one a line.
func (e *Errors) Error() string {
	var lines []string
	for _, x := range e.List {
		lines = append(lines, x.Error())
	}
	return strings.Join(lines, "\n")
}

func yamlErrMsg(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "line ") && i > 0 {
		msg = msg[i+2:]
	}
	return "bad YAML: " + msg
}

func yamlErrLine(err error) int {
	var line int
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if _, e := fmt.Sscanf(msg, "line %d:", &line); e == nil {
		return line
	}
	return 0
}

// yamlErrCol points into line ln (1-based) of data, since the YAML
// parser's syntax errors name only the line: at the first tab for a tab
// error, else at the line's first non-blank character. 0 when the line is
// not there.
func yamlErrCol(data []byte, ln int, err error) int {
	lines := strings.Split(string(data), "\n")
	if ln > len(lines) {
		return 0
	}
	line := lines[ln-1]
	if strings.Contains(err.Error(), "tab") {
		if i := strings.IndexByte(line, '\t'); i >= 0 {
			return i + 1
		}
	}
	if i := strings.IndexFunc(line, func(r rune) bool { return r != ' ' && r != '\t' }); i >= 0 {
		return i + 1
	}
	return 1
}
