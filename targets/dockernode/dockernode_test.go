package dockernode

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/internal/dockertest"
	"github.com/academemes/harness/targets/internal/nodeimage"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]any
		want    func(Options) bool
		wantErr string
	}{
		{"defaults", nil, func(o Options) bool { return o == DefaultOptions() }, ""},
		{"limits", map[string]any{"cpus": 1.5, "cpuset": "0-1", "memory": "256m"},
			func(o Options) bool { return o.CPUs == 1.5 && o.Cpuset == "0-1" && o.Memory == 256<<20 }, ""},
		{"integer cpuset and cpus", map[string]any{"cpus": 1, "cpuset": 1},
			func(o Options) bool { return o.CPUs == 1 && o.Cpuset == "1" }, ""},
		{"image source and timeouts", map[string]any{"image_source": "local-node", "ready_timeout": "5s", "max_containers": 2, "keep_image": false},
			func(o Options) bool {
				return o.ImageSource == nodeimage.SourceLocalNode && o.ReadyTimeout == 5*time.Second && o.MaxContainers == 2 && !o.KeepImage
			}, ""},
		{"the study's cold start", map[string]any{"cold_start_method": "stdin"}, func(o Options) bool { return o.ColdStartMethod == ColdStdin }, ""},
		{"bad cold start", map[string]any{"cold_start_method": "run"}, nil, `option cold_start_method: want one of http, stdin, got "run"`},
		{"sizes as docker writes them", map[string]any{"memory": "512MiB"}, func(o Options) bool { return o.Memory == 512<<20 }, ""},
		{"negative cpus", map[string]any{"cpus": -1}, nil, "option cpus: want a number of at least 0, got -1"},
		{"bad memory", map[string]any{"memory": "lots"}, nil, `option memory: want a size like 256m or a number of bytes, got "lots"`},
		{"bad source", map[string]any{"image_source": "hub"}, nil, `option image_source: want one of auto, registry, local-node, got "hub"`},
		{"zero containers", map[string]any{"max_containers": 0}, nil, "option max_containers: want a whole number of at least 1, got 0"},
		{"unknown key", map[string]any{"replicas": 3}, nil, "option replicas: unknown option; known: cold_start_method, cpus, cpuset, image_source, keep_image, max_containers, memory, node, ready_timeout"},
		{"a bare number for a duration", map[string]any{"ready_timeout": 5}, nil, "option ready_timeout: want a duration like 30s, got 5"},
		{"every problem at once, in key order", map[string]any{"ready_timeout": "soon", "cpus": "x"}, nil,
			"option cpus: want a number of at least 0, got \"x\"\noption ready_timeout: want a duration like 30s, got \"soon\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOptions(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("ParseOptions(%v) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(o) {
				t.Errorf("ParseOptions(%v) = %+v", tc.in, o)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		spec targets.Spec
	}{
		{"prewarmed mode", targets.Spec{Name: "d", Kind: Kind, Function: "echo", Mode: targets.Prewarmed}},
		{"no function", targets.Spec{Name: "d", Kind: Kind, Mode: targets.Cold}},
		{"stdin in warm mode", targets.Spec{Name: "d", Kind: Kind, Function: "echo", Mode: targets.Warm, Options: map[string]any{"cold_start_method": "stdin"}}},
		{"unknown option", targets.Spec{Name: "d", Kind: Kind, Function: "echo", Options: map[string]any{"gpu": true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := targets.New(tc.spec); err == nil {
				t.Errorf("targets.New(%+v) succeeded", tc.spec)
			}
		})
	}
}

func TestUnavailableEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	tg, err := targets.New(targets.Spec{Name: "d", Kind: Kind, Function: "echo", Mode: targets.Warm, FunctionsDir: "testdata/functions"})
	if err != nil {
		t.Fatal(err)
	}
	err = tg.Start(context.Background())
	if !errors.Is(err, targets.ErrUnavailable) || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("Start without an engine: %v; want ErrUnavailable naming the socket", err)
	}
	if err := tg.Stop(context.Background()); err != nil {
		t.Errorf("Stop after a failed Start: %v", err)
	}
}

