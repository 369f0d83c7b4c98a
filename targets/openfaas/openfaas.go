// Package openfaas is the target kind "openfaas": a function deployed to an
// OpenFaaS installation (faasd, Kubernetes, or any provider behind the
// gateway) through the gateway's REST API, and invoked through the gateway.
//
// The function image is the docker-node target's (targets/internal/
// nodeimage): the function's own Node server on port 8080 with the health
// path /_/health, the form OpenFaaS's dockerfile template allows. The
// usual Node form (of-watchdog in http mode in front of the server) needs
// the of-watchdog image from a registry; the report says which form ran.
//
// Cold starts: Reset scales the function to zero replicas; where the
// installation refuses (faasd CE answers "replicas must > 0"), it removes
// the function's container on the local Docker Engine, or deletes and
// redeploys the function. The report says which way was used.
package openfaas

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/openfaas/faas-provider/types"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/internal/nodeimage"
)

// Kind is the kind name in scenarios.
const Kind = "openfaas"

// Image forms (report key "image_form").
const (
	// FormOwnServer: the function's own server answers on 8080 with a
	// health path; no watchdog.
	FormOwnServer = "own-server-8080"
	// FormOfWatchdog: of-watchdog in http mode in front of the server.
	FormOfWatchdog = "of-watchdog"
)

// LabelService is the deployment label that names the OpenFaaS function;
// providers that copy labels to containers (faasd, the test stand-in) put
// it on the function's container, which is how remove-container finds it.
const LabelService = "io.academemes.harness.openfaas-service"

// pollInterval is how often readiness is polled. Short, because the time
// to ready is what a cold start measures.
const pollInterval = 5 * time.Millisecond

func init() {
	targets.Register(targets.Kind{
		Name:    Kind,
		Doc:     "a Node function deployed to an OpenFaaS gateway (faasd or Kubernetes) through its REST API",
		Options: new(Options).fields().Docs(),
		Modes:   []targets.Mode{targets.Warm, targets.Cold},
		New: func(spec targets.Spec) (targets.Target, error) {
			return New(spec, os.Getenv)
		},
		Check: func(spec targets.Spec) error {
			_, err := decode(spec.Options)
			return err
		},
		Clean:    Clean,
		CleanDoc: "functions carrying the label " + nodeimage.LabelHarness + "=1 on the OpenFaaS gateway named by " + EnvURL + " (nothing when it is unset)",
	})
}

// Target is a function on an OpenFaaS installation.
type Target struct {
	spec    targets.Spec
	opts    Options
	api     *Client
	service string

	// mu guards what Start, Reset and Stop change.
	mu        sync.Mutex
	docker    *client.Client
	image     nodeimage.Image
	imageRef  string
	provider  types.ProviderInfo
	deployed  bool
	method    string // the cold-start method in use ("" until decided)
	refusal   string // why scale-to-zero was not used, when it was not
	resets    int
	lastReset time.Duration
	readyIn   time.Duration // deploy to first available replica
	url       *url.URL
	cold      *coldProxy
	stopped   *coldProxy // the cold proxy Stop closed
}

var (
	_ targets.Target   = (*Target)(nil)
	_ targets.Reporter = (*Target)(nil)
)

// New makes a target from a scenario entry, reading missing settings with
// getenv. It starts nothing.
func New(spec targets.Spec, getenv func(string) string) (*Target, error) {
	if spec.Logf == nil {
		spec.Logf = func(string, ...any) {}
	}
	if spec.Mode == "" {
		spec.Mode = targets.Warm
	}
	if spec.Mode != targets.Warm && spec.Mode != targets.Cold {
		return nil, fmt.Errorf("openfaas target %s: mode %q not supported: want warm or cold", spec.Name, spec.Mode)
	}
	opts, err := ParseOptions(spec.Options, getenv)
	if err != nil {
		return nil, fmt.Errorf("openfaas target %s: %w", spec.Name, err)
	}
	service := opts.Service
	if service == "" {
		service = serviceName(spec.Name)
	}
	t := &Target{spec: spec, opts: opts, service: service}
	if opts.Gateway != nil {
		t.api = &Client{Gateway: opts.Gateway, User: opts.Username, Password: opts.Password, Namespace: opts.Namespace}
	}
	return t, nil
}

// Info describes the target.
func (t *Target) Info() targets.Info {
	return targets.Info{Name: t.spec.Name, Kind: Kind, Mode: t.spec.Mode, Function: t.spec.Function, Variant: "node", Language: "JavaScript"}
}

