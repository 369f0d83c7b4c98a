package scenario

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/validity"
	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/option"
)

// fakeOptions are the fake kind's options, decoded as real kinds do.
func fakeOptions(cpus *float64, ready *time.Duration) option.List {
	return option.List{
		option.Float(cpus, "cpus", 0, math.Inf(1), "CPU limit"),
		option.Duration(ready, "ready_timeout", time.Millisecond, "how long to wait"),
	}
}

func init() {
	targets.Register(targets.Kind{
		Name:    "fake",
		Modes:   []targets.Mode{targets.Cold, targets.Warm},
		Options: fakeOptions(new(float64), new(time.Duration)).Docs(),
		Check: func(s targets.Spec) error {
			return fakeOptions(new(float64), new(time.Duration)).Decode(s.Options)
		},
		New: func(targets.Spec) (targets.Target, error) { return nil, errors.New("not for running") },
		CheckFunction: func(fn, dir string) error {
			if fn == "memes" || fn == "fibonacci" {
				return nil
			}
			return fmt.Errorf("no function %q", fn)
		},
	})
	meters.Register(meters.Driver{Name: "testmeter", Open: func(meters.Spec, meters.Env) (meters.Meter, error) { return nil, nil }})
}

const good = `name: cold
description: a test
repeat: 2
idle: 3s
meters: [auto, testmeter]
targets:
  - name: w
    kind: fake
    function: memes
    mode: cold
    options: {cpus: 1}
load:
  request: {method: post, path: /, body: '{"id": 1}', headers: {Content-Type: application/json}}
  stages:
    - {rate: 50, duration: 10s}
    - {rate: 3000/m, duration: 5s}
`

