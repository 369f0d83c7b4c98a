package wasm

import (
	"testing"

	"github.com/academemes/harness/targets"
)

// TestHost: a target on a remote `harness serve` is served from the
// remote's machine; one in process, from this one ("").
func TestHost(t *testing.T) {
	k, ok := targets.Lookup("wasm")
	if !ok || k.Host == nil {
		t.Fatal("wasm kind has no Host")
	}
	for _, tt := range []struct {
		options map[string]any
		want    string
	}{
		{nil, ""},
		{map[string]any{"remote": "http://pi.lan:8088/"}, "pi.lan"},
		{map[string]any{"remote": "http://[2001:db8::7]:8088"}, "2001:db8::7"},
		{map[string]any{"remote": "nowhere"}, ""}, // a bad option is Check's to report
	} {
		if got := k.Host(targets.Spec{Kind: "wasm", Options: tt.options}); got != tt.want {
			t.Errorf("Host(%v) = %q, want %q", tt.options, got, tt.want)
		}
	}
}
