// Package dockernode is the Docker + Node.js baseline target ("docker-node"):
// the functions written for Node.js (functions/<name>/index.js), each served
// from a container that the Docker Engine API runs.
//
// Modes:
//
//   - warm: one long-running container; URL is its port, published on
//     127.0.0.1 only, so requests go straight to it (through the engine's
//     loopback port forwarding, never to a bridge address). Reset replaces
//     the container with a fresh one on the same port before it returns, so
//     repetitions share no process state and no request pays the start.
//   - cold: a container per request. URL is an in-process proxy on
//     127.0.0.1 that, per request, runs a fresh container by the option
//     cold_start_method: "http" (the default) creates and starts a
//     container serving HTTP, waits until its health path answers,
//     forwards the request, answers with X-Cold-Start: 1 and X-Start-Ns
//     (create to ready), then reads the container's CPU time and removes
//     it in the background; "stdin" is the original study's
//     `docker run --rm -i`: the request on the container's stdin, the
//     answer from its stdout (stdin.go).
//
// Everything a target creates carries the harness labels
// (nodeimage.LabelHarness, LabelRun, LabelTarget), so that Clean, and
// `harness clean`, can remove what a crash left. Stop removes every
// container of the target; the image stays as a cache unless keep_image is
// false.
package dockernode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/internal/nodeimage"
)

// Kind is the target kind's name in scenarios.
const Kind = "docker-node"

// Label keys on what the harness creates (see package nodeimage), exported
// here for programs outside targets/ that look for it (package nodeimage
// is internal).
const (
	LabelHarness  = nodeimage.LabelHarness
	LabelRun      = nodeimage.LabelRun
	LabelTarget   = nodeimage.LabelTarget
	LabelFunction = nodeimage.LabelFunction
	// LabelInstance tells apart two targets of the same name (tests).
	LabelInstance = "io.academemes.harness.instance"
)

func init() {
	targets.Register(targets.Kind{
		Name:    Kind,
		Doc:     "the functions in Node.js, one container per function (warm) or per request (cold), on the local Docker Engine",
		Options: new(Options).fields().Docs(),
		Modes:   []targets.Mode{targets.Cold, targets.Warm},
		New:     New,
		Check: func(spec targets.Spec) error {
			_, err := ParseOptions(spec.Options)
			return err
		},
		Clean: Clean,
		CleanDoc: "containers, then images, carrying the label " + LabelHarness + "=1 in the Docker Engine named by DOCKER_HOST " +
			"(the local socket by default): what a crashed run left, and the cached function images",
	})
}

// New makes a docker-node target from a scenario spec; it checks the
// options and starts nothing.
func New(spec targets.Spec) (targets.Target, error) {
	opts, err := ParseOptions(spec.Options)
	if err != nil {
		return nil, fmt.Errorf("target %s (%s): %w", spec.Name, Kind, err)
	}
	return NewTarget(spec, opts)
}

// NewTarget makes a target with options already decoded.
func NewTarget(spec targets.Spec, opts Options) (*Target, error) {
	if spec.Function == "" {
		return nil, fmt.Errorf("target %s (%s): no function given", spec.Name, Kind)
	}
	if spec.Mode == "" {
		spec.Mode = targets.Warm
	}
	if spec.Mode != targets.Warm && spec.Mode != targets.Cold {
		return nil, fmt.Errorf("target %s (%s): mode %q not supported; want warm or cold", spec.Name, Kind, spec.Mode)
	}
	if spec.Mode == targets.Warm && opts.ColdStartMethod == ColdStdin {
		return nil, fmt.Errorf("target %s (%s): cold_start_method stdin runs a container per request: it needs mode cold", spec.Name, Kind)
	}
	if opts.ColdStartMethod == "" {
		opts.ColdStartMethod = ColdHTTP
	}
	if spec.Logf == nil {
		spec.Logf = func(string, ...any) {}
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultOptions().ReadyTimeout
	}
	if opts.MaxContainers <= 0 {
		opts.MaxContainers = DefaultOptions().MaxContainers
	}
	var inst [6]byte
	rand.Read(inst[:])
	return &Target{
		spec:     spec,
		opts:     opts,
		instance: hex.EncodeToString(inst[:]),
		slots:    make(chan struct{}, opts.MaxContainers),
		stats:    &stats{},
	}, nil
}

// Target is a docker-node target. Its methods are safe for concurrent use.
type Target struct {
	spec     targets.Spec
	opts     Options
	instance string

	mu      sync.Mutex
	cli     *client.Client
	image   nodeimage.Image
	built   bool // Start built the image (not found by hash)
	url     *url.URL
	warm    *ctr // the warm container
	proxy   *http.Server
	stopped bool

	slots    chan struct{}  // cold mode: one per container alive
	removes  sync.WaitGroup // background removals
	inflight sync.WaitGroup // cold-mode handlers

	stats *stats
}

