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
		{"unknown flag", []string{"--force"}, exitUsage},
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

// probeKind is a target kind that only cleans: its leftovers are items,
// which a Clean without DryRun removes unless CleanOptions.Keep keeps
// them. It records how it was called.
var probeKind = struct {
	sync.Mutex
	calls []targets.CleanOptions
	items []targets.Leftover
}{}

func init() {
	targets.Register(targets.Kind{
		Name:     "clean-probe",
		Modes:    []targets.Mode{targets.Cold},
		New:      func(targets.Spec) (targets.Target, error) { return nil, errors.New("only cleans") },
		CleanDoc: "the probe's leftovers",
		Clean: func(_ context.Context, o targets.CleanOptions) ([]targets.Leftover, error) {
			probeKind.Lock()
			defer probeKind.Unlock()
			probeKind.calls = append(probeKind.calls, o)
			var found, left []targets.Leftover
			for _, l := range probeKind.items {
				if o.RunID != "" && o.RunID != l.Run {
					left = append(left, l)
					continue
				}
				l.Kept = o.Keep(l)
				found = append(found, l)
				if l.Kept != "" || o.DryRun {
					left = append(left, l)
				}
			}
			probeKind.items = left
			return found, nil
		},
	})
}

// endedOwner is a harness process that has ended: a child of the test
// that was run and reaped.
func endedOwner(t *testing.T) targets.Owner {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return targets.Owner{Host: targets.Self().Host, PID: cmd.ProcessState.Pid()}
}

// TestCleanEveryKind: `harness clean` cleans through the target registry,
// so every kind with a Clean is asked, --dry-run included, and one kind's
// failure (here: no Docker Engine) neither hides nor stops the others.
// What a run still going left (thing-2, made by this very process) is
// kept with the reason, and removed only with --all.
func TestCleanEveryKind(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	t.Setenv("OPENFAAS_URL", "")
	ended := endedOwner(t)
	live := fmt.Sprintf("its run is still going (harness pid %d on host %s)", os.Getpid(), targets.Self().Host)
	tests := []struct {
		name    string
		args    []string
		want    targets.CleanOptions
		wantOut string
	}{
		{"dry run", []string{"--dry-run", "--run", "r1"}, targets.CleanOptions{RunID: "r1", DryRun: true},
			"would remove thing thing-1 (run r1, target t1)\nwould keep thing thing-2 (run r1, target t2): " + live + "\nwould remove 1 thing; would keep 1 thing (--all removes them)\n"},
		{"another run", []string{"--run", "r2"}, targets.CleanOptions{RunID: "r2"}, "removed nothing\n"},
		{"clean", []string{"--run", "r1"}, targets.CleanOptions{RunID: "r1"},
			"removed thing thing-1 (run r1, target t1)\nkept thing thing-2 (run r1, target t2): " + live + "\nremoved 1 thing; kept 1 thing (--all removes them)\n"},
		{"every run", nil, targets.CleanOptions{},
			"kept thing thing-2 (run r1, target t2): " + live + "\nremoved nothing; kept 1 thing (--all removes them)\n"},
		{"all", []string{"--all"}, targets.CleanOptions{All: true}, "removed thing thing-2 (run r1, target t2)\nremoved 1 thing\n"},
		{"nothing left", nil, targets.CleanOptions{}, "removed nothing\n"},
	}
	probeKind.Lock()
	probeKind.items = []targets.Leftover{
		{What: "thing", ID: "thing-1", Name: "thing-1", Run: "r1", Target: "t1", Owner: ended},
		{What: "thing", ID: "thing-2", Name: "thing-2", Run: "r1", Target: "t2", Owner: targets.Self()},
	}
	probeKind.Unlock()
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
				t.Errorf("stdout\n%s\nwant\n%s", out.String(), tc.wantOut)
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

// startCrashHelper starts a harness-like process (TestCrashHelper) that
// deploys a warm and a cold docker-node target for run runID and keeps
// cold requests in flight, and waits until it says so. Whatever happens,
// the test leaves nothing of the run behind.
func startCrashHelper(t *testing.T, runID string) *exec.Cmd {
	t.Helper()
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
		cmd.Wait()
		dockernode.Clean(context.Background(), targets.CleanOptions{RunID: runID, All: true})
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
	return cmd
}

// settledLeftovers is leftovers once the engine's container list has
// caught up: it can show a container for a moment after its removal
// returned (the list is a view updated behind the store), so it allows a
// few seconds before calling anything left.
func settledLeftovers(t *testing.T, runID string) (containers, images int) {
	t.Helper()
	containers, images = leftovers(t, runID)
	for deadline := time.Now().Add(5 * time.Second); containers+images != 0 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		containers, images = leftovers(t, runID)
	}
	return containers, images
}

