package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/common/model"

	"github.com/academemes/harness/meters"
)

// api is the little of Prometheus's HTTP API the driver needs: instant and
// range queries (https://prometheus.io/docs/prometheus/latest/querying/api/).
// The result types are prometheus/common/model's, which decode the API's
// JSON; the official client package would bring in a JSON library this
// module does not otherwise need.
type api struct {
	base   *url.URL
	client *http.Client
}

// maxAnswer bounds one API answer. A range query of a few seconds at a
// fine step over a few hundred series stays far below it.
const maxAnswer = 256 << 20

// errQuery marks an answer in which the server refused the query itself
// (bad_data: a syntax error, a wrong type); retrying cannot help.
var errQuery = errors.New("the server refused the query")

// envelope is the API's answer around every result.
type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// result is the data of a query answer.
type result struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// get calls path with params and returns the data of a successful answer.
func (a *api) get(ctx context.Context, path string, params url.Values) (result, []string, error) {
	var r result
	u := *a.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = params.Encode()
	where := "prometheus " + a.base.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return r, nil, fmt.Errorf("%s: %w", where, err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return r, nil, explain(where, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return r, nil, explain(where, err)
	}
	if len(body) > maxAnswer {
		return r, nil, fmt.Errorf("%s: an answer larger than %d MiB; narrow the query", where, maxAnswer>>20)
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		snippet := strings.TrimSpace(string(body))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "..."
		}
		return r, nil, fmt.Errorf("%w: %s: HTTP %s and not an answer of Prometheus's API (is the URL the server's base, e.g. http://HOST:9090?): %q", meters.ErrUnavailable, where, resp.Status, snippet)
	}
	if env.Status != "success" {
		if env.ErrorType == "bad_data" {
			return r, env.Warnings, fmt.Errorf("%s: %w: %s", where, errQuery, env.Error)
		}
		return r, env.Warnings, fmt.Errorf("%w: %s: HTTP %s: %s: %s", meters.ErrUnavailable, where, resp.Status, env.ErrorType, env.Error)
	}
	if err := json.Unmarshal(env.Data, &r); err != nil {
		return r, env.Warnings, fmt.Errorf("%s: the answer's data: %w", where, err)
	}
	return r, env.Warnings, nil
}

// instant evaluates query now, the server's now.
func (a *api) instant(ctx context.Context, query string) (result, []string, error) {
	return a.get(ctx, "/api/v1/query", url.Values{"query": {query}})
}

// rangeQuery evaluates query at start, start+step, ... up to end (server
// times in ms) and returns its series.
func (a *api) rangeQuery(ctx context.Context, query string, start, end model.Time, step time.Duration) (model.Matrix, []string, error) {
	r, warn, err := a.get(ctx, "/api/v1/query_range", url.Values{
		"query": {query},
		"start": {start.String()},
		"end":   {end.String()},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	})
	if err != nil {
		return nil, warn, err
	}
	if r.ResultType != "matrix" {
		return nil, warn, fmt.Errorf("prometheus %s: a range query answered a %s, not a matrix", a.base, r.ResultType)
	}
	var m model.Matrix
	if err := json.Unmarshal(r.Result, &m); err != nil {
		return nil, warn, fmt.Errorf("prometheus %s: the range query's series: %w", a.base, err)
	}
	return m, warn, nil
}

// serverNow asks the server for its time, evaluating time(): the answer's
// timestamp is the moment the server took the request, to the
// millisecond. t0 and t1 are the harness clock before and after.
func (a *api) serverNow(ctx context.Context, now func() time.Time) (server model.Time, t0, t1 time.Time, err error) {
	t0 = now()
	r, _, err := a.instant(ctx, "time()")
	t1 = now()
	if err != nil {
		return 0, t0, t1, err
	}
	if r.ResultType != "scalar" {
		return 0, t0, t1, fmt.Errorf("prometheus %s: time() answered a %s, not a scalar", a.base, r.ResultType)
	}
	var s model.Scalar
	if err := json.Unmarshal(r.Result, &s); err != nil {
		return 0, t0, t1, fmt.Errorf("prometheus %s: time(): %w", a.base, err)
	}
	return s.Timestamp, t0, t1, nil
}

// explain says what a failed request means. Network failures wrap
// meters.ErrUnavailable: the server may come back.
func explain(where string, err error) error {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %s: connection refused: nothing listens there; is Prometheus running, on this port (default 9090)? %w", meters.ErrUnavailable, where, err)
	case errors.As(err, &dns):
		return fmt.Errorf("%w: %s: cannot resolve the host: %w", meters.ErrUnavailable, where, err)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %s: no answer in time (timeout=): %w", meters.ErrUnavailable, where, err)
	}
	return fmt.Errorf("%w: %s: %w", meters.ErrUnavailable, where, err)
}
