package openfaas

import (
	"context"
	"errors"
	"fmt"
	"github.com/academemes/harness/targets/internal/dockertest"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/openfaas/internal/faastest"
)

// echoJS counts requests per process, so a response says whether it came
// from a fresh process (a cold start) or a warm one.
const echoJS = `let n = 0;
module.exports = (req) => {
  n++;
  return {status: 200, headers: {'Content-Type': 'text/plain'}, body: 'echo ' + n + ' ' + req.path};
};
`

const (
	testUser = "admin"
	testPass = "test-password"
	testRun  = "test-openfaas"
)

// functionsDir writes the test function tree.
func functionsDir(t testing.TB) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "echo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "echo", "index.js"), []byte(echoJS), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// standIn starts the stand-in provider and checks at the end that it left
// no container behind.
func standIn(t testing.TB, cli *client.Client, refuseZero bool) *faastest.Provider {
	t.Helper()
	p, err := faastest.Start(faastest.Config{Docker: cli, User: testUser, Password: testPass, RefuseZero: refuseZero, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("closing stand-in provider: %v", err)
		}
		ids, err := p.Containers(context.Background())
		if err != nil {
			t.Error(err)
		}
		if len(ids) > 0 {
			t.Errorf("containers left behind: %q", ids)
		}
	})
	return p
}

func newTarget(t testing.TB, p *faastest.Provider, dir string, mode targets.Mode, opts map[string]any) *Target {
	t.Helper()
	o := map[string]any{"gateway": p.URL.String(), "username": testUser, "password": testPass,
		"image_source": "local-node", "ready_timeout": "20s"}
	for k, v := range opts {
		o[k] = v
	}
	tg, err := New(targets.Spec{Name: "of-" + string(mode), Kind: Kind, Function: "echo", Mode: mode,
		Options: o, FunctionsDir: dir, RunID: testRun, Logf: t.Logf}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tg.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return tg
}

// get sends one request and returns the body and headers.
func get(t testing.TB, u string) (string, http.Header) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
	}
	return string(b), resp.Header
}

func TestDeployInvokeAndColdStarts(t *testing.T) {
	cli := dockertest.Engine(t)
	dir := functionsDir(t)
	tests := []struct {
		name       string
		refuseZero bool
		method     string // option cold_start_method; "" is auto
		wantMethod string
		wantRefuse bool
	}{
		{name: "scale to zero", wantMethod: MethodScaleToZero},
		{name: "refused zero falls back to removing the container", refuseZero: true, wantMethod: MethodRemoveContainer, wantRefuse: true},
		{name: "redeploy", refuseZero: true, method: MethodRedeploy, wantMethod: MethodRedeploy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := standIn(t, cli, tc.refuseZero)
			opts := map[string]any{}
			if tc.method != "" {
				opts["cold_start_method"] = tc.method
			}
			tg := newTarget(t, p, dir, targets.Warm, opts)
			ctx := context.Background()
			if err := tg.Start(ctx); err != nil {
				t.Fatal(err)
			}
			u := tg.URL().String()
			if want := p.URL.String() + "/function/" + tg.service; u != want {
				t.Errorf("URL %s, want %s", u, want)
			}
			for i := 1; i <= 2; i++ {
				if body, _ := get(t, u+"/x"); body != fmt.Sprintf("echo %d /x", i) {
					t.Errorf("warm request %d: %q", i, body)
				}
			}
			for r := 0; r < 2; r++ {
				if err := tg.Reset(ctx); err != nil {
					t.Fatal(err)
				}
				if body, _ := get(t, u+"/y"); body != "echo 1 /y" {
					t.Errorf("after Reset %d: %q, want a fresh process", r, body)
				}
			}
			// The runner resets after a repetition and again before the
			// next: a function already cold stays so without complaint.
			for r := 0; r < 2; r++ {
				if err := tg.Reset(ctx); err != nil {
					t.Fatalf("reset %d in a row: %v", r+1, err)
				}
			}
			if body, _ := get(t, u+"/y"); body != "echo 1 /y" {
				t.Errorf("after two Resets: %q, want a fresh process", body)
			}
			rep := tg.Report()
			if rep["cold_start_method"] != tc.wantMethod || rep["image_form"] != FormOwnServer || rep["resets"] != 4 {
				t.Errorf("report: %v", rep)
			}
			if _, refused := rep["scale_to_zero_refused"]; refused != tc.wantRefuse {
				t.Errorf("report scale_to_zero_refused present = %v, want %v: %v", refused, tc.wantRefuse, rep)
			} else if refused && !strings.Contains(rep["scale_to_zero_refused"].(string), faastest.RefuseZeroMessage) {
				t.Errorf("refusal does not quote the installation: %v", rep["scale_to_zero_refused"])
			}
			if err := tg.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := tg.api.Status(ctx, tg.service); !errors.Is(err, ErrNotFound) {
				t.Errorf("function still there after Stop: %v", err)
			}
		})
	}
}

