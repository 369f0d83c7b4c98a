package dockernode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/internal/nodeimage"
)

// The stdin cold-start method (ColdStdin): the original study ran each
// request as `docker run --rm -i IMAGE` with the function reading the
// request on stdin. Here the same happens through the Engine API, as the
// docker CLI does it: create a container with stdin open for one attach
// (OpenStdin, StdinOnce), attach to its streams, start it, write the body
// and close stdin, read the answer from stdout until the container exits,
// and remove it. The container runs nodeimage.StdinScript in the
// function's image; its answer is the function ABI's CGI form, the
// request facts are in its environment.

// maxStdinBody bounds the request body given to a container, as Purify's
// default max_request_bytes; maxStdinAnswer bounds what is read back.
const (
	maxStdinBody   = 1 << 20
	maxStdinAnswer = 8 << 20
)

// serveColdStdin is the cold-mode proxy of the stdin method: one fresh
// container per request, the request on its stdin.
func (t *Target) serveColdStdin(w http.ResponseWriter, r *http.Request) {
	t.inflight.Add(1)
	defer t.inflight.Done()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxStdinBody+1))
	if err != nil || len(body) > maxStdinBody {
		http.Error(w, fmt.Sprintf("docker-node: request body unreadable or over %d bytes", maxStdinBody), http.StatusRequestEntityTooLarge)
		return
	}
	select {
	case t.slots <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	res, err := t.runStdin(r.Context(), r, body)
	if res.id != "" {
		t.removes.Add(1)
		go func() {
			// Remove once the answer is read, like --rm; the slot frees
			// once the container is gone.
			defer t.removes.Done()
			defer func() { <-t.slots }()
			rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			t0 := time.Now()
			if _, err := t.engine().ContainerRemove(rctx, res.id, client.ContainerRemoveOptions{Force: true}); err != nil {
				t.stats.addFailure(fmt.Sprintf("removing container %.12s: %v", res.id, err))
				t.spec.Logf("%s: removing container %.12s: %v", t.spec.Name, res.id, err)
				return
			}
			t.stats.addRemove(time.Since(t0))
		}()
	} else {
		<-t.slots
	}
	h := w.Header()
	if res.id != "" {
		h.Set(targets.HeaderColdStart, "1")
	}
	if res.startup > 0 {
		h.Set(targets.HeaderStartNs, strconv.FormatInt(res.startup.Nanoseconds(), 10))
	}
	if err != nil {
		t.stats.addFailure(err.Error())
		http.Error(w, "docker-node: "+err.Error(), http.StatusBadGateway)
		return
	}
	for k, vs := range res.header {
		h[k] = vs
	}
	w.WriteHeader(res.status)
	w.Write(res.body)
	t.stats.addCold()
}

// engine is the client of the Docker Engine that Start connected.
func (t *Target) engine() *client.Client {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cli
}

// stdinResult is what one stdin container gave.
type stdinResult struct {
	id      string        // the container, "" when none was created
	startup time.Duration // create to the function loaded; 0 when unknown
	status  int
	header  http.Header
	body    []byte
}

