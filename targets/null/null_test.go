package null

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/academemes/harness/targets"
)

func TestServes(t *testing.T) {
	tests := []struct {
		name       string
		options    map[string]any
		wantStatus int
		wantBytes  int
	}{
		{"defaults", nil, 200, 0},
		{"a function's answer size", map[string]any{"response_bytes": "4k"}, 200, 4096},
		{"another status", map[string]any{"status": 204}, 204, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg, err := targets.New(targets.Spec{Name: "n", Kind: Kind, Function: "memes", Options: tt.options})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := tg.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer tg.Stop(ctx)
			for range 3 {
				resp, err := http.Post(tg.URL().String()+"fn?x=1", "application/json", strings.NewReader(`{"id": 3}`))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.wantStatus || len(b) != tt.wantBytes || resp.Header.Get(targets.HeaderColdStart) != "" {
					t.Fatalf("answer %d with %d bytes, want %d with %d and no cold start", resp.StatusCode, len(b), tt.wantStatus, tt.wantBytes)
				}
			}
			if err := tg.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tg.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tg.Stop(ctx); err != nil {
				t.Errorf("second Stop: %v", err)
			}
			if got := tg.(targets.Reporter).Report()["requests_served"]; got != int64(3) {
				t.Errorf("served %v requests, want 3", got)
			}
			if _, err := http.Get(tg.URL().String()); err == nil {
				t.Error("still answering after Stop")
			}
		})
	}
}

func TestOptions(t *testing.T) {
	k, ok := targets.Lookup(Kind)
	if !ok {
		t.Fatal("kind not registered")
	}
	tests := []struct {
		name    string
		options map[string]any
		mode    targets.Mode
		want    string
	}{
		{"status out of range", map[string]any{"status": 99}, "", "option status: want a whole number"},
		{"bad size", map[string]any{"response_bytes": "lots"}, "", "option response_bytes: want a size"},
		{"unknown", map[string]any{"delay": "1s"}, "", "option delay: unknown option"},
		{"cold", nil, targets.Cold, "it has only warm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := targets.Spec{Name: "n", Kind: Kind, Function: "x", Mode: tt.mode, Options: tt.options}
			_, err := targets.New(spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want %q", err, tt.want)
			}
			if tt.mode == "" {
				if err := k.Check(spec); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Check: %v, want %q", err, tt.want)
				}
			}
		})
	}
	if err := k.CheckFunction("anything at all", "."); err != nil {
		t.Errorf("CheckFunction: %v: the null target serves no function", err)
	}
}