var (
	_ targets.Target   = (*Target)(nil)
	_ targets.Reporter = (*Target)(nil)
)

// Info describes the target.
func (t *Target) Info() targets.Info {
	return targets.Info{Name: t.spec.Name, Kind: Kind, Mode: t.spec.Mode, Function: t.spec.Function, Variant: "node", Language: "JavaScript"}
}

// URL is where requests go; nil before Start.
func (t *Target) URL() *url.URL {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.url == nil {
		return nil
	}
	u := *t.url
	return &u
}

// Start connects to the engine, builds or finds the image and, in warm
// mode, starts the container; in cold mode it opens the proxy. An engine
// that cannot be reached gives an error wrapping targets.ErrUnavailable.
func (t *Target) Start(ctx context.Context) error {
	cli, err := nodeimage.Connect(ctx)
	if err != nil {
		return fmt.Errorf("target %s: %w", t.spec.Name, err)
	}
	t.mu.Lock()
	t.cli = cli
	t.stopped = false
	t.mu.Unlock()

	im, err := nodeimage.Build(ctx, cli, nodeimage.Options{
		Function:  t.spec.Function,
		Functions: functions.Open(t.spec.FunctionsDir),
		RunID:     t.spec.RunID,
		Source:    t.opts.ImageSource,
		NodePath:  t.opts.Node,
		Logf:      t.spec.Logf,
	})
	if err != nil {
		return fmt.Errorf("target %s: %w", t.spec.Name, err)
	}
	t.mu.Lock()
	t.image = im
	t.built = t.built || !im.Reused
	t.mu.Unlock()

	switch t.spec.Mode {
	case targets.Warm:
		c, err := t.startContainer(ctx, "")
		if err != nil {
			return fmt.Errorf("target %s: warm container: %w", t.spec.Name, err)
		}
		t.mu.Lock()
		t.warm = c
		t.url = &url.URL{Scheme: "http", Host: c.addr}
		t.mu.Unlock()
		t.spec.Logf("%s: warm container %.12s ready on %s in %s", t.spec.Name, c.id, c.addr, c.startup.Round(time.Millisecond))
	case targets.Cold:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("target %s: cold-start proxy: %w", t.spec.Name, err)
		}
		serve := t.serveCold
		if t.opts.ColdStartMethod == ColdStdin {
			serve = t.serveColdStdin
		}
		srv := &http.Server{Handler: http.HandlerFunc(serve), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		t.mu.Lock()
		t.proxy = srv
		t.url = &url.URL{Scheme: "http", Host: ln.Addr().String()}
		t.mu.Unlock()
	}
	return nil
}

// Reset scales to zero. Cold mode keeps no containers, so it only waits
// for pending removals; warm mode replaces the container by a fresh one on
// the same host port, ready when Reset returns.
func (t *Target) Reset(ctx context.Context) error {
	t.removes.Wait()
	if t.spec.Mode != targets.Warm {
		return nil
	}
	t.mu.Lock()
	old := t.warm
	t.warm = nil
	t.mu.Unlock()
	port := ""
	if old != nil {
		_, port, _ = net.SplitHostPort(old.addr)
		t.removeContainer(ctx, old)
	}
	c, err := t.startContainer(ctx, port)
	if err != nil {
		return fmt.Errorf("target %s: reset: %w", t.spec.Name, err)
	}
	t.mu.Lock()
	t.warm = c
	t.url = &url.URL{Scheme: "http", Host: c.addr}
	t.mu.Unlock()
	t.stats.addReset()
	return nil
}

// Stop closes the proxy, removes every container of this target (also any
// that a lost API answer left behind, found by label) and, when keep_image
// is false, the image Start built. It is safe after a failed Start and more
// than once, and it works with a fresh ctx after the run's was cancelled.
func (t *Target) Stop(ctx context.Context) error {
	t.mu.Lock()
	cli, srv, warm := t.cli, t.proxy, t.warm
	t.proxy, t.warm, t.stopped = nil, nil, true
	t.mu.Unlock()
	if cli == nil {
		return nil
	}
	var errs []error
	if srv != nil {
		// In-flight cold requests finish (or their clients give up).
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		// Close does not wait for handlers; one may still be creating a
		// container, which the label sweep below must see.
		done := make(chan struct{})
		go func() { t.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("cold requests still in flight: %w", ctx.Err()))
		}
	}
	if warm != nil {
		if err := t.removeContainer(ctx, warm); err != nil {
			errs = append(errs, err)
		}
	}
	t.removes.Wait()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelInstance+"="+t.instance),
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing containers: %w", err))
	} else {
		for _, c := range res.Items {
			if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("removing container %.12s: %w", c.ID, err))
			}
		}
	}
	t.mu.Lock()
	im, built := t.image, t.built
	t.mu.Unlock()
	if !t.opts.KeepImage && built && im.ID != "" {
		if _, err := cli.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing image %s: %w", im.Ref, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("target %s: stop: %w", t.spec.Name, err)
	}
	return nil
}

