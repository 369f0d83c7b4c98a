package runstore

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// A row that parses can still hold what no run writes: a negative
// latency, watts that are infinite, a meter that run.json does not
// declare. Used as they are, such rows change the figures (a phantom
// meter, a request that ends before it starts); dropped without a word,
// they change them too. Load excludes each such row and says so, one
// warning per reason naming the rows' lines, so that a reader sees what
// was left out and can look at the file.

// maxLines is how many line numbers a warning lists before "and N more".
const maxLines = 10

// checker decides, row by row, whether a row holds what a run can write,
// and gathers the rows it excludes by reason.
type checker struct {
	meta *Meta
	// targets declared and phases recorded in run.json; nil when it
	// records none, and then not checked.
	targets map[string]bool
	phases  map[phaseKey]bool
	meters  map[string]*MeterMeta
	// last is the meter of the previous sample row: rows come in runs of
	// one meter, so the map is seldom consulted.
	lastName  string
	lastMeter *MeterMeta

	order    []string
	excluded map[string]*exclusion
}

type phaseKey struct {
	target, phase string
	rep           int
}

// exclusion is the rows of one file excluded for one reason.
type exclusion struct {
	file  string
	n     int
	lines []int // the first maxLines
}

func newChecker(m *Meta) *checker {
	c := &checker{meta: m, meters: map[string]*MeterMeta{}, excluded: map[string]*exclusion{}}
	for i := range m.Meters {
		c.meters[m.Meters[i].Name] = &m.Meters[i]
	}
	if len(m.Targets) > 0 {
		c.targets = map[string]bool{}
		for _, t := range m.Targets {
			c.targets[t.Name] = true
		}
	}
	if len(m.Phases) > 0 {
		c.phases = map[phaseKey]bool{}
		for _, p := range m.Phases {
			c.phases[phaseKey{p.Target, p.Name, p.Rep}] = true
		}
	}
	return c
}

// exclude records that the row at line of file is left out for reason
// (which completes "N rows ...": "with a negative latency_ns") and
// returns false, for keep.
func (c *checker) exclude(file string, line int, reason string) bool {
	key := file + "\x00" + reason
	e := c.excluded[key]
	if e == nil {
		e = &exclusion{file: file}
		c.excluded[key] = e
		c.order = append(c.order, key)
	}
	e.n++
	if len(e.lines) < maxLines {
		e.lines = append(e.lines, line)
	}
	return false
}

// request reports whether a requests.csv row is kept.
func (c *checker) request(r Request, line int) bool {
	reason := ""
	switch {
	case r.LatencyNs < 0:
		reason = "with a negative latency_ns"
	case r.StartNs <= 0:
		reason = "with no start time (start_ns not positive)"
	case r.StartUpNs < 0:
		reason = "with a negative start_up_ns"
	case r.BytesIn < 0 || r.BytesOut < 0:
		reason = "with a negative byte count"
	case r.Status < 0 || r.Status > 999:
		reason = "with a status that is no HTTP status (outside 0-999)"
	case r.Rep < 0:
		reason = "with a negative rep"
	case c.targets != nil && !c.targets[r.Target]:
		reason = fmt.Sprintf("naming target %q, which run.json does not declare", r.Target)
	case c.phases != nil && !c.phases[phaseKey{r.Target, r.Phase, r.Rep}]:
		reason = fmt.Sprintf("in phase %s/%s/%d, which run.json does not record", r.Target, r.Phase, r.Rep)
	default:
		return true
	}
	return c.exclude(RequestsFile, line, reason)
}

