package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/dockernode"
)

func TestCleanUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"--help"}, exitOK},
		{"unknown flag", []string{"--all"}, exitUsage},
		{"stray argument", []string{"now"}, exitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := cmdClean(tc.args, &out, &errb); got != tc.want {
				t.Errorf("cmdClean(%q) = %d, want %d; stderr %s", tc.args, got, tc.want, errb.String())
			}
		})
	}
}

// probeKind is a target kind that only cleans: it has one leftover, which
// a Clean without DryRun removes. It records how it was called.
var probeKind = struct {
	sync.Mutex
	calls []targets.CleanOptions
	left  bool
}{left: true}

func init() {
	targets.Register(targets.Kind{
		Name:     "clean-probe",
		Modes:    []targets.Mode{targets.Cold},
		New:      func(targets.Spec) (targets.Target, error) { return nil, errors.New("only cleans") },
		CleanDoc: "the probe's leftover",
		Clean: func(_ context.Context, o targets.CleanOptions) ([]targets.Leftover, error) {
			probeKind.Lock()
			defer probeKind.Unlock()
			probeKind.calls = append(probeKind.calls, o)
			if !probeKind.left || o.RunID != "" && o.RunID != "r1" {
				return nil, nil
			}
			probeKind.left = probeKind.left && o.DryRun
			return []targets.Leftover{{What: "thing", ID: "thing-1", Name: "thing-1", Run: "r1", Target: "t1"}}, nil
		},
	})
}

// TestCleanEveryKind: `harness clean` cleans through the target registry,
// so every kind with a Clean is asked, --dry-run included, and one kind's
// failure (here: no Docker Engine) neither hides nor stops the others.
func TestCleanEveryKind(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	t.Setenv("OPENFAAS_URL", "")
	tests := []struct {
		name    string
		args    []string
		want    targets.CleanOptions
		wantOut string
	}{
		{"dry run", []string{"--dry-run", "--run", "r1"}, targets.CleanOptions{RunID: "r1", DryRun: true},
			"would remove thing thing-1 (run r1, target t1)\nwould remove 1 thing\n"},
		{"clean", []string{"--run", "r1"}, targets.CleanOptions{RunID: "r1"},
			"removed thing thing-1 (run r1, target t1)\nremoved 1 thing\n"},
		{"nothing left", nil, targets.CleanOptions{}, "removed nothing\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			probeKind.Lock()
			probeKind.calls = nil
			probeKind.Unlock()
			var out, errb bytes.Buffer
			code := cmdClean(tc.args, &out, &errb)
			if code != exitFail || !strings.Contains(errb.String(), "docker-node: nothing cleaned") {
				t.Errorf("exit %d, stderr %q; want %d and docker-node's reason", code, errb.String(), exitFail)
			}
			if out.String() != tc.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tc.wantOut)
			}
			probeKind.Lock()
			defer probeKind.Unlock()
			if len(probeKind.calls) != 1 || probeKind.calls[0] != tc.want {
				t.Errorf("probe's Clean called with %+v, want once with %+v", probeKind.calls, tc.want)
			}
		})
	}
}

func TestCleanNoEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	var out, errb bytes.Buffer
	if got := cmdClean(nil, &out, &errb); got != exitFail || !strings.Contains(errb.String(), "nonexistent") {
		t.Errorf("clean without an engine: exit %d, stderr %q; want %d and the reason", got, errb.String(), exitFail)
	}
}

// engineOrSkip skips when no Docker Engine answers (fails under CI=true).
func engineOrSkip(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := dockernode.Clean(ctx, targets.CleanOptions{RunID: "probe-nothing", DryRun: true})
	if err == nil {
		_, err = exec.LookPath("node")
		if err == nil {
			return
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true needs a local node binary: %v", err)
		}
		t.Skipf("no local node binary to assemble function images from (install Node.js), skipping: %v", err)
	}
	if !errors.Is(err, targets.ErrUnavailable) {
		t.Fatal(err)
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true needs a Docker Engine: %v", err)
	}
	t.Skipf("no Docker Engine reachable, skipping: %v", err)
}

