package report

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	"github.com/academemes/harness/harness/internal/runstore"
)

// validity gathers what run.json says about whether a run's numbers can
// be trusted: the run's own record and each phase's, each problem once.
// Known is false for runs written before validity was recorded.
type validity struct {
	Known    bool
	Valid    bool
	Problems []runstore.Problem
}

// readValidity collects the validity records of run.json.
func readValidity(m *runstore.Meta) validity {
	v := validity{Valid: true}
	seen := map[string]bool{}
	add := func(rv *runstore.Validity, phase string) {
		if rv == nil {
			return
		}
		v.Known = true
		v.Valid = v.Valid && rv.Valid
		for _, p := range rv.Problems {
			if p.Phase == "" && phase != "" {
				p.Phase = phase // a phase's own record may leave its name out
			}
			k := p.Phase + "\x00" + p.Check + "\x00" + p.Message
			if !seen[k] {
				seen[k] = true
				v.Problems = append(v.Problems, p)
			}
		}
	}
	add(m.Validity, "")
	for _, ph := range m.Phases {
		add(ph.Validity, fmt.Sprintf("%s/%s/%d", ph.Target, ph.Name, ph.Rep))
	}
	if len(v.Problems) > 0 {
		v.Valid = false
	}
	return v
}

// where is a problem's place parsed from "target/phase/rep": phase may
// hold a slash ("load/n=10"); "idle/1" is an idle phase shared by all
// targets (Target ""); "" is the run as a whole.
type where struct {
	Target, Phase string
	Rep           int // 0 when not named
}

func parseWhere(s string) where {
	if s == "" {
		return where{}
	}
	parts := strings.Split(s, "/")
	w := where{}
	if n, err := strconv.Atoi(parts[len(parts)-1]); err == nil && len(parts) > 1 {
		w.Rep = n
		parts = parts[:len(parts)-1]
	}
	if parts[0] == runstore.PhaseIdle && len(parts) == 1 {
		w.Phase = runstore.PhaseIdle
		return w
	}
	w.Target = parts[0]
	w.Phase = strings.Join(parts[1:], "/")
	return w
}

// condense is one line per check for the console: a busy machine fails
// the same check in dozens of phases, and a wall of near-identical lines
// hides the other checks. A check seen once is described in full; one seen
// in several phases names how many, the first few, and its worst case.
// The report and run.json keep every problem.
func condense(ps []runstore.Problem) []string {
	var order []string
	byCheck := map[string][]runstore.Problem{}
	for _, p := range ps {
		if _, ok := byCheck[p.Check]; !ok {
			order = append(order, p.Check)
		}
		byCheck[p.Check] = append(byCheck[p.Check], p)
	}
	var lines []string
	for _, c := range order {
		g := byCheck[c]
		if len(g) == 1 {
			lines = append(lines, describe(g[0]))
			continue
		}
		worst := g[0]
		var places []string
		for _, p := range g {
			if p.Observed > worst.Observed {
				worst = p
			}
			if len(places) < 4 {
				places = append(places, cmp.Or(p.Phase, "whole run"))
			}
		}
		if len(g) > len(places) {
			places = append(places, fmt.Sprintf("and %d more", len(g)-len(places)))
		}
		lines = append(lines, fmt.Sprintf("%s in %d places (%s); worst: %s", c, len(g), strings.Join(places, ", "), describe(worst)))
	}
	return lines
}

// describe is a problem in one line: where, what, how far off.
func describe(p runstore.Problem) string {
	place := "whole run"
	if p.Phase != "" {
		place = p.Phase
	}
	s := place + ": " + p.Message
	if p.Check != "" {
		s += " (" + p.Check
		if p.Limit != 0 || p.Observed != 0 {
			s += fmt.Sprintf(": %s against a limit of %s", fmtQty(p.Observed, p.Unit), fmtQty(p.Limit, p.Unit))
		}
		s += ")"
	}
	return s
}

// fmtQty is a problem's observed value or limit in its unit; shares are
// shown as percentages.
func fmtQty(v float64, unit string) string {
	switch unit {
	case "share", "fraction":
		// Three significant digits: 100 x 0.07 is 7.000000000000001.
		return strconv.FormatFloat(100*v, 'g', 3, 64) + "%"
	case "":
		return sig(v)
	}
	return sig(v) + " " + unit
}

// affects reports whether p bears on the figures of target's measured
// phase: problems of the whole run, of a shared idle phase, and of that
// target's idle phases or that phase itself do (the idle phases set the
// baseline its dynamic energy is measured against). rep 0 means any
// repetition.
func affects(p runstore.Problem, target, phase string, rep int) bool {
	w := parseWhere(p.Phase)
	switch {
	case p.Phase == "":
		return true
	case w.Target == "" && w.Phase == runstore.PhaseIdle:
		return rep == 0 || w.Rep == 0 || w.Rep == rep
	case w.Target != target:
		return false
	case w.Phase == phase || w.Phase == runstore.PhaseIdle || w.Phase == "":
		return rep == 0 || w.Rep == 0 || w.Rep == rep
	}
	return false
}

// problemsOf is the problems that bear on target's phase (and rep, when
// not 0), leaving out those of the whole run: the banner names those, and
// marking every row with them would hide the phases that differ.
func (v validity) problemsOf(target, phase string, rep int) []runstore.Problem {
	var out []runstore.Problem
	for _, p := range v.Problems {
		if p.Phase != "" && affects(p, target, phase, rep) {
			out = append(out, p)
		}
	}
	return out
}

// mark is how a table row or plot label shows that its phase is invalid.
type mark struct {
	Invalid bool
	Title   string // the problems, one per line, for a tooltip
}

// Mark is how target's phase (rep 0: any) is marked in tables and plots.
func (v validity) Mark(target, phase string, rep int) mark {
	ps := v.problemsOf(target, phase, rep)
	if len(ps) == 0 {
		return mark{}
	}
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = describe(p)
	}
	return mark{Invalid: true, Title: strings.Join(lines, "\n")}
}

// invalidSuffix is what plot labels of an invalid phase end with.
const invalidSuffix = " [invalid]"

// phaseInvalid reports whether a problem names this very phase (its
// target, name and repetition, or a shared idle phase of its
// repetition); the power plot marks such phases.
func (v validity) phaseInvalid(ph runstore.Phase) bool {
	for _, p := range v.Problems {
		if p.Phase == "" {
			continue
		}
		w := parseWhere(p.Phase)
		repOK := w.Rep == 0 || w.Rep == ph.Rep
		if w.Target == "" && w.Phase == runstore.PhaseIdle && ph.Name == runstore.PhaseIdle && repOK {
			return true
		}
		if w.Target == ph.Target && w.Phase == ph.Name && repOK {
			return true
		}
	}
	return false
}

// hasRunProblem reports whether a problem concerns the whole run, which
// makes every figure of it untrustworthy.
func (v validity) hasRunProblem() bool {
	for _, p := range v.Problems {
		if p.Phase == "" {
			return true
		}
	}
	return false
}
