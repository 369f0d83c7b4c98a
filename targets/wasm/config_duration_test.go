package wasm

import (
	"strings"
	"testing"
	"time"
)

// TestParseFunctionConfigDurations: a number of seconds too large for a
// duration is refused as such. {"timeout":1e300} said "timeout
// -9223372036854775808: must not be negative".
func TestParseFunctionConfigDurations(t *testing.T) {
	cases := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{`{"timeout": 2.5}`, 2500 * time.Millisecond, ""},
		{`{"timeout": "250ms"}`, 250 * time.Millisecond, ""},
		{`{"timeout": 1e300}`, 0, "duration 1e300 s: beyond what a duration holds"},
		{`{"timeout": -1e300}`, 0, "duration -1e300 s: beyond what a duration holds"},
		{`{"idle_timeout": 9.3e9}`, 0, "duration 9.3e9 s: beyond what a duration holds"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			c, err := ParseFunctionConfig([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "negative") {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || time.Duration(c.Timeout) != tc.want {
				t.Errorf("timeout %v, err %v; want %v", time.Duration(c.Timeout), err, tc.want)
			}
		})
	}
}