func TestParseGood(t *testing.T) {
	sc, err := Parse("s.yaml", []byte(good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "cold" || sc.Repeat != 2 || sc.Idle != 3*time.Second || sc.Warmup != DefaultWarmup {
		t.Errorf("scenario = %+v", sc)
	}
	if len(sc.Load.Stages) != 2 || sc.Load.Stages[1].Rate != 50 || sc.Load.Stages[0].Duration != 10*time.Second {
		t.Errorf("stages = %+v", sc.Load.Stages)
	}
	if sc.Load.Request.Method != "POST" || sc.Load.Request.Headers["Content-Type"] != "application/json" {
		t.Errorf("request = %+v", sc.Load.Request)
	}
	if sc.Targets[0].Options["cpus"] != 1 {
		t.Errorf("options = %v", sc.Targets[0].Options)
	}
	if sc.Checks != validity.Warn {
		t.Errorf("checks = %q, want the default %q", sc.Checks, validity.Warn)
	}
	if sc.Load.TotalLoadDuration() != 15*time.Second {
		t.Errorf("total = %v", sc.Load.TotalLoadDuration())
	}
}

// TestHosts: where targets and meters run, as a scenario says it.
func TestHosts(t *testing.T) {
	tests := []struct {
		name       string
		sets       []string
		meterHosts []string
		targetHost string
	}{
		{"nothing said", nil, []string{"", ""}, ""},
		{"a meter's machine and a target's", []string{"meters[1]={spec: testmeter, host: pi.lan}", "targets[0].host=pi.lan"}, []string{"", "pi.lan"}, "pi.lan"},
		{"an address", []string{"meters=[{spec: auto, host: '192.0.2.7'}]"}, []string{"192.0.2.7"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := Parse("s.yaml", []byte(good), tt.sets)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.meterHosts {
				if got := sc.MeterHost(i); got != want {
					t.Errorf("meter %d (%s) host %q, want %q", i, sc.Meters[i], got, want)
				}
			}
			if len(sc.Meters) != len(tt.meterHosts) || sc.Meters[0] != "auto" {
				t.Errorf("meters %q", sc.Meters)
			}
			if sc.Targets[0].Host != tt.targetHost {
				t.Errorf("target host %q, want %q", sc.Targets[0].Host, tt.targetHost)
			}
		})
	}
}

func TestSet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sets  []string
		check func(*Scenario) error
	}{
		{"scalar", []string{"repeat=1", "idle=2s"}, func(s *Scenario) error {
			if s.Repeat != 1 || s.Idle != 2*time.Second {
				return fmt.Errorf("repeat %d idle %v", s.Repeat, s.Idle)
			}
			return nil
		}},
		{"indexed", []string{"load.stages[0].duration=3s"}, func(s *Scenario) error {
			if s.Load.Stages[0].Duration != 3*time.Second {
				return fmt.Errorf("duration %v", s.Load.Stages[0].Duration)
			}
			return nil
		}},
		{"append to a list", []string{"load.stages[2]={rate: 5, duration: 1s}"}, func(s *Scenario) error {
			if len(s.Load.Stages) != 3 || s.Load.Stages[2].Rate != 5 {
				return fmt.Errorf("stages %+v", s.Load.Stages)
			}
			return nil
		}},
		{"flow list", []string{"targets=[{name: a, kind: fake, function: fibonacci}]"}, func(s *Scenario) error {
			if len(s.Targets) != 1 || s.Targets[0].Function != "fibonacci" || s.Targets[0].Mode != "cold" {
				return fmt.Errorf("targets %+v", s.Targets)
			}
			return nil
		}},
		{"new field", []string{"warmup=0s", "meters[0]=testmeter:x"}, func(s *Scenario) error {
			if s.Warmup != 0 || s.Meters[0] != "testmeter:x" {
				return fmt.Errorf("warmup %v meters %v", s.Warmup, s.Meters)
			}
			return nil
		}},
		{"per-target inputs", []string{"load.inputs=[{name: a, body: x}]", "targets[0].inputs=[{name: n=1, body: '{\"n\": 1}'}, {name: n=2, path: /x}]"}, func(s *Scenario) error {
			if len(s.Load.Inputs) != 1 || len(s.Targets[0].Inputs) != 2 || s.Targets[0].Inputs[0].Body != `{"n": 1}` || s.Targets[0].Inputs[1].Path != "/x" {
				return fmt.Errorf("inputs %+v / %+v", s.Load.Inputs, s.Targets[0].Inputs)
			}
			return nil
		}},
		{"defaults: five repetitions in random order", nil, func(s *Scenario) error {
			d, err := Parse("d.yaml", []byte(strings.Replace(good, "repeat: 2\n", "", 1)), nil)
			if err != nil {
				return err
			}
			if d.Repeat != 5 || d.Order != OrderRandom || d.Seed != 0 {
				return fmt.Errorf("repeat %d order %q seed %d", d.Repeat, d.Order, d.Seed)
			}
			return nil
		}},
		{"fixed order", []string{"order=fixed"}, func(s *Scenario) error {
			if s.Order != OrderFixed {
				return fmt.Errorf("order %q", s.Order)
			}
			return nil
		}},
		{"seed", []string{"seed=18446744073709551615"}, func(s *Scenario) error {
			if s.Order != OrderRandom || s.Seed != 18446744073709551615 {
				return fmt.Errorf("order %q seed %d", s.Order, s.Seed)
			}
			return nil
		}},
		{"checks policy", []string{"checks=strict"}, func(s *Scenario) error {
			if s.Checks != validity.Strict {
				return fmt.Errorf("checks %q", s.Checks)
			}
			return nil
		}},
		{"replace by sequential", []string{"load.stages=[]", "load.sequential={requests: 10, pause: 10ms}"}, func(s *Scenario) error {
			if s.Load.Sequential == nil || s.Load.Sequential.Requests != 10 || len(s.Load.Stages) != 0 {
				return fmt.Errorf("load %+v", s.Load)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := Parse("s.yaml", []byte(good), tc.sets)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.check(sc); err != nil {
				t.Error(err)
			}
			if !strings.Contains(string(sc.Source), "name: cold") {
				t.Errorf("source lost: %s", sc.Source)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		sets []string
		want []string // each must appear in the error text
	}{
		{"bad yaml", "name: [x\n", nil, []string{"s.yaml:", "bad YAML"}},
		{"tab in indentation", "name: x\n\tidle: 3s\n", nil, []string{"s.yaml:2:1: bad YAML", "tab"}},
		{"bad indentation", "name: x\nrepeat: 2\n  idle: [3s\n", nil, []string{"s.yaml:3:3: bad YAML"}},
		{"unknown field", strings.Replace(good, "repeat: 2", "repeet: 2", 1), nil, []string{"s.yaml:3:1: repeet: unknown field; allowed here: name,"}},
		{"negative rate", strings.Replace(good, "rate: 50,", "rate: -5,", 1), nil, []string{"s.yaml:15:14: load.stages[0].rate: must be a positive number"}},
		{"unknown kind", strings.Replace(good, "kind: fake", "kind: lambda", 1), nil, []string{"s.yaml:8:11: targets[0].kind: unknown target kind \"lambda\"; allowed: ", "fake"}},
		{"missing function", strings.Replace(good, "function: memes", "function: ghost", 1), nil, []string{"s.yaml:9:15: targets[0].function: no function \"ghost\""}},
		{"several at once", strings.Replace(strings.Replace(good, "repeat: 2", "repeat: 0", 1), "duration: 5s", "duration: soon", 1), nil,
			[]string{`s.yaml:3:9: repeat: must be a whole number from 1 to 1000, got "0"`, "s.yaml:16:32: load.stages[1].duration: must be a duration"}},
		{"bad mode and option", strings.Replace(strings.Replace(good, "mode: cold", "mode: lukewarm", 1), "cpus: 1", "gpus: 1", 1), nil,
			[]string{"targets[0].mode: kind fake has no mode \"lukewarm\"; allowed: cold, warm", "targets[0].options.gpus: unknown option for kind fake; allowed: cpus, ready_timeout"}},
		{"bad option value", strings.Replace(good, "cpus: 1", `cpus: "lots"`, 1), nil,
			[]string{`s.yaml:11:21: targets[0].options.cpus: want a number of at least 0, got "lots"`}},
		{"option values in file order", strings.Replace(good, "cpus: 1", "ready_timeout: 5,\n      cpus: -1", 1), nil,
			[]string{"s.yaml:11:30: targets[0].options.ready_timeout: want a duration like 30s, got 5\n" +
				"s.yaml:12:13: targets[0].options.cpus: want a number of at least 0, got -1"}},
		{"bad option value from --set", good, []string{"targets[0].options.cpus=-2"},
			[]string{"--set targets[0].options.cpus=-2: targets[0].options.cpus: want a number of at least 0, got -2"}},
		{"a target field under options", good, []string{"targets[0].options={required: true}"},
			[]string{"targets[0].options.required: unknown option for kind fake; allowed: cpus, ready_timeout; required is a field of the target, not an option: write it beside kind:"}},
		{"unknown meter", strings.Replace(good, "testmeter]", "wattmeter]", 1), nil, []string{"s.yaml:5:16: meters[1]: unknown meter driver \"wattmeter\""}},
		{"unknown checks policy", strings.Replace(good, "repeat: 2", "repeat: 2\nchecks: sometimes", 1), nil, []string{`s.yaml:4:9: checks: "sometimes" is not a policy; allowed: strict`}},
		{"unknown checks policy by --set", good, []string{"checks=lenient"}, []string{`--set checks=lenient: checks: "lenient" is not a policy`}},
		{"bad set path", good, []string{"load.stages[9].rate=1"}, []string{"--set load.stages[9].rate=1: load.stages[9]: index 9 out of range"}},
		{"bad set value", good, []string{"load.stages[0].rate=-1"}, []string{"--set load.stages[0].rate=-1: load.stages[0].rate: must be a positive number"}},
		{"duplicate input", good, []string{"targets[0].inputs=[{name: a}, {name: a}]"}, []string{`targets[0].inputs[1].name: "a" names two inputs`}},
		{"both load models", good, []string{"load.sequential={requests: 3}"}, []string{"give stages: or sequential:, not both"}},
		{"unknown order", strings.Replace(good, "repeat: 2", "repeat: 2\norder: shuffled", 1), nil, []string{`s.yaml:4:8: order: "shuffled": use random (targets shuffled in each repetition) or fixed (A B A B)`}},
		{"bad seed", strings.Replace(good, "repeat: 2", "repeat: 2\nseed: -1", 1), nil, []string{`s.yaml:4:7: seed: must be a whole number from 0 to 18446744073709551615, got "-1"`}},
		{"meter entry without a spec", good, []string{"meters[1]={host: pi}"}, []string{"meters[1].spec: a meter entry needs spec:"}},
		{"unknown meter in an entry", good, []string{"meters[1]={spec: wattmeter, host: pi}"}, []string{`meters[1].spec: unknown meter driver "wattmeter"`}},
		{"bad meter host", good, []string{"meters[1]={spec: testmeter, host: 'a b'}"}, []string{`meters[1].host: "a b": a host name or address`}},
		{"unknown field of a meter entry", good, []string{"meters[1]={spec: testmeter, where: pi}"}, []string{"meters[1].where: unknown field; allowed here: spec, host"}},
		{"bad target host", strings.Replace(good, "mode: cold", "mode: cold\n    host: http://pi/", 1), nil, []string{`s.yaml:11:11: targets[0].host: "http://pi/": a host name or address`}},
		{"kind: null names the null kind, not nothing", good, []string{"targets[0].kind=null"}, []string{`targets[0].kind: unknown target kind "null"`}},
		{"missing body file", good, []string{"load.request.body=", "load.request.body_file=nope.json"}, []string{"load.request.body_file: cannot read", "nope.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tc.yaml), tc.sets)
			if err == nil {
				t.Fatal("no error")
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want *Errors", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestReadFileResolvesBodyFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "body.json"), []byte(`{"id": 2}`), 0o644)
	path := filepath.Join(dir, "s.yaml")
	os.WriteFile(path, []byte(strings.Replace(good, `body: '{"id": 1}'`, "body_file: body.json", 1)), 0o644)
	sc, err := ReadFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Load.Request.BodyFile != filepath.Join(dir, "body.json") {
		t.Errorf("body_file = %q", sc.Load.Request.BodyFile)
	}
}
