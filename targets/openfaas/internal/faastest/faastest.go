// Package faastest is a stand-in for an OpenFaaS installation, for tests
// and measurements on a machine that has a Docker Engine but no OpenFaaS:
// the provider API of OpenFaaS's own server SDK (faas-provider's
// bootstrap.Serve, with its basic auth) in front of function containers
// run on the local Docker Engine, plus what the gateway adds (scale from
// zero on /function/{name}).
//
// It is test support, like net/http/httptest: the harness binary never
// imports it. It behaves like a one-node provider: one replica at most per
// function, a container per replica, published on a loopback port.
package faastest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/gorilla/mux"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	bootstrap "github.com/openfaas/faas-provider"
	"github.com/openfaas/faas-provider/auth"
	"github.com/openfaas/faas-provider/types"
)

// Label is put on every container the stand-in creates (beside the
// deployment's own labels), with the provider's own id as its value, so a
// test can check that nothing of its provider is left even while other
// test processes run containers of their own.
const Label = "io.academemes.harness.faastest"

// LabelService carries the OpenFaaS function name on its containers.
const LabelService = "com.openfaas.service"

// RefuseZeroMessage is what faasd's community edition answers to a scale
// to zero replicas (HTTP 400); the stand-in answers the same when
// Config.RefuseZero is set.
const RefuseZeroMessage = "replicas must > 0 for faasd CE"

// Config sets up a stand-in provider.
type Config struct {
	// Docker runs the function containers.
	Docker *client.Client
	// User and Password protect /system/* with basic auth.
	User, Password string
	// RefuseZero makes a scale to 0 replicas fail as faasd CE does.
	RefuseZero bool
	// Port is the port the function server listens on in its container.
	Port int
	// HealthPath answers 200 once a function container is ready.
	HealthPath string
	// ReadyTimeout bounds how long an invocation waits for a scale from
	// zero (0: 30 s); the gateway answers 504 after it.
	ReadyTimeout time.Duration
	// Logf reports what the provider does; nil is quiet.
	Logf func(format string, args ...any)
}

// Provider is a running stand-in. Only one runs per process at a time:
// bootstrap.Serve registers its routes on one package-level router.
type Provider struct {
	// URL is the gateway's base URL, on loopback.
	URL *url.URL

	cfg   Config
	srv   *http.Server
	probe *http.Client

	id string // value of Label on this provider's containers

	mu  sync.Mutex
	fns map[string]*function
}

// function is one deployed function.
type function struct {
	mu          sync.Mutex // serialises starts and stops of its container
	dep         types.FunctionDeployment
	created     time.Time
	replicas    uint64 // desired
	id          string // container id, "" when none
	addr        string // 127.0.0.1:port of the running container
	ready       bool
	invocations atomic.Int64
}

var (
	serveOnce sync.Once
	current   atomic.Pointer[Provider]
)

// route delegates to the provider that runs now.
func route(pick func(*Provider) http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := current.Load()
		if p == nil {
			http.Error(w, "no stand-in provider running", http.StatusServiceUnavailable)
			return
		}
		pick(p)(w, r)
	}
}

