package scenario

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/academemes/harness/harness/internal/validity"
)

// parser walks the YAML tree by hand so that every field error carries the
// node's position, and unknown fields are errors rather than ignored.
type parser struct {
	file   string
	errs   []Error
	origin map[*yaml.Node]string // nodes that came from --set, and which
	bad    map[badKey]bool       // (node, field) already reported: one error each
}

type badKey struct {
	n    *yaml.Node
	path string
}

func (p *parser) add(n *yaml.Node, path, format string, args ...any) {
	if n != nil {
		k := badKey{n, path}
		if p.bad[k] {
			return
		}
		if p.bad == nil {
			p.bad = map[badKey]bool{}
		}
		p.bad[k] = true
	}
	e := Error{File: p.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		if o, ok := p.origin[n]; ok {
			e.File = o
		} else {
			e.Line, e.Col = n.Line, n.Column
		}
	}
	p.errs = append(p.errs, e)
}

func (p *parser) result() error {
	if len(p.errs) == 0 {
		return nil
	}
	sort.SliceStable(p.errs, func(i, j int) bool {
		a, b := p.errs[i], p.errs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return &Errors{List: p.errs}
}

// fields checks a mapping node against the allowed keys and returns the
// value node of each key present.
func (p *parser) fields(n *yaml.Node, path string, allowed ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n == nil {
		return out
	}
	if n.Kind != yaml.MappingNode {
		p.add(n, path, "must be a mapping with the fields %s", strings.Join(allowed, ", "))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ok := false
		for _, a := range allowed {
			if k.Value == a {
				ok = true
			}
		}
		switch {
		case !ok:
			p.add(k, join(path, k.Value), "unknown field; allowed here: %s", strings.Join(allowed, ", "))
		case out[k.Value] != nil:
			p.add(k, join(path, k.Value), "given twice")
		default:
			out[k.Value] = v
		}
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (p *parser) str(n *yaml.Node, path string) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		if n.Tag == "!!null" {
			return ""
		}
		p.add(n, path, "must be a string, got %s", describe(n))
		return ""
	}
	return n.Value
}

func (p *parser) integer(n *yaml.Node, path string) (int, bool) {
	if n == nil {
		return 0, false
	}
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		p.add(n, path, "must be a whole number, got %s", describe(n))
		return 0, false
	}
	return v, true
}

// seed parses a whole number from 0 to 2^64-1.
func (p *parser) seed(n *yaml.Node, path string) uint64 {
	if n == nil || n.Tag == "!!null" {
		return 0
	}
	v, err := strconv.ParseUint(n.Value, 10, 64)
	if n.Kind != yaml.ScalarNode || err != nil {
		p.add(n, path, "must be a whole number from 0 to 18446744073709551615, got %q", n.Value)
		return 0
	}
	return v
}

func (p *parser) boolean(n *yaml.Node, path string) bool {
	if n == nil {
		return false
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		p.add(n, path, "must be true or false, got %s", describe(n))
	}
	return b
}

// duration parses "30s", "1m30s", "250ms"; a bare number is seconds. A
// field with a range reads it with durationIn.
func (p *parser) duration(n *yaml.Node, path string) (time.Duration, bool) {
	return p.durationIn(n, path, math.MinInt64, math.MaxInt64)
}

// rate parses requests per second: 50, "50/s", "3000/m", "2/ms".
func (p *parser) rate(n *yaml.Node, path string) (float64, bool) {
	if n == nil {
		return 0, false
	}
	s := strings.TrimSpace(n.Value)
	per := time.Second
	if num, unit, ok := strings.Cut(s, "/"); ok {
		s = strings.TrimSpace(num)
		switch strings.TrimSpace(unit) {
		case "s":
		case "m", "min":
			per = time.Minute
		case "h":
			per = time.Hour
		case "ms":
			per = time.Millisecond
		default:
			p.add(n, path, "unknown rate unit %q; use /s, /m, /h or /ms", unit)
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if n.Kind != yaml.ScalarNode || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		p.add(n, path, "must be a rate in requests per second such as 50 or 3000/m, got %s", describe(n))
		return 0, false
	}
	return f * float64(time.Second) / float64(per), true
}

func (p *parser) list(n *yaml.Node, path string) []*yaml.Node {
	if n == nil || n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n, path, "must be a list")
		return nil
	}
	return n.Content
}

