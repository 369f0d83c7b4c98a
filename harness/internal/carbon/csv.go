package carbon

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of an intensity file. A year of hourly values is about 9,000
// rows and 250 KB, so MaxFileBytes leaves room for finer series while
// keeping a mistaken file (a whole data export) out of memory and out of
// run.json.
const (
	MaxFileBytes = 1 << 20
	// MaxGPerKWh is more than any grid's intensity: coal-fired generation
	// alone is about 1,000 gCO2e/kWh, so a larger value is a unit mistake
	// (g per MWh, or per kWh of fuel).
	MaxGPerKWh = 5000
	// maxErrors is how many problems of a file are listed before the
	// rest are counted.
	maxErrors = 10
)

// ParseError is one problem of an intensity file, at a line and column
// (1-based; 0 when the problem is the whole file).
type ParseError struct {
	Line, Col int
	Msg       string
}

// Error formats the problem as line:col: message.
func (e ParseError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
}

// ParseErrors is every problem found in an intensity file (up to ten, and
// a count of the rest).
type ParseErrors struct {
	List []ParseError
	More int
}

// Error lists the problems, one a line.
func (e *ParseErrors) Error() string {
	var lines []string
	for _, p := range e.List {
		lines = append(lines, p.Error())
	}
	if e.More > 0 {
		lines = append(lines, fmt.Sprintf("and %d more problem(s)", e.More))
	}
	return strings.Join(lines, "\n")
}

// File is an intensity series as read from a file.
type File struct {
	Points []Point
	// EndNs is when the last point stops holding: one period (the median
	// spacing of the points) after it.
	EndNs int64
	// Rows is the number of data rows read.
	Rows int
}

// Intensity is the file's series.
func (f File) Intensity() (Intensity, error) { return Series(f.Points, f.EndNs) }

// timeLayouts are the timestamps an intensity file may hold, tried in
// order. Those without a zone are UTC, as Electricity Maps' "Datetime
// (UTC)" column and most grid operators' exports are.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
}

// parseTime reads one timestamp: RFC 3339, a date and time without zone
// (UTC), or Unix seconds.
func parseTime(s string) (time.Time, error) {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil || sec > 1e11 {
			return time.Time{}, fmt.Errorf("%q is too large for Unix seconds (milliseconds? give seconds)", s)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a timestamp; use RFC 3339 (2026-12-04T10:00:00Z), a UTC date and time (2026-12-04 10:00:00) or Unix seconds", s)
}

// ParseCSV reads an intensity series: rows of `timestamp,gCO2e/kWh`,
// timestamps strictly increasing, each value holding from its timestamp
// until the next row's (the last for the median spacing of the rows). A
// first row that is not data is a header and is skipped; lines starting
// with # are comments. At most MaxFileBytes are read. Every problem is
// reported, with its line and column, in a *ParseErrors.
func ParseCSV(r io.Reader) (File, error) {
	var f File
	errs := &ParseErrors{}
	add := func(line, col int, format string, args ...any) {
		if len(errs.List) < maxErrors {
			errs.List = append(errs.List, ParseError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
		} else {
			errs.More++
		}
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return f, fmt.Errorf("carbon: read intensity file: %w", err)
	}
	if len(data) > MaxFileBytes {
		add(0, 0, "larger than %d bytes: cut it to the time of the run (a day around it is plenty)", MaxFileBytes)
		return f, errs
	}
	cr := csv.NewReader(strings.NewReader(string(data)))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	prevLine := 0
	first := true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				add(pe.Line, pe.Column, "%v", pe.Err)
				if len(errs.List) >= maxErrors {
					break
				}
				continue
			}
			return f, fmt.Errorf("carbon: read intensity file: %w", err)
		}
		line, col := cr.FieldPos(0)
		header := first
		first = false
		if len(rec) != 2 {
			if header && !looksLikeData(rec) {
				continue
			}
			at := col
			if len(rec) > 2 {
				_, at = cr.FieldPos(2)
			}
			add(line, at, "want 2 fields, timestamp and gCO2e/kWh, got %d", len(rec))
			continue
		}
		ts, terr := parseTime(strings.TrimSpace(rec[0]))
		g, gerr := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if header && terr != nil && gerr != nil {
			continue // a header row: "datetime,carbon_intensity"
		}
		vline, vcol := cr.FieldPos(1)
		if terr != nil {
			add(line, col, "%v", terr)
		}
		switch {
		case gerr != nil:
			add(vline, vcol, "%q is not a number of gCO2e/kWh", rec[1])
		case math.IsNaN(g) || math.IsInf(g, 0) || g < 0:
			add(vline, vcol, "intensity must be a number of 0 or more gCO2e/kWh, got %s", rec[1])
		case g > MaxGPerKWh:
			add(vline, vcol, "%s gCO2e/kWh is more than any grid (coal-fired generation is about 1000): is it per MWh?", rec[1])
		}
		if terr != nil || gerr != nil {
			continue
		}
		f.Rows++
		p := Point{TNs: ts.UnixNano(), GPerKWh: g}
		if n := len(f.Points); n > 0 && p.TNs <= f.Points[n-1].TNs {
			add(line, col, "timestamp %s is not after the previous row's (line %d): rows must be in time order, each time once", rec[0], prevLine)
			continue
		}
		f.Points = append(f.Points, p)
		prevLine = line
	}
	if len(errs.List) == 0 && len(f.Points) < 2 {
		add(0, 0, "needs at least two rows of timestamp,gCO2e/kWh (one row gives no period; for a constant use carbon.intensity)")
	}
	if len(errs.List) > 0 {
		return File{}, errs
	}
	f.EndNs = f.Points[len(f.Points)-1].TNs + medianSpacing(f.Points)
	return f, nil
}

// looksLikeData reports whether a row that is not two fields still holds
// a timestamp first, so that it is reported rather than taken for a
// header.
func looksLikeData(rec []string) bool {
	if len(rec) == 0 {
		return false
	}
	_, err := parseTime(strings.TrimSpace(rec[0]))
	return err == nil
}

// medianSpacing is the median time between consecutive points: the
// series' period, which the last point is taken to hold for.
func medianSpacing(ps []Point) int64 {
	d := make([]int64, 0, len(ps)-1)
	for i := 1; i < len(ps); i++ {
		d = append(d, ps[i].TNs-ps[i-1].TNs)
	}
	slices.Sort(d)
	return d[len(d)/2]
}