// router registers the provider routes once per process through
// bootstrap.Serve and returns faas-provider's router. Serve listens on all
// interfaces itself; it is given a cancelled context so it registers the
// routes, shuts its own listener straight down and returns, and the
// router is then served on loopback only.
func router() http.Handler {
	serveOnce.Do(func() {
		handlers := &types.FaaSHandlers{
			FunctionLister: route(func(p *Provider) http.HandlerFunc { return p.auth(p.list) }),
			DeployFunction: route(func(p *Provider) http.HandlerFunc { return p.auth(p.deploy) }),
			UpdateFunction: route(func(p *Provider) http.HandlerFunc { return p.auth(p.update) }),
			DeleteFunction: route(func(p *Provider) http.HandlerFunc { return p.auth(p.delete) }),
			FunctionStatus: route(func(p *Provider) http.HandlerFunc { return p.auth(p.status) }),
			ScaleFunction:  route(func(p *Provider) http.HandlerFunc { return p.auth(p.scale) }),
			Info:           route(func(p *Provider) http.HandlerFunc { return p.auth(p.info) }),
			Secrets:        route(func(p *Provider) http.HandlerFunc { return p.auth(notImplemented) }),
			Logs:           route(func(p *Provider) http.HandlerFunc { return p.auth(notImplemented) }),
			ListNamespaces: route(func(p *Provider) http.HandlerFunc { return p.auth(p.namespaces) }),
			FunctionProxy:  route(func(p *Provider) http.HandlerFunc { return p.proxy }),
			Health:         func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") },
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		zero := 0
		bootstrap.Serve(ctx, handlers, &types.FaaSConfig{TCPPort: &zero, EnableHealth: true})
	})
	return bootstrap.Router()
}

// Start runs a stand-in provider on a loopback port. Close it when done.
func Start(cfg Config) (*Provider, error) {
	if cfg.Docker == nil {
		return nil, errors.New("faastest: no Docker client")
	}
	if cfg.Port == 0 {
		cfg.Port = 8080
	}
	if cfg.HealthPath == "" {
		cfg.HealthPath = "/_/health"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	p := &Provider{
		cfg:   cfg,
		fns:   map[string]*function{},
		probe: &http.Client{Timeout: time.Second},
		id:    fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()),
	}
	if !current.CompareAndSwap(nil, p) {
		return nil, errors.New("faastest: a stand-in provider already runs in this process")
	}
	h := router()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		current.Store(nil)
		return nil, fmt.Errorf("faastest: listen on loopback: %w", err)
	}
	p.URL = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	p.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// Close stops serving and removes every container the provider created.
func (p *Provider) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	p.mu.Lock()
	fns := maps.Clone(p.fns)
	p.fns = map[string]*function{}
	p.mu.Unlock()
	for _, fn := range fns {
		fn.mu.Lock()
		err = errors.Join(err, p.removeContainer(ctx, fn))
		fn.mu.Unlock()
	}
	current.CompareAndSwap(p, nil)
	return err
}

// Containers lists the ids of the containers that carry the stand-in's
// label, running or not.
func (p *Provider) Containers(ctx context.Context) ([]string, error) {
	res, err := p.cfg.Docker.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", Label+"="+p.id),
	})
	if err != nil {
		return nil, fmt.Errorf("faastest: list containers: %w", err)
	}
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

func (p *Provider) auth(next http.HandlerFunc) http.HandlerFunc {
	return auth.DecorateWithBasicAuth(next, &auth.BasicAuthCredentials{User: p.cfg.User, Password: p.cfg.Password})
}

func notImplemented(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "not implemented by the stand-in provider", http.StatusNotImplemented)
}

func (p *Provider) lookup(name string) *function {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fns[name]
}

func (p *Provider) info(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, types.ProviderInfo{
		Name:          "faastest",
		Orchestration: "docker",
		Version:       &types.VersionInfo{Release: "stand-in", SHA: "none"},
	})
}

func (p *Provider) namespaces(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []string{})
}

