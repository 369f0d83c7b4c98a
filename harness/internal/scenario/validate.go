package scenario

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/harness/internal/validity"
	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/option"
)

// safeName is what names may hold: they become parts of file names and CSV
// fields.
var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// hostName is what a host: may hold: a name, an IPv4 or IPv6 address.
var hostName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

var methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// validate checks the decoded scenario and records every problem with the
// position of the node it concerns.
func (p *parser) validate(sc *Scenario, root *yaml.Node) {
	at := func(path string) *yaml.Node { return lookup(root, path) }
	if sc.Name == "" {
		base := filepath.Base(sc.File)
		sc.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if !safeName.MatchString(sc.Name) {
		p.add(at("name"), "name", "%q: use letters, digits, '.', '_' and '-' (it names the run directory)", sc.Name)
	}
	if sc.Repeat < 1 {
		p.add(at("repeat"), "repeat", "must be at least 1, got %d", sc.Repeat)
	}
	if sc.Order != OrderRandom && sc.Order != OrderFixed {
		p.add(at("order"), "order", "%q: use %s (targets shuffled in each repetition) or %s (A B A B)", sc.Order, OrderRandom, OrderFixed)
	}
	for key, d := range map[string]int64{"idle": int64(sc.Idle), "warmup": int64(sc.Warmup), "cooldown": int64(sc.Cooldown)} {
		if d < 0 {
			p.add(at(key), key, "must not be negative")
		}
	}
	if !slices.Contains(validity.Policies, sc.Checks) {
		p.add(at("checks"), "checks", "%q is not a policy; allowed: strict (refuse a busy machine, fail an invalid run), warn (mark it), off", sc.Checks)
	}
	if len(sc.Meters) == 0 {
		p.add(at("meters"), "meters", "needs at least one meter spec, such as auto")
	}
	for i, m := range sc.Meters {
		path := fmt.Sprintf("meters[%d]", i)
		if h := sc.MeterHost(i); h != "" && !hostName.MatchString(h) {
			p.add(orAt(at, path+".host", path), path+".host", "%q: a host name or address (pi.lan, 192.0.2.7), the same as the targets' host:", h)
		}
		if at(path) != nil && at(path).Kind == yaml.MappingNode {
			path += ".spec"
		}
		sp, err := meters.ParseSpec(m)
		if err != nil {
			p.add(at(path), path, "%v", err)
			continue
		}
		if sp.Driver == "auto" {
			if err := sp.CheckAuto(); err != nil {
				p.add(at(path), path, "%v", err)
			}
			continue
		}
		d, ok := meters.Lookup(sp.Driver)
		if !ok {
			var known []string
			for _, d := range meters.Drivers() {
				known = append(known, d.Name)
			}
			p.add(at(path), path, "unknown meter driver %q; allowed: auto, %s", sp.Driver, strings.Join(known, ", "))
			continue
		}
		if d.Check != nil {
			if err := d.Check(sp); err != nil {
				p.add(at(path), path, "%v; usage: %s", err, d.Usage)
			}
		}
	}
	p.validateTargets(sc, at)
	p.validateLoad(sc, at)
}

func (p *parser) validateTargets(sc *Scenario, at func(string) *yaml.Node) {
	if len(sc.Targets) == 0 {
		p.add(at("targets"), "targets", "needs at least one target, e.g. {name: wasm, kind: wasm, function: memes, mode: cold}")
	}
	seen := map[string]bool{}
	for i := range sc.Targets {
		t := &sc.Targets[i]
		path := fmt.Sprintf("targets[%d]", i)
		switch {
		case t.Name == "":
			p.add(at(path), path+".name", "every target needs a name")
		case !safeName.MatchString(t.Name):
			p.add(at(path+".name"), path+".name", "%q: use letters, digits, '.', '_' and '-'", t.Name)
		case seen[t.Name]:
			p.add(at(path+".name"), path+".name", "%q names two targets", t.Name)
		}
		seen[t.Name] = true
		if t.Host != "" && !hostName.MatchString(t.Host) {
			p.add(at(path+".host"), path+".host", "%q: a host name or address (pi.lan, 192.0.2.7), the same as the meters' host:", t.Host)
		}
		kind, ok := targets.Lookup(t.Kind)
		if !ok {
			where := at(path + ".kind")
			if where == nil {
				where = at(path)
			}
			p.add(where, path+".kind", "unknown target kind %q; allowed: %s", t.Kind, strings.Join(targets.KindNames(), ", "))
			continue
		}
		if t.Mode == "" && len(kind.Modes) > 0 {
			t.Mode = string(kind.Modes[0])
		}
		if !modeAllowed(kind, t.Mode) {
			var ms []string
			for _, m := range kind.Modes {
				ms = append(ms, string(m))
			}
			p.add(at(path+".mode"), path+".mode", "kind %s has no mode %q; allowed: %s", t.Kind, t.Mode, strings.Join(ms, ", "))
		}
		if t.Function == "" {
			p.add(at(path), path+".function", "every target needs a function (e.g. memes)")
		} else {
			check := kind.CheckFunction
			if check == nil {
				check = checkFunction
			}
			if err := check(t.Function, sc.Dir); err != nil {
				p.add(at(path+".function"), path+".function", "%v", err)
			}
		}
		for key, kn := range t.optionKeys {
			if _, ok := kind.Options[key]; !ok {
				var allowed []string
				for k := range kind.Options {
					allowed = append(allowed, k)
				}
				sortStrings(allowed)
				list := "none"
				if len(allowed) > 0 {
					list = strings.Join(allowed, ", ")
				}
				msg := fmt.Sprintf("unknown option for kind %s; allowed: %s", t.Kind, list)
				if contains(targetFields, key) {
					msg += fmt.Sprintf("; %s is a field of the target, not an option: write it beside kind:", key)
				}
				p.add(kn, path+".options."+key, "%s", msg)
			}
		}
		p.checkOptions(kind, t, path, at)
	}
}

// checkOptions reports the bad option values that the kind's Check finds,
// each at its value's file:line:col.
func (p *parser) checkOptions(kind targets.Kind, t *Target, path string, at func(string) *yaml.Node) {
	if kind.Check == nil {
		return
	}
	err := kind.Check(targets.Spec{Name: t.Name, Kind: t.Kind, Function: t.Function, Mode: targets.Mode(t.Mode), Options: t.Options})
	for _, e := range option.Errors(err) {
		var oe *option.Error
		if !errors.As(e, &oe) {
			p.add(orAt(at, path+".options", path), path+".options", "%v", e)
			continue
		}
		if _, known := kind.Options[oe.Key]; !known {
			continue // reported above, with the keys allowed
		}
		n := t.optionValues[oe.Key]
		if n == nil {
			n = orAt(at, path+".options", path)
		}
		p.add(n, path+".options."+oe.Key, "%v", oe.Err)
	}
}

// checkFunction is the check for kinds that do not bring their own: a
// function is the name of a function of the project (functions/<name>/),
// never a path. Every kind looks its function up by name at run time, so
// a path (../../../etc/passwd) passed the check and failed the run.
func checkFunction(fn, baseDir string) error {
	names, err := functions.Names(functions.FS())
	if err != nil {
		return err
	}
	if !functions.ValidName(fn) {
		return fmt.Errorf("%q is not a function name (1 to 64 letters, digits, '-' and '_'; a function is named, not a path); the project has: %s", fn, strings.Join(names, ", "))
	}
	if !contains(names, fn) {
		return fmt.Errorf("no function %q; the project has: %s", fn, strings.Join(names, ", "))
	}
	return nil
}

func modeAllowed(k targets.Kind, m string) bool {
	for _, km := range k.Modes {
		if string(km) == m {
			return true
		}
	}
	return false
}

func (p *parser) validateLoad(sc *Scenario, at func(string) *yaml.Node) {
	l := &sc.Load
	if at("load") == nil {
		p.add(nil, "load", "missing: a scenario needs load: with stages: or sequential:")
		return
	}
	method := strings.ToUpper(l.Request.Method)
	if !contains(methods, method) {
		p.add(at("load.request.method"), "load.request.method", "%q is not an HTTP method; allowed: %s", l.Request.Method, strings.Join(methods, ", "))
	}
	l.Request.Method = method
	p.bodyFile(sc, at, "load.request", l.Request.Body, &l.Request.BodyFile)
	p.requestPath(at, "load.request.path", l.Request.Path)
	for _, k := range sortedKeys(l.Request.Headers) {
		if err := checkHeader(k, l.Request.Headers[k]); err != nil {
			path := "load.request.headers." + k
			p.add(orAt(at, path, "load.request.headers"), path, "%v", err)
		}
	}
	switch {
	case len(l.Stages) == 0 && l.Sequential == nil:
		p.add(at("load"), "load", "needs stages: [{rate, duration}] (open model) or sequential: {requests or duration, pause}")
	case len(l.Stages) > 0 && l.Sequential != nil:
		p.add(at("load.sequential"), "load", "give stages: or sequential:, not both")
	}
	for i, s := range l.Stages {
		path := fmt.Sprintf("load.stages[%d]", i)
		if s.Rate <= 0 {
			p.add(orAt(at, path+".rate", path), path+".rate", "must be a positive number of requests per second, got %s", strconv.FormatFloat(s.Rate, 'g', -1, 64))
		}
		if s.Duration <= 0 {
			p.add(orAt(at, path+".duration", path), path+".duration", "must be a positive duration such as 30s")
		}
	}
	if s := l.Sequential; s != nil {
		switch {
		case s.Requests < 0:
			p.add(at("load.sequential.requests"), "load.sequential.requests", "must be positive, got %d", s.Requests)
		case s.Duration < 0:
			p.add(at("load.sequential.duration"), "load.sequential.duration", "must be positive")
		case (s.Requests > 0) == (s.Duration > 0):
			p.add(at("load.sequential"), "load.sequential", "give requests: N or duration: D (one of them)")
		}
		if s.Pause < 0 {
			p.add(at("load.sequential.pause"), "load.sequential.pause", "must not be negative")
		}
	}
	p.validateInputs(sc, at, "load.inputs", l.Inputs)
	for i := range sc.Targets {
		p.validateInputs(sc, at, fmt.Sprintf("targets[%d].inputs", i), sc.Targets[i].Inputs)
	}
	if l.Timeout <= 0 {
		p.add(at("load.timeout"), "load.timeout", "must be a positive duration")
	}
}

func (p *parser) validateInputs(sc *Scenario, at func(string) *yaml.Node, base string, inputs []Input) {
	seen := map[string]bool{}
	for i := range inputs {
		in := &inputs[i]
		path := fmt.Sprintf("%s[%d]", base, i)
		if in.Name == "" || !safeName.MatchString(strings.ReplaceAll(in.Name, "=", "-")) {
			p.add(orAt(at, path+".name", path), path+".name", "every input needs a name of letters, digits, '=', '.', '_' and '-', got %q", in.Name)
		} else if seen[in.Name] {
			p.add(at(path+".name"), path+".name", "%q names two inputs", in.Name)
		}
		seen[in.Name] = true
		p.bodyFile(sc, at, path, in.Body, &in.BodyFile)
		p.requestPath(at, path+".path", in.Path)
	}
}

// bodyFile checks body/body_file and resolves body_file against the
// scenario's directory.
func (p *parser) bodyFile(sc *Scenario, at func(string) *yaml.Node, path, body string, file *string) {
	if *file == "" {
		return
	}
	if body != "" {
		p.add(at(path+".body_file"), path+".body_file", "give body: or body_file:, not both")
	}
	resolved, err := checkFile(sc.Dir, *file, MaxBodyBytes)
	*file = resolved
	if err != nil {
		p.add(at(path+".body_file"), path+".body_file", "%v", err)
	}
}

// requestPath checks a path appended to the targets' URLs.
func (p *parser) requestPath(at func(string) *yaml.Node, path, value string) {
	if err := checkRequestPath(value); err != nil {
		p.add(at(path), path, "%q %v", value, err)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func orAt(at func(string) *yaml.Node, path, fallback string) *yaml.Node {
	if n := at(path); n != nil {
		return n
	}
	return at(fallback)
}

// lookup finds the node at a dotted path with [i] indexes; nil if absent.
func lookup(root *yaml.Node, path string) *yaml.Node {
	n := root
	for _, step := range splitPath(path) {
		if n == nil {
			return nil
		}
		if step.index >= 0 {
			if n.Kind != yaml.SequenceNode || step.index >= len(n.Content) {
				return nil
			}
			n = n.Content[step.index]
			continue
		}
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == step.key {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
