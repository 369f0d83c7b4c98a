package powersensor3

import (
	"errors"
	"strings"
	"testing"

	"github.com/academemes/harness/meters"
)

// TestCheck: the spec check `harness run --check` runs. The rate is a
// number in range: NaN passed (NaN < 0 is false) and made the averaging
// window's length undefined.
func TestCheck(t *testing.T) {
	cases := []struct {
		spec    string
		wantErr string // "" for none
	}{
		{"powersensor3:/dev/ttyACM0", ""},
		{"powersensor3:/dev/ttyACM0?rate=max", ""},
		{"powersensor3:/dev/ttyACM0?rate=0", ""},
		{"powersensor3:/dev/ttyACM0?rate=2500", ""},
		{"powersensor3:/dev/ttyACM0?rate=100000", ""},
		{"powersensor3:/dev/ttyACM0?rate=NaN", `rate "NaN": want samples per second per channel from 0 to 100000`},
		{"powersensor3:/dev/ttyACM0?rate=Inf", `rate "Inf"`},
		{"powersensor3:/dev/ttyACM0?rate=-1", `rate "-1"`},
		{"powersensor3:/dev/ttyACM0?rate=1e9", `rate "1e9"`},
		{"powersensor3:/dev/ttyACM0?rate=fast", `rate "fast"`},
		{"powersensor3:/dev/ttyACM0?speed=1", "unknown option"},
		{"powersensor3:?rate=10", "needs a device path"},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			sp, err := meters.ParseSpec(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			err = check(sp)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("check: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, meters.ErrSpec) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("check = %v, want a spec error containing %q", err, tc.wantErr)
			}
		})
	}
}
