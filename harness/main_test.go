package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, exitUsage, "Commands:"},
		{"help", []string{"--help"}, exitOK, "harness run"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"run help", []string{"run", "--help"}, exitOK, "Usage: harness run SCENARIO"},
		{"run without scenario", []string{"run"}, exitUsage, "give exactly one scenario file"},
		{"run bad flag", []string{"run", "--bogus", "x.yaml"}, exitUsage, "flag provided but not defined"},
		{"version", []string{"version"}, exitOK, "harness "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(out+errs, tc.want) {
				t.Errorf("exit %d (want %d), output:\n%s%s\nwant containing %q", code, tc.code, out, errs, tc.want)
			}
		})
	}
}

// TestBrokenScenarios checks that each kind of mistake exits 2 and names
// file:line:col.
func TestBrokenScenarios(t *testing.T) {
	good, err := os.ReadFile("../scenarios/coldstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		from, to string
		want     string // a regexp
	}{
		{"bad YAML", "targets:", "targets: [", `bad\.yaml:[1-9]\d*:[1-9]\d*: bad YAML`},
		{"unknown field", "repeat: 5", "repeats: 5", `bad\.yaml:\d+:1: repeats: unknown field`},
		{"negative rate", "rate: 2,", "rate: -2,", `bad\.yaml:\d+:\d+: load\.stages\[0\]\.rate: must be a positive`},
		{"missing function file", "function: memes\n    mode: cold\n  - name: wasm-snapshot", "function: ./nowhere/ghost.wasm\n    mode: cold\n  - name: wasm-snapshot", `bad\.yaml:\d+:\d+: targets\[0\]\.function: .*ghost`},
		{"unknown target kind", "kind: docker-node", "kind: lambda", `bad\.yaml:\d+:\d+: targets\[2\]\.kind: unknown target kind "lambda"`},
		{"bad meter option", "meters: [auto]", "meters: [auto, \"rapl:rate=fast\"]", `bad\.yaml:21:\d+: meters\[1\]: bad meter spec "rapl:rate=fast": rate="fast"`},
		{"meter without its device", "meters: [auto]", "meters: [powersensor3]", `bad\.yaml:21:\d+: meters\[0\]: .*needs a device path`},
		// Snapshot is a mode of the wasm kind only: a container or a
		// gateway has no memory to restore.
		{"snapshot for docker-node", "kind: docker-node\n    function: memes\n    mode: cold", "kind: docker-node\n    function: memes\n    mode: snapshot",
			`bad\.yaml:34:11: targets\[2\]\.mode: kind docker-node has no mode "snapshot"; allowed: cold, warm`},
		{"snapshot for openfaas", "kind: openfaas\n    function: memes\n    mode: cold", "kind: openfaas\n    function: memes\n    mode: snapshot",
			`bad\.yaml:38:11: targets\[3\]\.mode: kind openfaas has no mode "snapshot"; allowed: warm, cold`},
		{"snapshot for null", "kind: openfaas\n    function: memes\n    mode: cold", "kind: \"null\"\n    function: memes\n    mode: snapshot",
			`bad\.yaml:38:11: targets\[3\]\.mode: kind null has no mode "snapshot"; allowed: warm`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(good, []byte(tc.from)) {
				t.Fatalf("coldstart.yaml no longer contains %q", tc.from)
			}
			path := filepath.Join(t.TempDir(), "bad.yaml")
			os.WriteFile(path, bytes.Replace(good, []byte(tc.from), []byte(tc.to), 1), 0o644)
			code, _, errs := runCLI(t, "run", path, "--runs", t.TempDir())
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !regexp.MustCompile(tc.want).MatchString(errs) {
				t.Errorf("stderr:\n%s\nwant matching %s", errs, tc.want)
			}
		})
	}
}

// TestCheckOptionValues: `harness run --check` reports a bad target
// option value, or an option that belongs to the target itself, with its
// file:line:col (or its --set), kind by kind.
func TestCheckOptionValues(t *testing.T) {
	good, err := os.ReadFile("../scenarios/coldstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		from, to string
		sets     []string
		want     string
	}{
		{"a word for a number", "mode: cold\n  - name: wasm-snapshot", "mode: cold\n    options: {concurrency: \"lots\"}\n  - name: wasm-snapshot", nil,
			`bad.yaml:27:28: targets[0].options.concurrency: want a whole number of at least 1, got "lots"`},
		{"a bare number for a duration", "kind: docker-node\n    function: memes\n    mode: cold", "kind: docker-node\n    function: memes\n    mode: cold\n    options:\n      ready_timeout: 5", nil,
			"bad.yaml:36:22: targets[2].options.ready_timeout: want a duration like 30s, got 5"},
		{"required under options", "kind: openfaas\n    function: memes\n    mode: cold", "kind: openfaas\n    function: memes\n    mode: cold\n    options: {required: true}", nil,
			"bad.yaml:39:15: targets[3].options.required: unknown option for kind openfaas; allowed: cold_start_method, env, gateway, image, image_source, namespace, password, ready_timeout, secrets_dir, service, username; required is a field of the target, not an option: write it beside kind:"},
		{"a bad value from --set", "", "", []string{"targets[0].options.pool=0"},
			"--set targets[0].options.pool=0: targets[0].options.pool: want a whole number of at least 1, got 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(good, []byte(tc.from)) {
				t.Fatalf("coldstart.yaml no longer contains %q", tc.from)
			}
			path := filepath.Join(t.TempDir(), "bad.yaml")
			os.WriteFile(path, bytes.Replace(good, []byte(tc.from), []byte(tc.to), 1), 0o644)
			args := []string{"run", path, "--check"}
			for _, s := range tc.sets {
				args = append(args, "--set", s)
			}
			code, _, errs := runCLI(t, args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr:\n%s\nwant containing\n%s", errs, tc.want)
			}
		})
	}
}