// URL is where requests go: the gateway's /function/{name}, or in cold
// mode a loopback front that forces a cold start before each request.
func (t *Target) URL() *url.URL {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.url
}

// Start checks the gateway, builds or takes the image, deploys the
// function and waits until it has an available replica. No gateway
// configured, or none answering, is targets.ErrUnavailable (the runner
// skips the target unless the scenario requires it); refused credentials
// or a function that never gets ready are failures.
func (t *Target) Start(ctx context.Context) error {
	if t.api == nil {
		return fmt.Errorf("openfaas target %s: %w: no OpenFaaS gateway configured: set %s or options.%s", t.spec.Name, targets.ErrUnavailable, EnvURL, OptGateway)
	}
	if err := t.start(ctx); err != nil {
		return fmt.Errorf("openfaas target %s: %w", t.spec.Name, err)
	}
	return nil
}

func (t *Target) start(ctx context.Context) error {
	info, err := t.api.Info(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.provider = info
	t.mu.Unlock()
	t.spec.Logf("openfaas: gateway %s, provider %s", t.api.Gateway.Redacted(), info.Name)

	ref := t.opts.Image
	if ref == "" {
		im, err := t.buildImage(ctx)
		if err != nil {
			return err
		}
		t.mu.Lock()
		t.image = im
		t.mu.Unlock()
		ref = im.Ref
	}
	t.mu.Lock()
	t.imageRef = ref
	t.mu.Unlock()

	t0 := time.Now()
	if err := t.deploy(ctx); err != nil {
		return err
	}
	if _, err := t.api.WaitReady(ctx, t.service, t.opts.ReadyTimeout, pollInterval); err != nil {
		return fmt.Errorf("function never became ready (is the image %s pullable by the installation, and does it answer %s on port %d?): %w", ref, nodeimage.HealthPath, nodeimage.Port, err)
	}
	t.mu.Lock()
	t.readyIn = time.Since(t0)
	t.url = t.api.InvokeURL(t.service)
	t.mu.Unlock()
	t.spec.Logf("openfaas: %s ready in %s", t.service, t.readyIn.Round(time.Millisecond))
	if t.spec.Mode == targets.Cold {
		cp, err := startColdProxy(t)
		if err != nil {
			return err
		}
		t.mu.Lock()
		t.cold, t.url = cp, cp.url
		t.mu.Unlock()
	}
	return nil
}

// buildImage builds the function image on the local Docker Engine.
func (t *Target) buildImage(ctx context.Context) (nodeimage.Image, error) {
	cli, err := t.dockerClient(ctx)
	if err != nil {
		return nodeimage.Image{}, fmt.Errorf("building the function image needs the local Docker Engine (or set options.%s): %w", OptImage, err)
	}
	return nodeimage.Build(ctx, cli, nodeimage.Options{
		Function:  t.spec.Function,
		Functions: functions.Open(t.spec.FunctionsDir),
		RunID:     t.spec.RunID,
		Source:    t.opts.ImageSource,
		Logf:      t.spec.Logf,
	})
}

// dockerClient connects to the local Docker Engine once.
func (t *Target) dockerClient(ctx context.Context) (*client.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.docker != nil {
		return t.docker, nil
	}
	cli, err := nodeimage.Connect(ctx)
	if err != nil {
		return nil, err
	}
	t.docker = cli
	return cli, nil
}

// deployment is what the target deploys.
func (t *Target) deployment() types.FunctionDeployment {
	labels := nodeimage.HarnessLabels(t.spec.RunID, map[string]string{
		nodeimage.LabelFunction: t.spec.Function,
		nodeimage.LabelTarget:   t.spec.Name,
		LabelService:            t.service,
		// The label faas-idler and OpenFaaS Pro read to allow scale to zero.
		"com.openfaas.scale.zero": "true",
	})
	return types.FunctionDeployment{
		Service: t.service,
		Image:   t.imageRef,
		EnvVars: t.opts.Env,
		Labels:  &labels,
	}
}

// deploy creates the function, or updates it when one of that name is
// left from an earlier run.
func (t *Target) deploy(ctx context.Context) error {
	dep := t.deployment()
	err := t.api.Deploy(ctx, dep)
	if err != nil {
		if _, serr := t.api.Status(ctx, t.service); serr == nil {
			t.spec.Logf("openfaas: function %s exists; updating it", t.service)
			err = t.api.Update(ctx, dep)
		}
	}
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.deployed = true
	t.mu.Unlock()
	return nil
}

// Reset forces the next request to be a cold start.
func (t *Target) Reset(ctx context.Context) error {
	t0 := time.Now()
	t.mu.Lock()
	cp := t.cold
	t.mu.Unlock()
	if cp != nil {
		// Cold mode: the front takes the function down after every
		// request; wait for its turn so the two never overlap, and leave
		// a redeployed function deleted, as the front expects.
		if err := cp.exclusive(ctx, func() error { return t.makeCold(ctx, false) }); err != nil {
			return fmt.Errorf("openfaas target %s: reset: %w", t.spec.Name, err)
		}
	} else if err := t.makeCold(ctx, true); err != nil {
		return fmt.Errorf("openfaas target %s: reset: %w", t.spec.Name, err)
	}
	t.mu.Lock()
	t.resets++
	t.lastReset = time.Since(t0)
	t.mu.Unlock()
	return nil
}

// Method returns the cold-start method in use, deciding it on first use.
func (t *Target) Method() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.method
}

