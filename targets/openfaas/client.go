package openfaas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/academemes/harness/targets"
)

// ErrAuth means the gateway refused the credentials for /system/*.
var ErrAuth = errors.New("OpenFaaS gateway refused the credentials")

// ErrNotFound means the gateway knows no function of that name.
var ErrNotFound = errors.New("OpenFaaS function not found")

// APIError is a non-2xx answer of the gateway that is neither an
// authentication refusal nor a missing function.
type APIError struct {
	Op     string // what was asked, e.g. "scale harness-memes to 0"
	Status int
	Body   string // the gateway's message, trimmed
}

func (e *APIError) Error() string {
	return fmt.Sprintf("OpenFaaS %s: HTTP %d: %s", e.Op, e.Status, e.Body)
}

// Client speaks the OpenFaaS REST API as the gateway and its providers
// serve it (https://docs.openfaas.com/reference/rest-api/): /system/* with
// basic auth, /function/{name} without.
type Client struct {
	// Gateway is the base URL, e.g. http://127.0.0.1:8080.
	Gateway *url.URL
	// User and Password are sent as basic auth to /system/* when User is
	// not empty.
	User, Password string
	// Namespace is sent with every request when not empty (Kubernetes).
	Namespace string
	// HTTP is the client used; nil means one with a 30 s timeout.
	HTTP *http.Client
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// InvokeURL is where a function's requests go: /function/{name}.
func (c *Client) InvokeURL(name string) *url.URL {
	u := c.Gateway.JoinPath("function", name)
	if c.Namespace != "" {
		// The gateway takes the namespace as a suffix of the name.
		u = c.Gateway.JoinPath("function", name+"."+c.Namespace)
	}
	return u
}

// do sends one /system request with a JSON body (nil for none) and decodes
// a JSON answer into out (nil to discard). op names the request in errors.
func (c *Client) do(ctx context.Context, op, method, path string, query url.Values, body, out any) error {
	u := c.Gateway.JoinPath(path)
	if c.Namespace != "" {
		if query == nil {
			query = url.Values{}
		}
		query.Set("namespace", c.Namespace)
	}
	if query != nil {
		u.RawQuery = query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("OpenFaaS %s: encode request: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("OpenFaaS %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("OpenFaaS %s: %w", op, ctx.Err())
		}
		return fmt.Errorf("OpenFaaS gateway %s unreachable (%s): %w: %w", c.Gateway.Redacted(), op, targets.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		who := "no credentials"
		if c.User != "" {
			who = "user " + c.User
		}
		return fmt.Errorf("%s: %w (HTTP %d for %s); set options.username/password or OPENFAAS_USERNAME/OPENFAAS_PASSWORD", op, ErrAuth, resp.StatusCode, who)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("OpenFaaS %s: %w: %s", op, ErrNotFound, strings.TrimSpace(string(data)))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return &APIError{Op: op, Status: resp.StatusCode, Body: strings.TrimSpace(string(data))}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("OpenFaaS %s: decode answer: %w", op, err)
		}
	}
	return nil
}

// Info returns the provider's description (/system/info).
func (c *Client) Info(ctx context.Context) (types.ProviderInfo, error) {
	var info types.ProviderInfo
	err := c.do(ctx, "info", http.MethodGet, "/system/info", nil, nil, &info)
	return info, err
}

// Deploy creates a function (POST /system/functions).
func (c *Client) Deploy(ctx context.Context, fn types.FunctionDeployment) error {
	fn.Namespace = c.Namespace
	return c.do(ctx, "deploy "+fn.Service, http.MethodPost, "/system/functions", nil, fn, nil)
}

// Update replaces a function's deployment (PUT /system/functions).
func (c *Client) Update(ctx context.Context, fn types.FunctionDeployment) error {
	fn.Namespace = c.Namespace
	return c.do(ctx, "update "+fn.Service, http.MethodPut, "/system/functions", nil, fn, nil)
}

// List returns every function (GET /system/functions).
func (c *Client) List(ctx context.Context) ([]types.FunctionStatus, error) {
	var fns []types.FunctionStatus
	err := c.do(ctx, "list functions", http.MethodGet, "/system/functions", nil, nil, &fns)
	return fns, err
}

// Status returns one function's status (GET /system/function/{name}).
func (c *Client) Status(ctx context.Context, name string) (types.FunctionStatus, error) {
	var st types.FunctionStatus
	err := c.do(ctx, "status of "+name, http.MethodGet, "/system/function/"+url.PathEscape(name), nil, nil, &st)
	return st, err
}

// Delete removes a function (DELETE /system/functions).
func (c *Client) Delete(ctx context.Context, name string) error {
	req := types.DeleteFunctionRequest{FunctionName: name, Namespace: c.Namespace}
	return c.do(ctx, "delete "+name, http.MethodDelete, "/system/functions", nil, req, nil)
}

// Scale sets a function's replicas (POST /system/scale-function/{name}).
func (c *Client) Scale(ctx context.Context, name string, replicas uint64) error {
	req := types.ScaleServiceRequest{ServiceName: name, Replicas: replicas, Namespace: c.Namespace}
	return c.do(ctx, fmt.Sprintf("scale %s to %d", name, replicas), http.MethodPost, "/system/scale-function/"+url.PathEscape(name), nil, req, nil)
}

// WaitFor polls the function's status every poll until cond holds, and
// gives up after timeout with an error that says what was last seen.
func (c *Client) WaitFor(ctx context.Context, name string, timeout, poll time.Duration, what string, cond func(types.FunctionStatus) bool) (types.FunctionStatus, error) {
	deadline := time.Now().Add(timeout)
	var last types.FunctionStatus
	var lastErr error
	for {
		st, err := c.Status(ctx, name)
		switch {
		case err == nil:
			last, lastErr = st, nil
			if cond(st) {
				return st, nil
			}
		case errors.Is(err, ErrAuth), errors.Is(err, targets.ErrUnavailable), ctx.Err() != nil:
			return st, err
		default:
			// A function just deployed may not be listed yet.
			lastErr = err
		}
		if time.Now().After(deadline) {
			seen := fmt.Sprintf("replicas %d, available %d", last.Replicas, last.AvailableReplicas)
			if lastErr != nil {
				seen = lastErr.Error()
			}
			return last, fmt.Errorf("OpenFaaS function %s not %s after %s (last seen: %s)", name, what, timeout, seen)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, fmt.Errorf("waiting for OpenFaaS function %s to be %s: %w", name, what, ctx.Err())
		case <-t.C:
		}
	}
}

// WaitReady waits until at least one replica of the function is available.
func (c *Client) WaitReady(ctx context.Context, name string, timeout, poll time.Duration) (types.FunctionStatus, error) {
	return c.WaitFor(ctx, name, timeout, poll, "ready", func(st types.FunctionStatus) bool { return st.AvailableReplicas > 0 })
}
