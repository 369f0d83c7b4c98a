package dockernode

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/internal/dockertest"
)

func TestParseAnswer(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		status  int
		ctype   string
		body    string
		wantErr string
	}{
		{"the ABI's form", "Status: 404 Not Found\r\nContent-Type: application/json\r\n\r\n{}\n", 404, "application/json", "{}\n", ""},
		{"bare newlines", "Content-Type: text/plain\n\nhi", 200, "text/plain", "hi", ""},
		{"the proxy's headers are its own", "Status: 200 OK\r\nX-Cold-Start: 0\r\nContent-Length: 9\r\n\r\nx", 200, "", "x", ""},
		{"a body with blank lines", "Status: 200 OK\r\n\r\na\r\n\r\nb", 200, "", "a\r\n\r\nb", ""},
		{"no header block", "just text", 0, "", "", "no end of the header block"},
		{"not a header", "oops\r\n\r\n", 0, "", "", `malformed header line "oops"`},
		{"bad status", "Status: abc\r\n\r\n", 0, "", "", `bad status "abc"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body, err := parseAnswer([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || h.Get("Content-Type") != tc.ctype || string(body) != tc.body {
				t.Errorf("got %d %q %q, want %d %q %q", status, h.Get("Content-Type"), body, tc.status, tc.ctype, tc.body)
			}
			if h.Get(targets.HeaderColdStart) != "" || h.Get("Content-Length") != "" {
				t.Errorf("passed on the proxy's own headers: %v", h)
			}
		})
	}
}

// TestColdStdin: the study's `docker run --rm -i` form answers what the
// HTTP form answers, marks every answer a cold start with its start-up
// time, fails a crashing request alone, and leaves no container behind.
func TestColdStdin(t *testing.T) {
	cli := dockertest.Engine(t)
	d := startEcho(t, targets.Cold, map[string]any{"cold_start_method": "stdin", "max_containers": 2})
	u := d.URL().String()
	check := func(a answer, want string) {
		t.Helper()
		if a.err != nil || a.status != 200 || a.body != want || a.header.Get("Content-Type") != "application/json" {
			t.Errorf("stdin request: %d %q %v %v; want 200 %q", a.status, a.body, a.err, a.header, want)
			return
		}
		ns, err := strconv.ParseInt(a.header.Get(targets.HeaderStartNs), 10, 64)
		if a.header.Get(targets.HeaderColdStart) != "1" || err != nil || ns <= 0 {
			t.Errorf("cold headers: %v", a.header)
		}
	}
	// What the HTTP form answers for the same request (TestWarm).
	check(get(u+"/fn?n=7&n=8"), `{"method":"GET","path":"/fn","query":{"n":"7"},"body":""}`+"\n")
	resp, err := http.Post(u+"/", "application/json", strings.NewReader(`{"n": 3}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check(answer{status: resp.StatusCode, body: string(b), header: resp.Header}, `{"method":"POST","path":"/","query":{},"body":"{\"n\": 3}"}`+"\n")
	if a := get(u + "/?crash=1"); a.err != nil || a.status != http.StatusBadGateway || !strings.Contains(a.body, "exited with code 3") {
		t.Errorf("crashing request: %d %q %v; want 502 naming exit code 3", a.status, a.body, a.err)
	}
	check(get(u+"/?n=1"), `{"method":"GET","path":"/","query":{"n":"1"},"body":""}`+"\n")
	if err := d.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := leftovers(t, cli, d); n != 0 {
		t.Errorf("%d containers left after Reset", n)
	}
	r := d.Report()
	if r["cold_start_method"] != "stdin" || r["cold_requests"] != 3 || r["failures"] != 1 || r["containers_started"] != 4 || r["start_up_ns_p50"].(int64) <= 0 {
		t.Errorf("report: %v", r)
	}
}

// TestColdStdinFunctions: every function's Node build answers through
// stdin what its Wasm builds answer (TestConformance compares them over
// HTTP), including the Accept header and the query.
func TestColdStdinFunctions(t *testing.T) {
	if testing.Short() {
		t.Skip("a container per request (-short)")
	}
	dockertest.Engine(t)
	wasm := newWasmRunner(t)
	for _, c := range []struct {
		fn string
		in input
	}{
		{"fibonacci", input{body: `{"n":20}`}},
		{"factorial", input{query: "n=30"}},
		{"prime", input{body: `{"n":0}`}},
		{"exponential", input{body: `{"n":709}`}},
		{"memes", input{query: "id=4", accept: "text/html,application/xhtml+xml"}},
	} {
		t.Run(c.fn, func(t *testing.T) {
			tg, err := New(targets.Spec{Name: "stdin-" + c.fn, Kind: Kind, Function: c.fn, Mode: targets.Cold,
				FunctionsDir: functionsDir, RunID: "test-dockernode", Options: map[string]any{"cold_start_method": "stdin"}, Logf: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			d := tg.(*Target)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			defer d.Stop(context.Background())
			if err := d.Start(ctx); err != nil {
				t.Fatal(err)
			}
			method, body := "GET", io.Reader(nil)
			if c.in.body != "" {
				method, body = "POST", strings.NewReader(c.in.body)
			}
			req, _ := http.NewRequest(method, d.URL().String()+"/?"+c.in.query, body)
			if c.in.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if c.in.accept != "" {
				req.Header.Set("Accept", c.in.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			n := answerBytes{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: string(b)}
			for _, variant := range []string{"", "rust"} {
				w, err := wasm.run(c.fn, variant, c.in)
				if err != nil {
					t.Fatal(err)
				}
				conform(t, c.fn+" "+variant, w, n)
			}
		})
	}
}