// makeCold takes the function down by the configured method. With
// redeployNow, the redeploy method also deploys again and waits until
// ready (Reset: the gateway cannot start a deleted function); without it
// the function stays deleted until bringUp.
func (t *Target) makeCold(ctx context.Context, redeployNow bool) error {
	t.mu.Lock()
	method := t.method
	t.mu.Unlock()
	if method == "" {
		var err error
		method, err = t.chooseMethod(ctx)
		if err != nil {
			return err
		}
		// chooseMethod already left the function cold when it decided on
		// scale-to-zero.
		if method == MethodScaleToZero {
			return nil
		}
	}
	switch method {
	case MethodScaleToZero:
		return t.scaleToZero(ctx)
	case MethodRemoveContainer:
		return t.removeContainer(ctx)
	case MethodRedeploy:
		if err := t.undeploy(ctx); err != nil {
			return err
		}
		if redeployNow {
			return t.bringUp(ctx)
		}
		return nil
	}
	return fmt.Errorf("unknown cold-start method %q", method)
}

// chooseMethod decides the cold-start method: the configured one, or for
// auto the first that works of scale-to-zero, remove-container, redeploy.
func (t *Target) chooseMethod(ctx context.Context) (string, error) {
	method := t.opts.ColdStartMethod
	if method == MethodAuto {
		err := t.scaleToZero(ctx)
		switch {
		case err == nil:
			method = MethodScaleToZero
		case errors.Is(err, errRefused):
			t.spec.Logf("openfaas: %v; falling back", err)
			method = MethodRedeploy
			if ids, lerr := t.localContainers(ctx); lerr == nil && len(ids) > 0 {
				method = MethodRemoveContainer
			}
			t.mu.Lock()
			t.refusal = err.Error()
			t.mu.Unlock()
		default:
			return "", err
		}
		t.spec.Logf("openfaas: cold starts by %s", method)
	}
	t.mu.Lock()
	t.method = method
	t.mu.Unlock()
	return method, nil
}

// errRefused marks an installation that does not scale to zero.
var errRefused = errors.New("scale to zero refused")

// scaleToZero scales to 0 replicas and waits until none is left.
func (t *Target) scaleToZero(ctx context.Context) error {
	err := t.api.Scale(ctx, t.service, 0)
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return fmt.Errorf("%w by the installation: %w", errRefused, err)
	}
	if err != nil {
		return err
	}
	st, err := t.api.WaitFor(ctx, t.service, t.opts.ReadyTimeout, pollInterval, "scaled to zero", func(st types.FunctionStatus) bool {
		return st.Replicas == 0 && st.AvailableReplicas == 0
	})
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		// Accepted but not done: a minimum replica count, or a provider
		// that ignores zero.
		return fmt.Errorf("%w: scale to 0 accepted but %d replicas remain: %w", errRefused, st.Replicas, err)
	}
	return nil
}