// TestRunColdstartShort is the spine end to end: the short form of the
// main scenario writes every file of the run directory and a report with a
// non-zero joules per request for each Wasm target, cold and snapshot,
// every request of which paid a start.
func TestRunColdstartShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole scenario")
	}
	runs, reports := t.TempDir(), t.TempDir()
	code, out, errs := runCLI(t, "run", "../scenarios/coldstart.yaml",
		"--set", "repeat=1", "--set", "idle=2s", "--set", "warmup=1s", "--set", "cooldown=1s",
		"--set", "load.stages[0].duration=3s", "--runs", runs, "--reports", reports)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	dirs, _ := filepath.Glob(filepath.Join(runs, "*-coldstart"))
	if len(dirs) != 1 {
		t.Fatalf("run directories: %v", dirs)
	}
	for _, f := range []string{"scenario.yaml", "run.json", "requests.csv", "samples.csv", "summary.json"} {
		if st, err := os.Stat(filepath.Join(dirs[0], f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	html, _ := filepath.Glob(filepath.Join(reports, "*-coldstart.html"))
	if len(html) != 1 || !strings.Contains(out, html[0]) {
		t.Errorf("report %v not named in the output:\n%s", html, out)
	}
	if _, err := os.Stat(filepath.Join(reports, "index.html")); err != nil {
		t.Errorf("index.html: %v", err)
	}
	var meta struct {
		Status string `json:"status"`
	}
	data, _ := os.ReadFile(filepath.Join(dirs[0], "run.json"))
	if err := json.Unmarshal(data, &meta); err != nil || meta.Status != "complete" {
		t.Errorf("run.json status %q (%v)", meta.Status, err)
	}
	var summary struct {
		Targets []struct {
			Name   string `json:"name"`
			Mode   string `json:"mode"`
			Phases []struct {
				Phase      string `json:"phase"`
				Successes  int    `json:"successes"`
				ColdStarts int    `json:"cold_starts"`
				Energy     []struct {
					Meter       string `json:"meter"`
					Estimate    bool   `json:"estimate"`
					JPerRequest struct {
						Value float64 `json:"value"`
					} `json:"j_per_request"`
				} `json:"energy"`
			} `json:"phases"`
		} `json:"targets"`
	}
	data, _ = os.ReadFile(filepath.Join(dirs[0], "summary.json"))
	if err := json.Unmarshal(data, &summary); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	for _, want := range []struct{ name, mode string }{{"wasm", "cold"}, {"wasm-snapshot", "snapshot"}} {
		found := false
		for _, tg := range summary.Targets {
			if tg.Name != want.name {
				continue
			}
			if tg.Mode != want.mode {
				t.Errorf("%s ran in mode %q, want %q", tg.Name, tg.Mode, want.mode)
			}
			for _, ph := range tg.Phases {
				if ph.Phase != "load" {
					continue
				}
				// A fresh instance per request, whether it starts the
				// runtime or restores a snapshot: every request says so.
				if ph.Successes == 0 || ph.ColdStarts < ph.Successes {
					t.Errorf("%s load: %d cold starts for %d successful requests, want one each", tg.Name, ph.ColdStarts, ph.Successes)
				}
				for _, e := range ph.Energy {
					if e.Meter != "" {
						found = true
						if !(e.JPerRequest.Value > 0) {
							t.Errorf("%s joules per request from %s = %v, want > 0", tg.Name, e.Meter, e.JPerRequest.Value)
						}
					}
				}
			}
		}
		if !found {
			t.Errorf("summary.json has no energy figure for %s's load phase:\n%s", want.name, data)
		}
		if !strings.Contains(out, want.name) {
			t.Errorf("summary table lacks %s:\n%s", want.name, out)
		}
	}
}

// TestScenariosValidate keeps every scenario the project ships valid.
func TestScenariosValidate(t *testing.T) {
	files, _ := filepath.Glob("../scenarios/*.yaml")
	if len(files) < 4 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if code, out, errs := runCLI(t, "run", f, "--check"); code != exitOK || !strings.Contains(out, ": ok") {
				t.Errorf("exit %d\n%s%s", code, out, errs)
			}
		})
	}
}
