package emulate

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Trace is the power a device sees: watts on channel ch at time t since
// the emulator started.
type Trace interface {
	Watts(t time.Duration, ch int) float64
}

// Constant is a trace of fixed watts per channel; channels past the end
// take the last value.
type Constant []float64

// Watts implements Trace.
func (c Constant) Watts(_ time.Duration, ch int) float64 {
	if len(c) == 0 {
		return 0
	}
	return c[min(ch, len(c)-1)]
}

// MaxWatts bounds what an emulated channel may draw: a little more than
// either device's full scale (1.2 kW on a PMD-USB channel), so that every
// reading the devices can give can be emulated, and nothing a device could
// never send (NaN, infinities, negative power on a supply rail).
const MaxWatts = 10000.0

func plausibleWatts(w float64) bool { return w >= 0 && w <= MaxWatts }

// ParseWatts reads "50" or "50,20,10,5" (watts per channel; a "W" suffix
// is allowed).
func ParseWatts(s string) (Constant, error) {
	var out Constant
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSuffix(strings.TrimSpace(f), "W")
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !plausibleWatts(v) {
			return nil, fmt.Errorf("emulate: watts %q: want a number from 0 to %g per channel, comma-separated", s, MaxWatts)
		}
		out = append(out, v)
	}
	return out, nil
}

// Table is a trace read from CSV: time in seconds, then watts for channel
// 0, 1, ... (one watts column applies to every channel). Values are
// interpolated linearly; before the first row and after the last the end
// values hold.
type Table struct {
	t []float64
	w [][]float64
}

// ReadCSV parses a trace. A first row that does not parse as numbers is a
// header and skipped.
func ReadCSV(r io.Reader) (*Table, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("emulate: trace CSV: %w", err)
	}
	tb := &Table{}
	for i, row := range rows {
		if len(row) < 2 {
			return nil, fmt.Errorf("emulate: trace CSV line %d: want time,watts[,watts...]", i+1)
		}
		vals := make([]float64, len(row))
		bad := false
		for j, f := range row {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				bad = true
				break
			}
			vals[j] = v
		}
		if bad {
			if i == 0 {
				continue
			}
			return nil, fmt.Errorf("emulate: trace CSV line %d: %q is not numbers", i+1, strings.Join(row, ","))
		}
		if math.IsNaN(vals[0]) || math.IsInf(vals[0], 0) {
			return nil, fmt.Errorf("emulate: trace CSV line %d: time %v is not a number of seconds", i+1, vals[0])
		}
		for _, w := range vals[1:] {
			if !plausibleWatts(w) {
				return nil, fmt.Errorf("emulate: trace CSV line %d: %v W: want watts from 0 to %g", i+1, w, MaxWatts)
			}
		}
		tb.t = append(tb.t, vals[0])
		tb.w = append(tb.w, vals[1:])
	}
	if len(tb.t) == 0 {
		return nil, fmt.Errorf("emulate: trace CSV has no rows")
	}
	if !sort.Float64sAreSorted(tb.t) {
		return nil, fmt.Errorf("emulate: trace CSV times are not increasing")
	}
	return tb, nil
}

// Watts implements Trace.
func (tb *Table) Watts(t time.Duration, ch int) float64 {
	s := t.Seconds()
	col := func(i int) float64 { r := tb.w[i]; return r[min(ch, len(r)-1)] }
	i := sort.SearchFloat64s(tb.t, s)
	switch {
	case i == 0:
		return col(0)
	case i == len(tb.t):
		return col(len(tb.t) - 1)
	}
	t0, t1 := tb.t[i-1], tb.t[i]
	if t1 == t0 {
		return col(i)
	}
	f := (s - t0) / (t1 - t0)
	return col(i-1)*(1-f) + col(i)*f
}