func (p *Provider) list(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	fns := make([]*function, 0, len(p.fns))
	for _, fn := range p.fns {
		fns = append(fns, fn)
	}
	p.mu.Unlock()
	out := []types.FunctionStatus{}
	for _, fn := range fns {
		out = append(out, p.statusOf(r.Context(), fn))
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *Provider) status(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	fn := p.lookup(name)
	if fn == nil {
		http.Error(w, "function "+name+" not found", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, p.statusOf(r.Context(), fn))
}

// statusOf checks the container itself, so that a container removed
// behind the provider's back shows as zero replicas (as faasd reports a
// function whose task is gone).
func (p *Provider) statusOf(ctx context.Context, fn *function) types.FunctionStatus {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if fn.id != "" {
		alive, err := p.alive(ctx, fn.id)
		if err == nil && !alive {
			p.cfg.Logf("faastest: container of %s is gone", fn.dep.Service)
			_ = p.removeContainer(ctx, fn)
		}
	}
	if fn.id != "" && !fn.ready {
		fn.ready = p.healthy(ctx, fn.addr)
	}
	st := types.FunctionStatus{
		Name:            fn.dep.Service,
		Image:           fn.dep.Image,
		Namespace:       fn.dep.Namespace,
		EnvProcess:      fn.dep.EnvProcess,
		EnvVars:         fn.dep.EnvVars,
		Labels:          fn.dep.Labels,
		Annotations:     fn.dep.Annotations,
		InvocationCount: float64(fn.invocations.Load()),
		CreatedAt:       fn.created,
	}
	if fn.id != "" {
		st.Replicas = 1
		if fn.ready {
			st.AvailableReplicas = 1
		}
	}
	return st
}

func (p *Provider) deploy(w http.ResponseWriter, r *http.Request) {
	var dep types.FunctionDeployment
	if err := json.NewDecoder(r.Body).Decode(&dep); err != nil {
		http.Error(w, "bad deployment: "+err.Error(), http.StatusBadRequest)
		return
	}
	if dep.Service == "" || dep.Image == "" {
		http.Error(w, "service and image are required", http.StatusBadRequest)
		return
	}
	fn := &function{dep: dep, created: time.Now(), replicas: 1}
	p.mu.Lock()
	if _, dup := p.fns[dep.Service]; dup {
		p.mu.Unlock()
		http.Error(w, "function "+dep.Service+" already exists", http.StatusConflict)
		return
	}
	p.fns[dep.Service] = fn
	p.mu.Unlock()
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if err := p.runContainer(r.Context(), fn); err != nil {
		p.mu.Lock()
		delete(p.fns, dep.Service)
		p.mu.Unlock()
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (p *Provider) update(w http.ResponseWriter, r *http.Request) {
	var dep types.FunctionDeployment
	if err := json.NewDecoder(r.Body).Decode(&dep); err != nil {
		http.Error(w, "bad deployment: "+err.Error(), http.StatusBadRequest)
		return
	}
	fn := p.lookup(dep.Service)
	if fn == nil {
		http.Error(w, "function "+dep.Service+" not found", http.StatusNotFound)
		return
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if err := p.removeContainer(r.Context(), fn); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fn.dep = dep
	if fn.replicas > 0 {
		if err := p.runContainer(r.Context(), fn); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

func (p *Provider) delete(w http.ResponseWriter, r *http.Request) {
	var req types.DeleteFunctionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "bad delete request: "+err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	fn := p.fns[req.FunctionName]
	delete(p.fns, req.FunctionName)
	p.mu.Unlock()
	if fn == nil {
		http.Error(w, "function "+req.FunctionName+" not found", http.StatusNotFound)
		return
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if err := p.removeContainer(r.Context(), fn); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (p *Provider) scale(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	var req types.ScaleServiceRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "bad scale request: "+err.Error(), http.StatusBadRequest)
		return
	}
	fn := p.lookup(name)
	if fn == nil {
		http.Error(w, "function "+name+" not found", http.StatusNotFound)
		return
	}
	if req.Replicas == 0 && p.cfg.RefuseZero {
		http.Error(w, RefuseZeroMessage, http.StatusBadRequest)
		return
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	fn.replicas = min(req.Replicas, 1)
	var err error
	switch {
	case fn.replicas == 0:
		err = p.removeContainer(r.Context(), fn)
	case fn.id == "":
		err = p.runContainer(r.Context(), fn)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// proxy is the gateway's /function/{name}: it scales the function from
// zero when no container runs, waits until it is ready, and forwards.
func (p *Provider) proxy(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	fn := p.lookup(name)
	if fn == nil {
		http.Error(w, "function "+name+" not found", http.StatusNotFound)
		return
	}
	addr, err := p.ensureReady(r.Context(), fn)
	if err != nil {
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
		return
	}
	fn.invocations.Add(1)
	rest := strings.TrimPrefix(r.URL.Path, "/function/"+name)
	target := &url.URL{Scheme: "http", Host: addr}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = "/" + strings.TrimPrefix(rest, "/")
			pr.Out.URL.RawPath = ""
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// A container that died: forget it, so the next request
			// scales from zero again, as the gateway does.
			fn.mu.Lock()
			if fn.addr == addr {
				fn.ready = false
				if alive, aerr := p.alive(r.Context(), fn.id); aerr == nil && !alive {
					_ = p.removeContainer(r.Context(), fn)
				}
			}
			fn.mu.Unlock()
			http.Error(w, "function "+name+": "+err.Error(), http.StatusBadGateway)
		},
	}
	rp.ServeHTTP(w, r)
}

// ensureReady returns the address of a ready container of fn, starting one
// when there is none (scale from zero).
func (p *Provider) ensureReady(ctx context.Context, fn *function) (string, error) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if fn.ready && fn.id != "" {
		return fn.addr, nil
	}
	if fn.id == "" {
		p.cfg.Logf("faastest: scaling %s from zero", fn.dep.Service)
		fn.replicas = 1
		if err := p.runContainer(ctx, fn); err != nil {
			return "", err
		}
	}
	deadline := time.Now().Add(p.cfg.ReadyTimeout)
	for !p.healthy(ctx, fn.addr) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("function %s not ready after %s", fn.dep.Service, p.cfg.ReadyTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	fn.ready = true
	return fn.addr, nil
}

// runContainer creates and starts fn's container; fn.mu is held.
func (p *Provider) runContainer(ctx context.Context, fn *function) error {
	port, err := network.ParsePort(strconv.Itoa(p.cfg.Port) + "/tcp")
	if err != nil {
		return err
	}
	labels := map[string]string{}
	if fn.dep.Labels != nil {
		maps.Copy(labels, *fn.dep.Labels)
	}
	labels[Label] = p.id
	labels[LabelService] = fn.dep.Service
	var env []string
	for k, v := range fn.dep.EnvVars {
		env = append(env, k+"="+v)
	}
	cfg := &container.Config{
		Image:        fn.dep.Image,
		Env:          env,
		Labels:       labels,
		ExposedPorts: network.PortSet{port: {}},
	}
	if fn.dep.EnvProcess != "" {
		// of-watchdog runs fprocess as the function's server; without a
		// watchdog it is the container's command.
		cfg.Cmd = strings.Fields(fn.dep.EnvProcess)
	}
	host := &container.HostConfig{
		PortBindings: network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1")}}},
	}
	res, err := p.cfg.Docker.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: host})
	if err != nil {
		return fmt.Errorf("create container for %s: %w", fn.dep.Service, err)
	}
	fn.id, fn.ready, fn.addr = res.ID, false, ""
	if _, err := p.cfg.Docker.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		_ = p.removeContainer(ctx, fn)
		return fmt.Errorf("start container for %s: %w", fn.dep.Service, err)
	}
	in, err := p.cfg.Docker.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
	if err != nil {
		_ = p.removeContainer(ctx, fn)
		return fmt.Errorf("inspect container for %s: %w", fn.dep.Service, err)
	}
	if ns := in.Container.NetworkSettings; ns != nil {
		for _, b := range ns.Ports[port] {
			if b.HostIP.Is4() {
				fn.addr = net.JoinHostPort("127.0.0.1", b.HostPort)
			}
		}
	}
	if fn.addr == "" {
		_ = p.removeContainer(ctx, fn)
		return fmt.Errorf("container for %s has no published port %s", fn.dep.Service, port)
	}
	p.cfg.Logf("faastest: %s runs in container %.12s at %s", fn.dep.Service, fn.id, fn.addr)
	return nil
}

// removeContainer removes fn's container if any; fn.mu is held.
func (p *Provider) removeContainer(ctx context.Context, fn *function) error {
	if fn.id == "" {
		return nil
	}
	id := fn.id
	fn.id, fn.addr, fn.ready = "", "", false
	_, err := p.cfg.Docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %.12s of %s: %w", id, fn.dep.Service, err)
	}
	return nil
}

// alive reports whether the container exists and runs.
func (p *Provider) alive(ctx context.Context, id string) (bool, error) {
	in, err := p.cfg.Docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return in.Container.State != nil && in.Container.State.Running, nil
}

// healthy asks the function's health path once.
func (p *Provider) healthy(ctx context.Context, addr string) bool {
	if addr == "" {
		return false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+p.cfg.HealthPath, nil)
	if err != nil {
		return false
	}
	resp, err := p.probe.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Printf("faastest: write answer: %v", err)
	}
}
