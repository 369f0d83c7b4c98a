package meters

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Watts is a power. It parses from flags and spec options with its unit
// ("1.5W", "800mW", "0.2kW"); a bare number is taken as watts.
type Watts float64

// Joules is an energy.
type Joules float64

// String formats w with its unit, e.g. "1.5 W".
func (w Watts) String() string { return strconv.FormatFloat(float64(w), 'g', 4, 64) + " W" }

// String formats j with its unit, e.g. "12.3 J".
func (j Joules) String() string { return strconv.FormatFloat(float64(j), 'g', 6, 64) + " J" }

// ParseWatts parses a power with an optional unit suffix: W, mW, uW (or µW),
// kW; the unit is case-insensitive except that "mW" and "MW" differ, and
// megawatts are refused as surely a typo for this harness. NaN and the
// infinities are no power.
func ParseWatts(s string) (Watts, error) {
	t := strings.TrimSpace(s)
	scale := 1.0
	switch {
	case strings.HasSuffix(t, "MW"):
		return 0, fmt.Errorf("power %q: megawatts are not a plausible meter setting; did you mean mW?", s)
	case strings.HasSuffix(t, "mW"):
		scale, t = 1e-3, strings.TrimSuffix(t, "mW")
	case strings.HasSuffix(t, "uW"), strings.HasSuffix(t, "µW"):
		scale = 1e-6
		t = strings.TrimSuffix(strings.TrimSuffix(t, "uW"), "µW")
	case strings.HasSuffix(strings.ToLower(t), "kw"):
		scale, t = 1e3, t[:len(t)-2]
	case strings.HasSuffix(strings.ToLower(t), "w"):
		t = t[:len(t)-1]
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil {
		return 0, fmt.Errorf("power %q: want a number with a unit such as 1.5W or 800mW: %w", s, err)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("power %q: want a finite number with a unit such as 1.5W or 800mW", s)
	}
	return Watts(v * scale), nil
}
