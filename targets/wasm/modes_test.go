package wasm

import (
	"net/http"
	"testing"

	"github.com/academemes/harness/targets"
)

func TestModes(t *testing.T) {
	for _, c := range []struct {
		name     string
		function string
		mode     targets.Mode
		opts     map[string]any
		// cold start headers of the first and of the later requests
		firstCold, laterCold string
	}{
		{"go cold", "fibonacci", targets.Cold, nil, "1", "1"},
		{"go prewarmed", "fibonacci", targets.Prewarmed, nil, "0", "0"},
		{"go warm", "fibonacci", targets.Warm, nil, "0", "0"},
		{"go snapshot", "fibonacci", targets.Snapshot, nil, "1", "1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := startTarget(t, c.function, c.mode, c.opts)
			for i, n := range []string{"10", "20", "1", "10"} {
				resp, body := do(t, http.MethodPost, tg.URL().String(), `{"n":`+n+`}`)
				want := map[string]string{"10": `{"n":10,"result":55}` + "\n", "20": `{"n":20,"result":6765}` + "\n", "1": `{"n":1,"result":1}` + "\n"}[n]
				if resp.StatusCode != 200 || body != want {
					t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, body, want)
				}
				wantCold := c.laterCold
				if i == 0 {
					wantCold = c.firstCold
				}
				if got := resp.Header.Get(targets.HeaderColdStart); got != wantCold {
					t.Errorf("request %d: %s = %q, want %q", i, targets.HeaderColdStart, got, wantCold)
				}
				if (resp.Header.Get(targets.HeaderStartNs) != "") != (wantCold == "1") {
					t.Errorf("request %d: %s = %q with cold %q", i, targets.HeaderStartNs, resp.Header.Get(targets.HeaderStartNs), wantCold)
				}
			}
		})
	}
}