func (p *parser) stringMap(n *yaml.Node, path string) map[string]string {
	if n == nil || n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.add(n, path, "must be a mapping of names to strings")
		return nil
	}
	m := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		m[n.Content[i].Value] = p.str(n.Content[i+1], join(path, n.Content[i].Value))
	}
	return m
}

// scenario decodes the root mapping; defaults fill what is absent.
func (p *parser) scenario(root *yaml.Node) *Scenario {
	f := p.fields(root, "", "name", "description", "repeat", "idle", "warmup", "cooldown", "meters", "targets", "load", "order", "seed", "checks", "carbon")
	sc := &Scenario{
		Name:        p.str(f["name"], "name"),
		Description: p.str(f["description"], "description"),
		Repeat:      DefaultRepeat,
		Idle:        DefaultIdle,
		Warmup:      DefaultWarmup,
		Cooldown:    DefaultCooldown,
		Meters:      []string{"auto"},
		Order:       DefaultOrder,
		Checks:      validity.Warn,
	}
	if f["checks"] != nil {
		sc.Checks = p.str(f["checks"], "checks")
	}
	if f["order"] != nil {
		sc.Order = p.str(f["order"], "order")
	}
	sc.Seed = p.seed(f["seed"], "seed")
	if v, ok := p.intIn(f["repeat"], "repeat", 1, MaxRepeat); ok {
		sc.Repeat = v
	}
	for key, dst := range map[string]*time.Duration{"idle": &sc.Idle, "warmup": &sc.Warmup, "cooldown": &sc.Cooldown} {
		if d, ok := p.durationIn(f[key], key, 0, MaxPhase); ok {
			*dst = d
		}
	}
	if f["meters"] != nil {
		sc.Meters = nil
		for i, m := range p.list(f["meters"], "meters") {
			spec, host := p.meter(m, fmt.Sprintf("meters[%d]", i))
			sc.Meters = append(sc.Meters, spec)
			sc.MeterHosts = append(sc.MeterHosts, host)
		}
	}
	for i, t := range p.list(f["targets"], "targets") {
		sc.Targets = append(sc.Targets, p.target(t, fmt.Sprintf("targets[%d]", i)))
	}
	sc.Load = p.load(f["load"], "load")
	sc.Carbon = p.carbon(f["carbon"], "carbon")
	return sc
}

// meter decodes one meter entry: a spec string, or {spec: S, host: H}
// to say which machine it measures (a PDU outlet powering another box).
func (p *parser) meter(n *yaml.Node, path string) (spec, host string) {
	if n == nil || n.Kind != yaml.MappingNode {
		return p.str(n, path), ""
	}
	f := p.fields(n, path, "spec", "host")
	if f["spec"] == nil {
		p.add(n, path+".spec", "a meter entry needs spec: (a meter spec such as rapl)")
	}
	return p.str(f["spec"], path+".spec"), p.str(f["host"], path+".host")
}

// targetFields are the fields of a target entry.
var targetFields = []string{"name", "kind", "function", "mode", "required", "host", "options", "inputs"}