// sample reports whether a samples.csv row is kept. A NaN in one of
// watts and joules is how a meter says it gives none (RAPL gives no
// watts, a PDU's power channel no joules); a row with neither carries no
// reading. Watts and joules below zero by more than the meter's own
// step are no reading of a consumer's power: a sensor's offset stays
// within a step or so of zero.
func (c *checker) sample(s Sample, line int) bool {
	m := c.lastMeter
	if s.Meter != c.lastName || m == nil {
		m = c.meters[s.Meter]
		c.lastName, c.lastMeter = s.Meter, m
	}
	reason := ""
	switch {
	case m == nil:
		reason = fmt.Sprintf("naming meter %q, which run.json does not declare", s.Meter)
	case s.Channel < 0 || len(m.Channels) > 0 && s.Channel >= len(m.Channels):
		reason = fmt.Sprintf("naming channel %d of meter %q, which declares %d channels", s.Channel, s.Meter, len(m.Channels))
	case s.TNs <= 0:
		reason = fmt.Sprintf("of meter %q with no time (t_ns not positive)", s.Meter)
	case math.IsInf(s.Watts, 0) || math.IsInf(s.Joules, 0):
		reason = fmt.Sprintf("of meter %q channel %d with an infinite reading", s.Meter, s.Channel)
	case math.IsNaN(s.Watts) && math.IsNaN(s.Joules):
		reason = fmt.Sprintf("of meter %q channel %d with no reading (watts and joules both NaN)", s.Meter, s.Channel)
	case s.Watts < -m.Precision.PowerStepW:
		reason = fmt.Sprintf("of meter %q channel %d with negative watts%s", s.Meter, s.Channel, beyond(m.Precision.PowerStepW, "W", "power"))
	case s.Joules < -m.Precision.EnergyStepJ:
		reason = fmt.Sprintf("of meter %q channel %d with negative joules%s", s.Meter, s.Channel, beyond(m.Precision.EnergyStepJ, "J", "energy"))
	default:
		return true
	}
	return c.exclude(SamplesFile, line, reason)
}

// beyond says how far below zero a reading was let be: the meter's step,
// when it states one.
func beyond(step float64, unit, what string) string {
	if step <= 0 {
		return ""
	}
	return fmt.Sprintf(" (below -%s %s, the meter's %s step)", strconv.FormatFloat(step, 'g', 3, 64), unit, what)
}

// warnings is one warning per file and reason, naming the rows' lines.
func (c *checker) warnings() []string {
	var out []string
	for _, key := range c.order {
		e := c.excluded[key]
		reason := key[strings.IndexByte(key, 0)+1:]
		lines := make([]string, len(e.lines))
		for i, l := range e.lines {
			lines[i] = strconv.Itoa(l)
		}
		where := "line " + lines[0]
		if e.n > 1 {
			where = "lines " + strings.Join(lines, ", ")
		}
		if more := e.n - len(e.lines); more > 0 {
			where += fmt.Sprintf(" and %d more", more)
		}
		rows := "rows"
		if e.n == 1 {
			rows = "row"
		}
		out = append(out, fmt.Sprintf("%s: %d %s %s: excluded from the analysis (%s)", e.file, e.n, rows, reason, where))
	}
	return out
}

// checkWritten compares the rows the files hold with those run.json
// records written. Fewer is damage: the rows lost were on disk when
// run.json was written (the writer syncs first), so a file that holds
// fewer was cut short or altered afterwards, and its figures would be
// quietly wrong (half the requests, twice the joules per request). More
// is normal while a run goes or when it was killed (rows are flushed
// between writes of run.json), and damage once the run ended.
func (run *Run) checkWritten(requests, samples int64) {
	w := run.Meta.Written
	if w == nil {
		return // written before the counts were recorded
	}
	ended := run.Meta.Status != StatusRunning
	for _, f := range []struct {
		name       string
		rows, want int64
	}{{RequestsFile, requests, w.Requests}, {SamplesFile, samples, w.Samples}} {
		var msg string
		switch {
		case f.rows < f.want:
			msg = fmt.Sprintf("%s is damaged: it holds %d rows, but run.json records %d written; the file was cut short or altered after the run, so figures from it are wrong", f.name, f.rows, f.want)
		case f.rows > f.want && ended:
			msg = fmt.Sprintf("%s is damaged: it holds %d rows, but run.json records %d written when the run ended; rows were added after the run, so figures from it are wrong", f.name, f.rows, f.want)
		default:
			continue
		}
		run.Warnings = append(run.Warnings, msg)
		if run.Meta.Validity == nil {
			run.Meta.Validity = &Validity{}
		}
		run.Meta.Validity.Valid = false
		run.Meta.Validity.Problems = append(run.Meta.Validity.Problems, Problem{
			Check: CheckFiles, Observed: float64(f.rows), Limit: float64(f.want), Unit: "rows", Message: msg,
		})
	}
}