// Report returns the facts for run.json: the image (id, size, source),
// resource limits, and the containers' start-up times and CPU time.
func (t *Target) Report() map[string]any {
	t.mu.Lock()
	im := t.image
	t.mu.Unlock()
	r := im.Report()
	r["limits"] = map[string]any{"cpus": t.opts.CPUs, "cpuset": t.opts.Cpuset, "memory_bytes": t.opts.Memory}
	switch {
	case t.spec.Mode == targets.Warm:
		r["cold_start_method"] = "none"
		r["cold_start_how"] = "one long-running container; Reset replaces it before the next repetition"
	case t.opts.ColdStartMethod == ColdStdin:
		r["cold_start_method"] = string(ColdStdin)
		r["cold_start_how"] = "docker run --rm -i per request through the Engine API: a container created with stdin open, attached, started, " +
			"the request written to its stdin (node " + nodeimage.StdinScript + "), the answer read from its stdout, the container removed; " +
			"no network; start-up is create to the function loaded"
	default:
		r["cold_start_method"] = string(ColdHTTP)
		r["cold_start_how"] = "a container per request created, started and health-checked (docker run --rm with a server), the request forwarded " +
			"to its port published on 127.0.0.1; start-up is create to ready"
	}
	t.stats.report(r)
	return r
}

// ctr is one running container.
type ctr struct {
	id      string
	addr    string // 127.0.0.1:port
	created time.Time
	startup time.Duration // create to ready
}

// labels returns the labels of a new container.
func (t *Target) labels() map[string]string {
	return nodeimage.HarnessLabels(t.spec.RunID, map[string]string{
		LabelTarget:   t.spec.Name,
		LabelFunction: t.spec.Function,
		LabelInstance: t.instance,
	})
}

var containerPort = network.MustParsePort(strconv.Itoa(nodeimage.Port) + "/tcp")

// startContainer creates and starts a container published on
// 127.0.0.1:hostPort ("" lets the engine pick) and waits until its health
// path answers. On failure it removes what it made.
func (t *Target) startContainer(ctx context.Context, hostPort string) (*ctr, error) {
	t.mu.Lock()
	cli, im, stopped := t.cli, t.image, t.stopped
	t.mu.Unlock()
	if cli == nil || stopped {
		return nil, errors.New("target not started")
	}
	t0 := time.Now()
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:        im.ID,
			Labels:       t.labels(),
			ExposedPorts: network.PortSet{containerPort: {}},
		},
		HostConfig: &container.HostConfig{
			PortBindings: network.PortMap{containerPort: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}}},
			Resources: container.Resources{
				NanoCPUs:   int64(t.opts.CPUs * 1e9),
				CpusetCpus: t.opts.Cpuset,
				Memory:     t.opts.Memory,
			},
		},
	})
	if err != nil {
		t.stats.addFailure(fmt.Sprintf("create: %v", err))
		return nil, fmt.Errorf("creating container from %s: %w", im.Ref, err)
	}
	c := &ctr{id: res.ID, created: t0}
	fail := func(err error) (*ctr, error) {
		t.stats.addFailure(err.Error())
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cli.ContainerRemove(rctx, c.id, client.ContainerRemoveOptions{Force: true})
		return nil, err
	}
	if _, err := cli.ContainerStart(ctx, c.id, client.ContainerStartOptions{}); err != nil {
		return fail(fmt.Errorf("starting container %.12s: %w", c.id, err))
	}
	insp, err := cli.ContainerInspect(ctx, c.id, client.ContainerInspectOptions{})
	if err != nil {
		return fail(fmt.Errorf("inspecting container %.12s: %w", c.id, err))
	}
	c.addr, err = publishedAddr(insp.Container)
	if err != nil {
		return fail(fmt.Errorf("container %.12s: %w", c.id, err))
	}
	if err := t.waitReady(ctx, cli, c); err != nil {
		return fail(err)
	}
	c.startup = time.Since(t0)
	t.stats.addStart(c.startup)
	return c, nil
}