// TestCleanAfterCrash kills a harness-like process with SIGKILL (no Stop
// runs), then checks that `harness clean --run ID` leaves no container or
// image of that run.
func TestCleanAfterCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers; skipped with -short")
	}
	engineOrSkip(t)
	runID := fmt.Sprintf("test-crash-%d", time.Now().UnixNano())
	cmd := startCrashHelper(t, runID)
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
	if containers, images = settledLeftovers(t, runID); containers+images != 0 {
		t.Errorf("after clean, still labelled: %d containers, %d images", containers, images)
	}
}

// TestCleanKeepsLiveRun: two runs share the engine, one killed and one
// going on. Cleaning the live run's leftovers keeps its containers and
// image and says why; --all removes them all the same. The killed run's
// go. (Each run is named with --run, so that the test touches nothing
// else on a shared engine.)
func TestCleanKeepsLiveRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers; skipped with -short")
	}
	engineOrSkip(t)
	stamp := time.Now().UnixNano()
	dead, live := fmt.Sprintf("test-dead-%d", stamp), fmt.Sprintf("test-live-%d", stamp)
	deadCmd := startCrashHelper(t, dead)
	liveCmd := startCrashHelper(t, live)
	if err := deadCmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadCmd.Wait()

	clean := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := cmdClean(args, &out, &errb); code != exitOK {
			t.Fatalf("harness clean %q: exit %d: %s", args, code, errb.String())
		}
		t.Logf("harness clean %q:\n%s", args, out.String())
		return out.String()
	}

	out := clean("--run", live)
	containers, images := leftovers(t, live)
	if containers < 1 || images != 1 {
		t.Errorf("the live run lost its containers or image to clean: %d containers, %d images left", containers, images)
	}
	if strings.Contains(out, "removed container") || !strings.Contains(out, fmt.Sprintf("kept container")) ||
		!strings.Contains(out, fmt.Sprintf("its run is still going (harness pid %d on host ", liveCmd.Process.Pid)) {
		t.Errorf("clean of the live run said\n%s\nwant every container kept, with the live process named", out)
	}

	clean("--run", dead)
	if containers, images := settledLeftovers(t, dead); containers+images != 0 {
		t.Errorf("the killed run's leftovers are still there: %d containers, %d images", containers, images)
	}

	// --all removes them while the run goes on. The run keeps starting
	// cold containers meanwhile, so the exit status is left alone: its
	// image may be in use by one started after the last listing.
	var warm string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "target crash-warm") {
			warm = strings.Fields(l)[2] // "kept container ID /name ..."
		}
	}
	var all, errb bytes.Buffer
	cmdClean([]string{"--run", live, "--all"}, &all, &errb)
	t.Logf("harness clean --all:\n%s%s", all.String(), errb.String())
	if warm == "" || !strings.Contains(all.String(), "removed container "+warm) || strings.Contains(all.String(), "kept") {
		t.Errorf("clean --all of the live run said\n%s\nwant its warm container %q removed and nothing kept", all.String(), warm)
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