// runStdin runs the request r with body in a fresh container and returns
// its answer. The container is left for the caller to remove (res.id).
func (t *Target) runStdin(ctx context.Context, r *http.Request, body []byte) (stdinResult, error) {
	t.mu.Lock()
	cli, im, stopped := t.cli, t.image, t.stopped
	t.mu.Unlock()
	var res stdinResult
	if cli == nil || stopped {
		return res, errors.New("target not started")
	}
	ctx, cancel := context.WithTimeout(ctx, t.opts.ReadyTimeout+time.Minute)
	defer cancel()
	env := []string{
		"GATEWAY_INTERFACE=CGI/1.1",
		"REQUEST_METHOD=" + r.Method,
		"SCRIPT_NAME=/fn/" + t.spec.Function,
		"PATH_INFO=" + r.URL.Path,
		"QUERY_STRING=" + r.URL.RawQuery,
		"CONTENT_TYPE=" + r.Header.Get("Content-Type"),
		"CONTENT_LENGTH=" + strconv.Itoa(len(body)),
		"SERVER_PROTOCOL=" + r.Proto,
	}
	if a := r.Header.Get("Accept"); a != "" {
		env = append(env, "HTTP_ACCEPT="+a)
	}
	t0 := time.Now()
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:        im.ID,
			Labels:       t.labels(),
			Cmd:          []string{"node", nodeimage.StdinScript},
			Env:          env,
			AttachStdin:  true,
			AttachStdout: true,
			AttachStderr: true,
			OpenStdin:    true,
			StdinOnce:    true,
		},
		HostConfig: &container.HostConfig{
			NetworkMode: "none", // it reads stdin and writes stdout, nothing else
			Resources: container.Resources{
				NanoCPUs:   int64(t.opts.CPUs * 1e9),
				CpusetCpus: t.opts.Cpuset,
				Memory:     t.opts.Memory,
			},
		},
	})
	if err != nil {
		return res, fmt.Errorf("creating container from %s: %w", im.Ref, err)
	}
	res.id = created.ID
	att, err := cli.ContainerAttach(ctx, res.id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return res, fmt.Errorf("attaching to container %.12s: %w", res.id, err)
	}
	defer att.Close()
	// Read the streams from now on, so that a container that writes
	// before it reads is never blocked by us.
	var stdout limitedBuffer
	stdout.limit = maxStdinAnswer
	stderr := &readyWriter{marker: []byte(nodeimage.StdinReady)}
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&stdout, stderr, att.Reader)
		copied <- err
	}()
	if _, err := cli.ContainerStart(ctx, res.id, client.ContainerStartOptions{}); err != nil {
		return res, fmt.Errorf("starting container %.12s: %w", res.id, err)
	}
	if _, err := att.Conn.Write(body); err != nil {
		return res, fmt.Errorf("writing the request to container %.12s: %w", res.id, err)
	}
	if err := att.CloseWrite(); err != nil {
		return res, fmt.Errorf("closing the stdin of container %.12s: %w", res.id, err)
	}
	select {
	case err = <-copied:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if at := stderr.readyAt(); !at.IsZero() {
		res.startup = at.Sub(t0)
		t.stats.addStart(res.startup)
	}
	if err != nil {
		return res, fmt.Errorf("reading container %.12s: %w", res.id, err)
	}
	if code := t.exitCode(ctx, cli, res.id); code != 0 {
		return res, fmt.Errorf("container %.12s exited with code %d: %s", res.id, code, stderr.tail())
	}
	res.status, res.header, res.body, err = parseAnswer(stdout.Bytes())
	if err != nil {
		return res, fmt.Errorf("container %.12s: %w", res.id, err)
	}
	return res, nil
}

// exitCode waits for the container to stop (its output has ended) and
// returns its exit code, or -1 when the engine does not say.
func (t *Target) exitCode(ctx context.Context, cli *client.Client, id string) int64 {
	wait := cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case w := <-wait.Result:
		if w.Error != nil {
			return -1
		}
		return w.StatusCode
	case <-wait.Error:
		return -1
	case <-ctx.Done():
		return -1
	}
}

// parseAnswer reads the function ABI's stdout form: header lines ("Status:
// 404 Not Found", "Content-Type: ..."), each ended by "\r\n" or "\n", an
// empty line, the body.
func parseAnswer(b []byte) (status int, h http.Header, body []byte, err error) {
	status, h = http.StatusOK, http.Header{}
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return 0, nil, nil, fmt.Errorf("no end of the header block in the answer %.100q", b)
		}
		line := strings.TrimSuffix(string(b[:i]), "\r")
		b = b[i+1:]
		if line == "" {
			return status, h, b, nil
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return 0, nil, nil, fmt.Errorf("malformed header line %q in the answer", line)
		}
		v = strings.TrimSpace(v)
		switch http.CanonicalHeaderKey(k) {
		case "Status":
			code, _, _ := strings.Cut(v, " ")
			if status, err = strconv.Atoi(code); err != nil || status < 100 || status > 999 {
				return 0, nil, nil, fmt.Errorf("bad status %q in the answer", v)
			}
		case "Content-Length", "Connection", "Transfer-Encoding", targets.HeaderColdStart, targets.HeaderStartNs:
			// the proxy's own
		default:
			h.Add(k, v)
		}
	}
}

// limitedBuffer keeps the first limit bytes written and fails after.
type limitedBuffer struct {
	bytes.Buffer
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		return 0, fmt.Errorf("answer over %d bytes", b.limit)
	}
	return b.Buffer.Write(p)
}

// readyWriter takes a container's stderr: it notes when marker has been
// written and keeps the last KiB for error messages.
type readyWriter struct {
	marker []byte
	mu     sync.Mutex
	seen   []byte
	at     time.Time
}

func (w *readyWriter) Write(p []byte) (int, error) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, p...)
	if w.at.IsZero() && bytes.Contains(w.seen, w.marker) {
		w.at = now
	}
	if len(w.seen) > 1024+len(w.marker) {
		w.seen = w.seen[len(w.seen)-1024-len(w.marker):]
	}
	return len(p), nil
}

func (w *readyWriter) readyAt() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.at
}

func (w *readyWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.TrimSpace(strings.Replace(string(w.seen), string(w.marker), "", 1))
	if s == "" {
		return "no output on stderr"
	}
	return s
}
