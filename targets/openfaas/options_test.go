package openfaas

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/targets"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseOptions(t *testing.T) {
	secrets := t.TempDir()
	os.WriteFile(filepath.Join(secrets, "basic-auth-user"), []byte("faasuser\n"), 0o600)
	os.WriteFile(filepath.Join(secrets, "basic-auth-password"), []byte("s3cret\n"), 0o600)
	tests := []struct {
		name    string
		opts    map[string]any
		env     map[string]string
		check   func(t *testing.T, o Options)
		wantErr []string // substrings, all must appear
	}{
		{
			name: "defaults without gateway",
			check: func(t *testing.T, o Options) {
				if o.Gateway != nil || o.ReadyTimeout != 60*time.Second || o.ColdStartMethod != MethodAuto || o.Username != "admin" {
					t.Errorf("defaults: %+v", o)
				}
			},
		},
		{
			name: "environment fills gateway and credentials",
			env:  map[string]string{EnvURL: "http://127.0.0.1:8080", EnvUsername: "u", EnvPassword: "p"},
			check: func(t *testing.T, o Options) {
				if o.Gateway.String() != "http://127.0.0.1:8080" || o.Username != "u" || o.Password != "p" {
					t.Errorf("from env: %+v", o)
				}
			},
		},
		{
			name: "options win over environment",
			opts: map[string]any{"gateway": "https://faas.example.org", "username": "me", "password": "pw"},
			env:  map[string]string{EnvURL: "http://127.0.0.1:8080", EnvUsername: "u", EnvPassword: "p"},
			check: func(t *testing.T, o Options) {
				if o.Gateway.Host != "faas.example.org" || o.Username != "me" || o.Password != "pw" {
					t.Errorf("options: %+v", o)
				}
			},
		},
		{
			name: "secrets dir as faasd keeps it",
			opts: map[string]any{"gateway": "http://127.0.0.1:8080", "secrets_dir": secrets},
			check: func(t *testing.T, o Options) {
				if o.Username != "faasuser" || o.Password != "s3cret" {
					t.Errorf("secrets: %+v", o)
				}
			},
		},
		{
			name: "all settings",
			opts: map[string]any{"ready_timeout": "5s", "cold_start_method": "redeploy",
				"image": "reg.example/fn:1", "image_source": "local-node", "service": "my-fn",
				"namespace": "openfaas-fn", "env": map[string]any{"A": 1}},
			check: func(t *testing.T, o Options) {
				if o.ReadyTimeout != 5*time.Second || o.ColdStartMethod != MethodRedeploy ||
					o.Image != "reg.example/fn:1" || o.Service != "my-fn" || o.Namespace != "openfaas-fn" || o.Env["A"] != "1" {
					t.Errorf("settings: %+v", o)
				}
			},
		},
		{
			name: "every problem at once",
			opts: map[string]any{"gateway": "ftp://x", "ready_timeout": "-1s",
				"cold_start_method": "pause", "service": "Bad_Name", "env": []any{1}, "colour": "red",
				"secrets_dir": filepath.Join(secrets, "missing")},
			wantErr: []string{"option gateway", "option ready_timeout", "option cold_start_method",
				"option service", "option env", "option colour: unknown option", "option secrets_dir"},
		},
		{
			name:    "a bare number for a duration",
			opts:    map[string]any{"ready_timeout": 5},
			wantErr: []string{"option ready_timeout: want a duration like 30s, got 5"},
		},
		{
			// One switch: the target's own required, not an option.
			name:    "required is not an option",
			opts:    map[string]any{"required": true},
			wantErr: []string{"option required: unknown option"},
		},
		{
			name:    "a bad gateway in the environment",
			env:     map[string]string{EnvURL: "127.0.0.1:8080"},
			wantErr: []string{"$OPENFAAS_URL: want a URL like http://HOST:PORT"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOptions(tc.opts, env(tc.env))
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

func TestServiceName(t *testing.T) {
	for in, want := range map[string]string{
		"openfaas":              "harness-openfaas",
		"OpenFaaS Memes #1":     "harness-openfaas-memes-1",
		"a__b":                  "harness-a-b",
		strings.Repeat("x", 80): "harness-" + strings.Repeat("x", 55),
	} {
		if got := serviceName(in); got != want || !dnsLabel(got) {
			t.Errorf("serviceName(%q) = %q (valid %v), want %q", in, got, dnsLabel(got), want)
		}
	}
}

// TestStartErrors covers the failures that need no Docker Engine: each is
// a clear message; only a gateway that is not configured or not there is
// ErrUnavailable (the runner skips the target unless the scenario requires
// it), refused credentials fail the run.
func TestStartErrors(t *testing.T) {
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Restricted"`)
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
	}))
	defer refusing.Close()

	tests := []struct {
		name      string
		opts      map[string]any
		wantSkip  bool
		wantIs    error
		wantInMsg string
	}{
		{"no gateway", nil, true, targets.ErrUnavailable, "no OpenFaaS gateway configured: set OPENFAAS_URL or options.gateway"},
		{"unreachable", map[string]any{"gateway": closed}, true, targets.ErrUnavailable, "unreachable"},
		{"auth refused", map[string]any{"gateway": refusing.URL, "password": "wrong"}, false, ErrAuth, "refused the credentials (HTTP 401 for user admin)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := New(targets.Spec{Name: "of", Kind: Kind, Function: "echo", Options: tc.opts}, env(nil))
			if err != nil {
				t.Fatal(err)
			}
			err = tg.Start(context.Background())
			defer tg.Stop(context.Background())
			if err == nil {
				t.Fatal("Start succeeded")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error is not %v: %v", tc.wantIs, err)
			}
			if got := errors.Is(err, targets.ErrUnavailable); got != tc.wantSkip {
				t.Errorf("skippable = %v, want %v: %v", got, tc.wantSkip, err)
			}
			if !strings.Contains(err.Error(), tc.wantInMsg) {
				t.Errorf("error lacks %q: %v", tc.wantInMsg, err)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	k, ok := targets.Lookup(Kind)
	if !ok {
		t.Fatal("kind not registered")
	}
	for _, key := range []string{OptGateway, OptUsername, OptPassword, OptReadyTimeout, OptColdStartMethod} {
		if k.Options[key] == "" {
			t.Errorf("option %s undocumented", key)
		}
	}
	if _, ok := k.Options["required"]; ok {
		t.Error("options.required documented beside the target's own required")
	}
	if _, err := targets.New(targets.Spec{Name: "x", Kind: Kind, Mode: targets.Prewarmed}); err == nil {
		t.Error("prewarmed mode accepted")
	}
	// Check reads the scenario's values alone: a secrets_dir that is not
	// on this machine is the run's business, a bad value is not.
	if err := k.Check(targets.Spec{Options: map[string]any{"secrets_dir": "/nonexistent"}}); err != nil {
		t.Errorf("Check read the environment: %v", err)
	}
	if err := k.Check(targets.Spec{Options: map[string]any{"cold_start_method": "pause"}}); err == nil || !strings.Contains(err.Error(), "option cold_start_method") {
		t.Errorf("Check of a bad method: %v", err)
	}
}