func (p *parser) target(n *yaml.Node, path string) Target {
	f := p.fields(n, path, targetFields...)
	t := Target{
		Name:     p.str(f["name"], path+".name"),
		Kind:     p.str(f["kind"], path+".kind"),
		Function: p.str(f["function"], path+".function"),
		Mode:     p.str(f["mode"], path+".mode"),
		Required: p.boolean(f["required"], path+".required"),
		Host:     p.str(f["host"], path+".host"),
		Options:  map[string]any{},
	}
	if n := f["kind"]; n != nil && n.Tag == "!!null" && n.Value == "null" {
		t.Kind = "null" // YAML reads `kind: null` as nothing; it names the null target
	}
	t.Inputs = p.inputs(f["inputs"], path+".inputs")
	if o := f["options"]; o != nil && o.Tag != "!!null" {
		if o.Kind != yaml.MappingNode {
			p.add(o, path+".options", "must be a mapping of option names to values")
		} else {
			t.optionKeys = map[string]*yaml.Node{}
			t.optionValues = map[string]*yaml.Node{}
			for i := 0; i+1 < len(o.Content); i += 2 {
				var v any
				if err := o.Content[i+1].Decode(&v); err != nil {
					p.add(o.Content[i+1], path+".options."+o.Content[i].Value, "%v", err)
				}
				t.Options[o.Content[i].Value] = v
				t.optionKeys[o.Content[i].Value] = o.Content[i]
				t.optionValues[o.Content[i].Value] = o.Content[i+1]
			}
		}
	}
	return t
}

func (p *parser) inputs(n *yaml.Node, path string) []Input {
	var out []Input
	for i, in := range p.list(n, path) {
		ip := fmt.Sprintf("%s[%d]", path, i)
		inf := p.fields(in, ip, "name", "body", "body_file", "path")
		out = append(out, Input{
			Name:     p.str(inf["name"], ip+".name"),
			Body:     p.str(inf["body"], ip+".body"),
			BodyFile: p.str(inf["body_file"], ip+".body_file"),
			Path:     p.str(inf["path"], ip+".path"),
		})
	}
	return out
}

func (p *parser) load(n *yaml.Node, path string) Load {
	f := p.fields(n, path, "request", "stages", "sequential", "inputs", "timeout", "workers")
	l := Load{Timeout: DefaultTimeout}
	rf := p.fields(f["request"], path+".request", "method", "path", "body", "body_file", "headers")
	l.Request = Request{
		Method:   p.str(rf["method"], path+".request.method"),
		Path:     p.str(rf["path"], path+".request.path"),
		Body:     p.str(rf["body"], path+".request.body"),
		BodyFile: p.str(rf["body_file"], path+".request.body_file"),
		Headers:  p.stringMap(rf["headers"], path+".request.headers"),
	}
	if l.Request.Method == "" {
		l.Request.Method = DefaultMethod
	}
	for i, s := range p.list(f["stages"], path+".stages") {
		sp := fmt.Sprintf("%s.stages[%d]", path, i)
		sf := p.fields(s, sp, "rate", "duration")
		st := Stage{}
		st.Rate, _ = p.rateIn(sf["rate"], sp+".rate", MinRate, MaxRate)
		st.Duration, _ = p.durationIn(sf["duration"], sp+".duration", time.Millisecond, MaxPhase)
		l.Stages = append(l.Stages, st)
	}
	if sq := f["sequential"]; sq != nil && sq.Tag != "!!null" {
		sf := p.fields(sq, path+".sequential", "requests", "duration", "pause")
		s := &Sequential{}
		var ok bool
		if s.Requests, ok = p.intIn(sf["requests"], path+".sequential.requests", 1, MaxRequests); !ok && sf["requests"] != nil {
			s.Requests = -1 // given, and reported: not "give requests or duration"
		}
		s.Duration, _ = p.durationIn(sf["duration"], path+".sequential.duration", time.Millisecond, MaxPhase)
		s.Pause, _ = p.durationIn(sf["pause"], path+".sequential.pause", 0, MaxPause)
		l.Sequential = s
	}
	l.Inputs = p.inputs(f["inputs"], path+".inputs")
	if d, ok := p.durationIn(f["timeout"], path+".timeout", MinTimeout, MaxTimeout); ok {
		l.Timeout = d
	}
	if v, ok := p.intIn(f["workers"], path+".workers", 0, MaxWorkers); ok {
		l.Workers = uint64(v)
	}
	return l
}