// publishedAddr is the loopback address the engine published port 8080 on.
func publishedAddr(insp container.InspectResponse) (string, error) {
	if insp.NetworkSettings == nil {
		return "", errors.New("no network settings")
	}
	for _, b := range insp.NetworkSettings.Ports[containerPort] {
		if b.HostPort != "" && (!b.HostIP.IsValid() || b.HostIP.IsLoopback() || b.HostIP.IsUnspecified()) {
			return net.JoinHostPort("127.0.0.1", b.HostPort), nil
		}
	}
	return "", fmt.Errorf("port %s not published on 127.0.0.1", containerPort)
}

// healthClient polls health paths; no keep-alive, since the engine's port
// forwarder accepts a connection before the server inside listens and a
// reused connection would hide that.
var healthClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	Timeout:   2 * time.Second,
}

// waitReady polls the container's health path until it answers 200, the
// container exits, or ReadyTimeout passes.
func (t *Target) waitReady(ctx context.Context, cli *client.Client, c *ctr) error {
	ctx, cancel := context.WithTimeout(ctx, t.opts.ReadyTimeout)
	defer cancel()
	u := "http://" + c.addr + nodeimage.HealthPath
	delay := 500 * time.Microsecond
	lastCheck := time.Now()
	var lastErr error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := healthClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health answered %s", resp.Status)
		}
		lastErr = err
		// Every quarter second, ask whether the container still runs: a
		// node that fails to start would otherwise cost the full timeout.
		if time.Since(lastCheck) > 250*time.Millisecond {
			lastCheck = time.Now()
			if insp, err := cli.ContainerInspect(ctx, c.id, client.ContainerInspectOptions{}); err == nil && insp.Container.State != nil && !insp.Container.State.Running {
				return fmt.Errorf("container %.12s exited (code %d, OOM killed %v) before it was ready", c.id, insp.Container.State.ExitCode, insp.Container.State.OOMKilled)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container %.12s not ready on %s within %s: %v", c.id, c.addr, t.opts.ReadyTimeout, lastErr)
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Millisecond)
	}
}

// removeContainer reads the container's CPU time, then removes it.
func (t *Target) removeContainer(ctx context.Context, c *ctr) error {
	t.mu.Lock()
	cli := t.cli
	t.mu.Unlock()
	if ns, ok := cpuTime(ctx, cli, c.id); ok {
		t.stats.addCPU(ns)
	}
	t0 := time.Now()
	if _, err := cli.ContainerRemove(ctx, c.id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing container %.12s: %w", c.id, err)
	}
	t.stats.addRemove(time.Since(t0))
	return nil
}

// cpuTime reads a running container's CPU time (user + system, all CPUs)
// from the stats API; a stopped container reports none.
func cpuTime(ctx context.Context, cli *client.Client, id string) (uint64, bool) {
	res, err := cli.ContainerStats(ctx, id, client.ContainerStatsOptions{})
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil || s.CPUStats.CPUUsage.TotalUsage == 0 {
		return 0, false
	}
	return s.CPUStats.CPUUsage.TotalUsage, true
}

// hopHeaders are not forwarded (RFC 9110 section 7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// forwardClient talks to one-shot containers: never reuse a connection.
var forwardClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// serveCold is the cold-mode proxy: one fresh container per request.
func (t *Target) serveCold(w http.ResponseWriter, r *http.Request) {
	t.inflight.Add(1)
	defer t.inflight.Done()
	select {
	case t.slots <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	c, err := t.startContainer(r.Context(), "")
	if err != nil {
		<-t.slots
		http.Error(w, fmt.Sprintf("docker-node cold start failed: %v", err), http.StatusBadGateway)
		return
	}
	t.removes.Add(1)
	defer func() {
		// Remove after the answer is complete; the slot frees once the
		// container is gone, so at most max_containers exist at once.
		go func() {
			defer t.removes.Done()
			defer func() { <-t.slots }()
			rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := t.removeContainer(rctx, c); err != nil {
				t.stats.addFailure(err.Error())
				t.spec.Logf("%s: %v", t.spec.Name, err)
			}
		}()
	}()

	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = "http", c.addr
	out.Host = c.addr
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	resp, err := forwardClient.Do(out)
	if err != nil {
		t.stats.addFailure(fmt.Sprintf("forward: %v", err))
		w.Header().Set(targets.HeaderColdStart, "1")
		w.Header().Set(targets.HeaderStartNs, strconv.FormatInt(c.startup.Nanoseconds(), 10))
		http.Error(w, fmt.Sprintf("docker-node: container %.12s: %v", c.id, err), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		if !slices.Contains(hopHeaders, k) {
			h[k] = vs
		}
	}
	h.Set(targets.HeaderColdStart, "1")
	h.Set(targets.HeaderStartNs, strconv.FormatInt(c.startup.Nanoseconds(), 10))
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
	t.stats.addCold()
}
