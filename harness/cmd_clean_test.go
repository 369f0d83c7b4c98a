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
	_, err := dockernode.Clean(ctx, dockernode.CleanOptions{RunID: "probe-nothing", DryRun: true})
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

// leftovers lists what still carries the run's label.
func leftovers(t *testing.T, runID string) dockernode.Cleaned {
	t.Helper()
	res, err := dockernode.Clean(context.Background(), dockernode.CleanOptions{RunID: runID, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
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
		dockernode.Clean(context.Background(), dockernode.CleanOptions{RunID: runID})
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
	before := leftovers(t, runID)
	// The warm container at least; cold ones come and go.
	if len(before.Containers) < 1 || len(before.Images) != 1 {
		t.Fatalf("mid-run the run should have containers and its image: %+v", before)
	}
	t.Logf("mid-run: %d containers, %d image", len(before.Containers), len(before.Images))
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
	after := leftovers(t, runID)
	for deadline := time.Now().Add(5 * time.Second); len(after.Containers)+len(after.Images) != 0 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		after = leftovers(t, runID)
	}
	if len(after.Containers)+len(after.Images) != 0 {
		t.Errorf("after clean, still labelled: %+v", after)
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