func TestClean(t *testing.T) {
	cli := dockertest.Engine(t)
	p := standIn(t, cli, false)
	tg := newTarget(t, p, functionsDir(t), targets.Warm, nil)
	ctx := context.Background()
	if err := tg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// A crash: the target is never stopped.
	t.Setenv(EnvURL, p.URL.String())
	t.Setenv(EnvUsername, testUser)
	t.Setenv(EnvPassword, testPass)
	if got, err := Clean(ctx, targets.CleanOptions{RunID: "another-run"}); err != nil || len(got) != 0 {
		t.Errorf("Clean of another run: %+v, %v", got, err)
	}
	// A dry run lists the function and leaves it.
	got, err := Clean(ctx, targets.CleanOptions{DryRun: true})
	if err != nil || len(got) != 1 || got[0].Name != tg.service || got[0].Run != testRun {
		t.Errorf("Clean dry run: %+v, %v; want [%s] of run %s", got, err, tg.service, testRun)
	}
	if _, err := tg.api.Status(ctx, tg.service); err != nil {
		t.Errorf("a dry run removed the function: %v", err)
	}
	// The run is this process, still going: the function is kept, and
	// the reason says so.
	got, err = Clean(ctx, targets.CleanOptions{})
	if err != nil || len(got) != 1 || got[0].Owner != targets.Self() || !strings.Contains(got[0].Kept, "its run is still going") {
		t.Errorf("Clean while the run goes: %+v, %v; want [%s] kept, owned by this process", got, err, tg.service)
	}
	if _, err := tg.api.Status(ctx, tg.service); err != nil {
		t.Errorf("Clean removed the function of a run still going: %v", err)
	}
	got, err = Clean(ctx, targets.CleanOptions{All: true})
	if err != nil || len(got) != 1 || got[0].Name != tg.service || got[0].Kept != "" {
		t.Errorf("Clean --all: %+v, %v; want [%s] removed", got, err, tg.service)
	}
	if _, err := tg.api.Status(ctx, tg.service); !errors.Is(err, ErrNotFound) {
		t.Errorf("function still there after Clean: %v", err)
	}
}

func TestColdMode(t *testing.T) {
	cli := dockertest.Engine(t)
	dir := functionsDir(t)
	for _, method := range []string{MethodScaleToZero, MethodRemoveContainer, MethodRedeploy} {
		t.Run(method, func(t *testing.T) {
			// remove-container is what auto takes on faasd CE, which
			// refuses zero replicas.
			p := standIn(t, cli, method == MethodRemoveContainer)
			tg := newTarget(t, p, dir, targets.Cold, map[string]any{"cold_start_method": method})
			if err := tg.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				if i < 2 {
					// The runner resets before and after every repetition,
					// while the front has already left the function cold:
					// that is no error, and it must not overlap the front's
					// own teardown.
					for r := 0; r < 2; r++ {
						if err := tg.Reset(context.Background()); err != nil {
							t.Fatalf("request %d, reset %d: %v", i, r, err)
						}
					}
				}
				body, h := get(t, tg.URL().String()+"/z")
				if body != "echo 1 /z" || h.Get(targets.HeaderColdStart) != "1" {
					t.Errorf("request %d: %q, cold header %q", i, body, h.Get(targets.HeaderColdStart))
				}
				if hasStart := h.Get(targets.HeaderStartNs) != ""; hasStart != (method == MethodRedeploy) {
					t.Errorf("request %d: X-Start-Ns %q", i, h.Get(targets.HeaderStartNs))
				}
			}
			// The runner reports after Stop: the front's counters stay.
			if err := tg.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if rep := tg.Report(); rep["cold_requests"] != 3 {
				t.Errorf("report after Stop: cold_requests %v (%T), want 3", rep["cold_requests"], rep["cold_requests"])
			}
		})
	}
}

func TestStandInFailures(t *testing.T) {
	cli := dockertest.Engine(t)
	dir := functionsDir(t)
	tests := []struct {
		name     string
		opts     map[string]any
		wantIs   error
		wantText string
	}{
		{"wrong password", map[string]any{"password": "nope"}, ErrAuth, "refused the credentials"},
		{"never ready", map[string]any{"ready_timeout": "3s", "env": map[string]any{"FUNCTION_PATH": "/nonexistent.js"}}, nil, "never became ready"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := standIn(t, cli, false)
			tg := newTarget(t, p, dir, targets.Warm, tc.opts)
			err := tg.Start(context.Background())
			if err == nil {
				t.Fatal("Start succeeded")
			}
			// The platform is there: the run fails rather than skip it.
			if errors.Is(err, targets.ErrUnavailable) {
				t.Errorf("skippable (ErrUnavailable): %v", err)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("not %v: %v", tc.wantIs, err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error lacks %q: %v", tc.wantText, err)
			}
		})
	}
}

// TestRealInstallation runs against a real OpenFaaS gateway when
// OPENFAAS_TEST_URL names one (credentials from OPENFAAS_USERNAME and
// OPENFAAS_PASSWORD, an image it can pull from OPENFAAS_TEST_IMAGE).
func TestRealInstallation(t *testing.T) {
	gw := os.Getenv("OPENFAAS_TEST_URL")
	if gw == "" {
		t.Skip("OPENFAAS_TEST_URL not set: no real OpenFaaS installation to test against")
	}
	opts := map[string]any{"gateway": gw}
	if im := os.Getenv("OPENFAAS_TEST_IMAGE"); im != "" {
		opts["image"] = im
	}
	tg, err := New(targets.Spec{Name: "of-real", Kind: Kind, Function: "echo", Mode: targets.Warm,
		Options: opts, FunctionsDir: functionsDir(t), RunID: testRun, Logf: t.Logf}, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Stop(context.Background())
	ctx := context.Background()
	if err := tg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	get(t, tg.URL().String())
	if err := tg.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	get(t, tg.URL().String())
	t.Logf("report: %v", tg.Report())
}
