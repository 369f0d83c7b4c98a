package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/scenario"
	"github.com/academemes/harness/harness/internal/validity"
	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/targets"
)

func TestHostName(t *testing.T) {
	self, _ := os.Hostname()
	for in, want := range map[string]string{
		"": "local", "local": "local", "localhost": "local", "127.0.0.2": "local", "[::1]": "local", "::1": "local",
		self: "local", strings.ToUpper(self): "local",
		"Pi.LAN": "pi.lan", "192.0.2.7": "192.0.2.7", "[2001:db8::7]": "2001:db8::7",
	} {
		if got := hostName(in); got != want {
			t.Errorf("hostName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRunRecordsHosts: run.json says where each target ran and what each
// meter measured, and a target on a machine no meter measures makes the
// run invalid.
func TestRunRecordsHosts(t *testing.T) {
	tests := []struct {
		name       string
		sets       []string
		targetHost string
		meterHost  string
		invalid    bool
	}{
		{"all here", nil, "local", "local", false},
		{"target elsewhere, meter here", []string{"targets[0].host=pi.lan"}, "pi.lan", "local", true},
		{"both on the machine under test", []string{"targets[0].host=pi.lan", "meters=[{spec: fake, host: PI.lan}]"}, "pi.lan", "pi.lan", false},
		{"meter elsewhere, target here", []string{"meters=[{spec: fake, host: '192.0.2.7'}]"}, "local", "192.0.2.7", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sets := append([]string{"repeat=1", "idle=20ms", "warmup=0s", "cooldown=0s", "load.stages[0].duration=100ms",
				"targets=[{name: a, kind: fake, function: memes}]"}, tt.sets...)
			sc := parse(t, scenarioYAML, sets...)
			res, err := Run(context.Background(), sc, Options{RunsDir: t.TempDir(), Log: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			run, err := runstore.Load(res.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := run.Meta.Targets[0].Host; got != tt.targetHost {
				t.Errorf("target host %q, want %q", got, tt.targetHost)
			}
			if got := run.Meta.Meters[0].Host; got != tt.meterHost {
				t.Errorf("meter host %q, want %q", got, tt.meterHost)
			}
			found := false
			for _, p := range run.Meta.Validity.Problems {
				found = found || p.Check == validity.CheckHost
			}
			if found != tt.invalid {
				t.Errorf("measured_host problem: %v, want %v; validity %+v", found, tt.invalid, run.Meta.Validity)
			}
		})
	}
}

// TestTargetHost: the scenario's host: wins, else the kind says from its
// options (as wasm does with options.remote), else this machine.
func TestTargetHost(t *testing.T) {
	targets.Register(targets.Kind{Name: "fakeremote", Modes: []targets.Mode{targets.Warm},
		Host: func(s targets.Spec) string { h, _ := s.Options["remote"].(string); return h }})
	tests := []struct {
		name string
		ts   scenario.Target
		want string
	}{
		{"nothing said", scenario.Target{Kind: "fakeremote"}, "local"},
		{"the kind says", scenario.Target{Kind: "fakeremote", Options: map[string]any{"remote": "Pi.lan"}}, "pi.lan"},
		{"the kind says loopback", scenario.Target{Kind: "fakeremote", Options: map[string]any{"remote": "127.0.0.1"}}, "local"},
		{"the scenario wins", scenario.Target{Kind: "fakeremote", Host: "box", Options: map[string]any{"remote": "pi.lan"}}, "box"},
		{"a kind without Host", scenario.Target{Kind: "fake", Options: map[string]any{"remote": "pi.lan"}}, "local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := targetHost(tt.ts, targets.Spec{Kind: tt.ts.Kind, Options: tt.ts.Options}); got != tt.want {
				t.Errorf("targetHost = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMeterErrorKeepsTheTokenOut: a meter that cannot be opened fails the
// run with its spec in the message, its token masked.
func TestMeterErrorKeepsTheTokenOut(t *testing.T) {
	meters.Register(meters.Driver{Name: "refusing", Open: func(meters.Spec, meters.Env) (meters.Meter, error) {
		return nil, fmt.Errorf("%w: refused the token", meters.ErrPermission)
	}})
	sc := parse(t, scenarioYAML, "meters=['refusing:pi:9190?token=s3cret']")
	var log strings.Builder
	res, err := Run(context.Background(), sc, Options{RunsDir: t.TempDir(), Log: &log})
	if err == nil || !strings.Contains(err.Error(), "refusing:pi:9190?token=***: ") {
		t.Fatalf("error %v, want the spec with its token masked", err)
	}
	raw, _ := os.ReadFile(filepath.Join(res.Dir, runstore.RunFile))
	src, _ := os.ReadFile(filepath.Join(res.Dir, runstore.ScenarioFile))
	if !strings.Contains(string(src), "token=***") {
		t.Errorf("scenario.yaml:\n%s\nwant the meter with its token masked", src)
	}
	for what, s := range map[string]string{"error": err.Error(), "log": log.String(), "run.json": string(raw), "scenario.yaml": string(src)} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("the token appears in the %s", what)
		}
	}
}