// leftovers counts what still carries the run's label in the Docker
// Engine: containers and images.
func leftovers(t *testing.T, runID string) (containers, images int) {
	t.Helper()
	res, err := dockernode.Clean(context.Background(), targets.CleanOptions{RunID: runID, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range res {
		switch l.What {
		case "container":
			containers++
		case "image":
			images++
		}
	}
	return containers, images
}

const crashHelperEnv = "HARNESS_TEST_CRASH_HELPER_RUN"

// TestCleanAfterCrash starts a harness-like process that deploys a warm and
// a cold docker-node target and keeps cold requests in flight, kills it
// with SIGKILL (no Stop runs), then checks that `harness clean --run ID`
// leaves no container or image of that run.
func TestCleanAfterCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers; skipped with -short")
	}
	engineOrSkip(t)
	runID := fmt.Sprintf("test-crash-%d", time.Now().UnixNano())
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+runID)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		// Whatever happens, leave nothing behind.
		dockernode.Clean(context.Background(), targets.CleanOptions{RunID: runID})
	})
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY") {
				ready <- nil
				break
			}
			if strings.HasPrefix(sc.Text(), "FAILED") {
				ready <- errors.New(sc.Text())
				break
			}
		}
		ready <- sc.Err()
		for sc.Scan() {
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("helper: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("helper not ready after 3 minutes")
	}
	containers, images := leftovers(t, runID)
	// The warm container at least; cold ones come and go.
	if containers < 1 || images != 1 {
		t.Fatalf("mid-run the run should have containers and its image: %d containers, %d images", containers, images)
	}
	t.Logf("mid-run: %d containers, %d image", containers, images)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	var out, errb bytes.Buffer
	if code := cmdClean([]string{"--run", runID}, &out, &errb); code != exitOK {
		t.Fatalf("harness clean: exit %d: %s", code, errb.String())
	}
	t.Logf("harness clean:\n%s", out.String())
	// The engine's container list can show a container for a moment after
	// its removal returned (the list is a view updated behind the store),
	// so allow it a few seconds to settle before calling anything left.
	containers, images = leftovers(t, runID)
	for deadline := time.Now().Add(5 * time.Second); containers+images != 0 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		containers, images = leftovers(t, runID)
	}
	if containers+images != 0 {
		t.Errorf("after clean, still labelled: %d containers, %d images", containers, images)
	}
}

// TestCrashHelper is the harness-like process of TestCleanAfterCrash; it
// runs only when that test starts it.
func TestCrashHelper(t *testing.T) {
	runID := os.Getenv(crashHelperEnv)
	if runID == "" {
		t.Skip("helper process for TestCleanAfterCrash")
	}
	fail := func(err error) {
		fmt.Println("FAILED", err)
		os.Exit(1)
	}
	// A function unique to this run, so the image is built now and carries
	// this run's label. Its answers take a while, so that cold containers
	// are alive when the process is killed.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "slow"), 0o755); err != nil {
		fail(err)
	}
	js := "// " + runID + "\nmodule.exports = () => new Promise((ok) => setTimeout(() => ok({status: 200, body: 'slow\\n'}), 300));\n"
	if err := os.WriteFile(filepath.Join(dir, "slow", "index.js"), []byte(js), 0o644); err != nil {
		fail(err)
	}
	ctx := context.Background()
	var urls []string
	for _, mode := range []targets.Mode{targets.Warm, targets.Cold} {
		tg, err := targets.New(targets.Spec{Name: "crash-" + string(mode), Kind: dockernode.Kind, Function: "slow",
			Mode: mode, FunctionsDir: dir, RunID: runID, Options: map[string]any{"image_source": "local-node"}})
		if err != nil {
			fail(err)
		}
		if err := tg.Start(ctx); err != nil {
			fail(err)
		}
		urls = append(urls, tg.URL().String())
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case started <- struct{}{}:
				default:
				}
				if resp, err := http.Get(urls[1]); err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	<-started
	<-started
	// Let the cold containers come up before saying so.
	time.Sleep(time.Second)
	fmt.Println("READY")
	wg.Wait()
}