// startEcho starts a docker-node target serving testdata's echo function.
func startEcho(t testing.TB, mode targets.Mode, opts map[string]any) *Target {
	t.Helper()
	tg, err := New(targets.Spec{Name: "echo-" + string(mode), Kind: Kind, Function: "echo", Mode: mode,
		FunctionsDir: "testdata/functions", RunID: "test-dockernode", Options: opts, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	d := tg.(*Target)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

// leftovers lists the containers of a target instance.
func leftovers(t testing.TB, cli *client.Client, d *Target) int {
	t.Helper()
	res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", LabelInstance+"="+d.instance)})
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Items)
}

type answer struct {
	status int
	body   string
	header http.Header
	err    error
}

func get(u string) answer {
	resp, err := http.Get(u)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(b), header: resp.Header, err: err}
}

func TestWarm(t *testing.T) {
	cli := dockertest.Engine(t)
	d := startEcho(t, targets.Warm, map[string]any{"memory": "128m", "cpus": 1})
	u := d.URL()
	if u.Hostname() != "127.0.0.1" {
		t.Fatalf("URL %s is not on loopback", u)
	}
	want := `{"method":"GET","path":"/fn","query":{"n":"7"},"body":""}` + "\n"
	for i := range 3 {
		a := get(u.String() + "/fn?n=7&n=8")
		if a.err != nil || a.status != 200 || a.body != want {
			t.Fatalf("request %d: %d %q %v; want 200 %q", i, a.status, a.body, a.err, want)
		}
		if a.header.Get(targets.HeaderColdStart) != "" {
			t.Errorf("warm answer says cold start")
		}
	}
	first := d.warm.id
	if err := d.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.warm.id == first || d.URL().String() != u.String() {
		t.Errorf("Reset kept container %.12s or moved URL %s -> %s", first, u, d.URL())
	}
	if a := get(u.String() + "/fn?n=7"); a.err != nil || a.status != 200 {
		t.Errorf("after Reset: %d %v", a.status, a.err)
	}
	insp, err := cli.ContainerInspect(context.Background(), d.warm.id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hc := insp.Container.HostConfig; hc.Memory != 128<<20 || hc.NanoCPUs != 1e9 {
		t.Errorf("limits not applied: memory %d, nanocpus %d", hc.Memory, hc.NanoCPUs)
	}
	if o := targets.OwnerFromLabels(insp.Container.Config.Labels); o != targets.Self() {
		t.Errorf("container owner %+v, want this process %+v", o, targets.Self())
	}
	for k, v := range map[string]string{LabelHarness: "1", LabelRun: "test-dockernode", LabelTarget: "echo-warm", LabelFunction: "echo"} {
		if got := insp.Container.Config.Labels[k]; got != v {
			t.Errorf("container label %s = %q, want %q", k, got, v)
		}
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := leftovers(t, cli, d); n != 0 {
		t.Errorf("%d containers left after Stop", n)
	}
	r := d.Report()
	if r["image_id"] == "" || r["containers_started"] != 2 || r["cpu_time_ns"].(uint64) == 0 || r["resets"] != 1 {
		t.Errorf("report: %v", r)
	}
}

func TestCold(t *testing.T) {
	cli := dockertest.Engine(t)
	d := startEcho(t, targets.Cold, map[string]any{"max_containers": 2})
	u := d.URL().String()
	check := func(a answer) {
		t.Helper()
		if a.err != nil || a.status != 200 || !strings.Contains(a.body, `"n":"1"`) {
			t.Errorf("cold request: %d %q %v", a.status, a.body, a.err)
			return
		}
		ns, err := strconv.ParseInt(a.header.Get(targets.HeaderStartNs), 10, 64)
		if a.header.Get(targets.HeaderColdStart) != "1" || err != nil || ns <= 0 {
			t.Errorf("cold headers: %v", a.header)
		}
	}
	for range 2 {
		check(get(u + "/?n=1"))
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { check(get(u + "/?n=1")) })
	}
	wg.Wait()
	if err := d.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := leftovers(t, cli, d); n != 0 {
		t.Errorf("%d containers alive after Reset", n)
	}
	r := d.Report()
	if r["containers_started"] != 5 || r["cold_requests"] != 5 || r["cpu_time_containers"] != 5 || r["start_up_ns_p50"].(int64) <= 0 {
		t.Errorf("report: %v", r)
	}
}

// A container that dies mid-run fails its requests; the target goes on.
func TestContainerDiesMidRun(t *testing.T) {
	cli := dockertest.Engine(t)
	t.Run("cold: the function crashes", func(t *testing.T) {
		d := startEcho(t, targets.Cold, nil)
		u := d.URL().String()
		if a := get(u + "/?crash=1"); a.err != nil || a.status != http.StatusBadGateway {
			t.Errorf("crashing request: %d %q %v; want 502", a.status, a.body, a.err)
		}
		if a := get(u + "/?n=1"); a.err != nil || a.status != 200 {
			t.Errorf("next request: %d %q %v", a.status, a.body, a.err)
		}
		if f := d.Report()["failures"]; f != 1 {
			t.Errorf("failures = %v, want 1", f)
		}
	})
	t.Run("warm: the container is killed", func(t *testing.T) {
		d := startEcho(t, targets.Warm, nil)
		u := d.URL().String()
		if _, err := cli.ContainerKill(context.Background(), d.warm.id, client.ContainerKillOptions{}); err != nil {
			t.Fatal(err)
		}
		if a := get(u + "/?n=1"); a.err == nil && a.status == 200 {
			t.Errorf("request to a killed container succeeded")
		}
		// The next repetition starts afresh.
		if err := d.Reset(context.Background()); err != nil {
			t.Fatal(err)
		}
		if a := get(u + "/?n=1"); a.err != nil || a.status != 200 {
			t.Errorf("after Reset: %d %v", a.status, a.err)
		}
	})
}