// localContainers finds the function's containers on the local Docker
// Engine by the deployment's labels.
func (t *Target) localContainers(ctx context.Context) ([]string, error) {
	cli, err := t.dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	f := nodeimage.HarnessFilter(t.spec.RunID).Add("label", LabelService+"="+t.service)
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers of %s: %w", t.service, err)
	}
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// removeContainer removes the function's containers and waits until the
// installation reports no available replica. A function with no container
// is already cold when the installation reports no replica either: the
// cold-mode front took it down after the last request, or an earlier Reset
// did (the runner resets after a repetition and again before the next).
func (t *Target) removeContainer(ctx context.Context) error {
	ids, err := t.localContainers(ctx)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		st, err := t.api.Status(ctx, t.service)
		if err != nil {
			return err
		}
		if st.AvailableReplicas == 0 {
			return nil
		}
		return fmt.Errorf("no container of function %s on the local Docker Engine, but %d available replicas (the installation runs it elsewhere); use %s: %s",
			t.service, st.AvailableReplicas, OptColdStartMethod, MethodRedeploy)
	}
	for _, id := range ids {
		if _, err := t.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove container %.12s of %s: %w", id, t.service, err)
		}
	}
	_, err = t.api.WaitFor(ctx, t.service, t.opts.ReadyTimeout, pollInterval, "without replicas", func(st types.FunctionStatus) bool {
		return st.AvailableReplicas == 0
	})
	return err
}

// undeploy deletes the function and waits until the gateway forgets it.
func (t *Target) undeploy(ctx context.Context) error {
	if err := t.api.Delete(ctx, t.service); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	t.mu.Lock()
	t.deployed = false
	t.mu.Unlock()
	deadline := time.Now().Add(t.opts.ReadyTimeout)
	for {
		_, err := t.api.Status(ctx, t.service)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("function %s still listed %s after delete", t.service, t.opts.ReadyTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// bringUp deploys the function again and waits until it is ready.
func (t *Target) bringUp(ctx context.Context) error {
	if err := t.deploy(ctx); err != nil {
		return err
	}
	_, err := t.api.WaitReady(ctx, t.service, t.opts.ReadyTimeout, pollInterval)
	return err
}

// Stop deletes the function and, when the target built it, leaves the
// image as a cache (`harness clean` removes it, as for docker-node).
func (t *Target) Stop(ctx context.Context) error {
	t.mu.Lock()
	cp, deployed, api := t.cold, t.deployed, t.api
	t.cold = nil
	if cp != nil {
		t.stopped = cp // its counters, for Report after Stop (as the runner calls it)
	}
	t.mu.Unlock()
	var err error
	if cp != nil {
		err = cp.close(ctx)
	}
	if deployed && api != nil {
		if derr := api.Delete(ctx, t.service); derr != nil && !errors.Is(derr, ErrNotFound) {
			err = errors.Join(err, fmt.Errorf("openfaas target %s: stop: %w", t.spec.Name, derr))
		}
		t.mu.Lock()
		t.deployed = false
		t.mu.Unlock()
	}
	t.mu.Lock()
	if t.docker != nil {
		t.docker.Close()
		t.docker = nil
	}
	t.mu.Unlock()
	return err
}

// Report gives run.json the facts of this target: gateway, provider, image
// and its form, and how cold starts were forced.
func (t *Target) Report() map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := map[string]any{
		"service":    t.service,
		"image_form": FormOwnServer,
		"image_form_note": "the function's own Node server on port " + fmt.Sprint(nodeimage.Port) +
			" with health path " + nodeimage.HealthPath + "; of-watchdog needs its image from a registry",
		"cold_start_method": t.method,
		"resets":            t.resets,
		"ready_ns":          t.readyIn.Nanoseconds(),
	}
	if t.api != nil {
		r["gateway"] = t.api.Gateway.Redacted()
	}
	if t.provider.Name != "" {
		r["provider"] = t.provider.Name
		r["orchestration"] = t.provider.Orchestration
		if t.provider.Version != nil {
			r["provider_version"] = t.provider.Version.Release
		}
	}
	if t.refusal != "" {
		r["scale_to_zero_refused"] = t.refusal
	}
	if t.method == MethodRedeploy {
		r["cold_start_note"] = "redeploy: Reset deletes, redeploys and waits until ready, so the start is paid in Reset, not in the next request (cold mode pays it in the request)"
	}
	if t.resets > 0 {
		r["last_reset_ns"] = t.lastReset.Nanoseconds()
	}
	if t.imageRef != "" {
		r["image_ref"] = t.imageRef
	}
	if t.image.ID != "" {
		for k, v := range t.image.Report() {
			r[k] = v
		}
	}
	if cp := cmp.Or(t.cold, t.stopped); cp != nil {
		for k, v := range cp.report() {
			r[k] = v
		}
	}
	return r
}
