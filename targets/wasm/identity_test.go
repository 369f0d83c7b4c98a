package wasm

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
)

// identityCorpus are requests every build of a function must answer with
// the same status, Content-Type and body bytes.
var identityCorpus = map[string][]struct{ query, body, accept string }{
	"fibonacci": {
		{"", `{"n": 10}`, ""}, {"", `{"n":0}`, ""}, {"", `{"n":20.0}`, ""}, {"", `{"n":2e1}`, ""}, {"", ` {"x":1,"n":7} `, ""},
		{"", `{"n":7,"n":8}`, ""}, {"", `{"\u006e":9}`, ""}, {"", `{"n":51}`, ""}, {"", `{"n":-1}`, ""}, {"", `{"n":1.5}`, ""},
		{"", `{"n":"10"}`, ""}, {"", `{"N":10}`, ""}, {"", `[10]`, ""}, {"", `{"n":10,}`, ""}, {"", `{"n":010}`, ""},
		{"", `{"n":1e400}`, ""}, {"", `not json`, ""}, {"n=12", "", ""}, {"n=%31%32", "", ""}, {"n=1.0", "", ""},
		{"n=-0", "", ""}, {"m=1", "", ""}, {"", "", ""}, {"n=5&n=6", "", ""}, {"", `{"n":null}`, ""}, {"", `{"n":25}`, ""},
	},
	"memes": {
		{"", `{"id": 3}`, ""}, {"", `{"id":44}`, ""}, {"", `{"id":45}`, ""}, {"", `{"id":0}`, ""}, {"", `{"id":-7}`, ""},
		{"", `{"id":9007199254740991}`, ""}, {"", `{"id":9007199254740993}`, ""}, {"", `{"id":"3"}`, ""}, {"", `{}`, ""},
		{"", "", ""}, {"id=", "", ""}, {"id=2", "", ""}, {"id=2", "", "text/html,application/xhtml+xml"}, {"id=1", "", "text/html"},
		{"id=44", "", "text/html"}, {"id=99", "", "text/html"}, {"", `{"id":5}`, "application/json"}, {"id=x", "", ""},
		{"", `{"id":12e0}`, ""}, {"", `{"id":{"id":3}}`, ""},
		// Bodies longer than the reactor's first read and with escaped names.
		{"", `{"pad":"` + strings.Repeat("x", 3000) + `","id":6}`, ""}, {"", strings.Repeat(" ", 700) + `{"id":8}`, ""},
		{"", `{"i\u0064":9,"a\"b":1}`, ""}, {"", "{\"id\":3,\"x\":\"\t\"}", ""},
	},
	"factorial":   {{"", `{"n": 0}`, ""}, {"", `{"n":25}`, ""}, {"", `{"n":5001}`, ""}, {"n=30", "", ""}},
	"prime":       {{"", `{"n": 1}`, ""}, {"", `{"n":1000}`, ""}, {"", `{"n":0}`, ""}, {"n=10", "", ""}},
	"exponential": {{"", `{"n": 0}`, ""}, {"", `{"n":1}`, ""}, {"", `{"n":10}`, ""}, {"", `{"n":50}`, ""}, {"", `{"n":709}`, ""}, {"", `{"n":710}`, ""}},
}

// roundedCorpus are inputs that only a double rounds to an integer: the
// small C builds judge numbers exactly in decimal and refuse them (a
// documented difference, functions/README.md), every other build accepts
// them as the Go build does.
var roundedCorpus = []struct{ query, body, accept string }{
	{"", `{"n":20.0000000000000000001}`, ""}, {"", `{"id":3.00000000000000000001}`, ""}, {"", `{"n":1e-400}`, ""},
	{"", `{"n":19.999999999999999999}`, ""}, {"", `{"id":2.9999999999999999999e0}`, ""},
}

// TestBuildsAnswerIdentically checks that every build of a function (Go
// command, Go reactor in warm and snapshot mode, the small C build and the
// Rust build, each cold, prewarmed, snapshot and warm) gives the same bytes
// for the same request, over the committed .wasm files.
func TestBuildsAnswerIdentically(t *testing.T) {
	if testing.Short() {
		t.Skip("loads every Go build (-short)")
	}
	// The interpreter: ten 2 MB Go modules would take most of a minute to
	// compile on a small machine; byte identity does not need speed.
	p, err := NewPlatform(Options{Interpreter: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(p.Handler(HandlerOptions{}))
	defer srv.Close()
	fsys := functions.FS()
	ctx := context.Background()
	for fn, corpus := range identityCorpus {
		t.Run(fn, func(t *testing.T) {
			type build struct {
				name, variant string
				mode          targets.Mode
			}
			builds := []build{{fn + "-go", "", targets.Cold}, {fn + "-reactor", "reactor", targets.Warm}, {fn + "-reactor-snapshot", "reactor", targets.Snapshot}}
			// The builds without the Go runtime serve every mode from one
			// module (functions/README.md).
			for _, v := range []string{"small", "rust"} {
				if _, err := functions.Module(fsys, fn, v); err == nil {
					builds = append(builds, build{fn + "-" + v + "-cold", v, targets.Cold}, build{fn + "-" + v + "-warm", v, targets.Warm},
						build{fn + "-" + v + "-prewarmed", v, targets.Prewarmed}, build{fn + "-" + v + "-snapshot", v, targets.Snapshot})
				}
			}
			for _, b := range builds {
				mod, err := functions.Module(fsys, fn, b.variant)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Deploy(ctx, b.name, mod, FunctionConfig{Mode: b.mode, Timeout: Duration(60e9)}); err != nil {
					t.Fatal(err)
				}
			}
			type input = struct{ query, body, accept string }
			all := append([]input{}, corpus...)
			for _, c := range roundedCorpus {
				all = append(all, input{c.query, c.body, c.accept})
			}
			for i, c := range all {
				var first string
				for _, b := range builds {
					if i >= len(corpus) && b.variant == "small" {
						continue
					}
					req, _ := http.NewRequest("POST", srv.URL+"/fn/"+b.name+"?"+c.query, strings.NewReader(c.body))
					if c.body == "" {
						req.Method = "GET"
					}
					if c.accept != "" {
						req.Header.Set("Accept", c.accept)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					var sb bytes.Buffer
					_, _ = sb.ReadFrom(resp.Body)
					resp.Body.Close()
					got := fmt.Sprintf("%d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), sb.String())
					if resp.StatusCode >= 500 {
						t.Fatalf("%s query %q body %q: %s", b.name, c.query, c.body, got)
					}
					if first == "" {
						first = got
						continue
					}
					if got != first {
						t.Errorf("query %q body %q accept %q:\n%s answered %.300q\n%s answered %.300q", c.query, c.body, c.accept, builds[0].name, first, b.name, got)
					}
				}
			}
		})
	}
}
