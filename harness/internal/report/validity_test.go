package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/harness/internal/runstore"
)

// invalidProblems is a validity record like the checks write for a run
// on a busy machine: one problem of the whole run, one of a phase.
func invalidProblems() *runstore.Validity {
	return &runstore.Validity{Valid: false, Problems: []runstore.Problem{
		{Phase: "", Check: "busy-machine", Observed: 0.62, Limit: 0.05, Unit: "share", Message: "other processes used 62% of the CPU before the load (cc1: 48%)"},
		{Phase: "wasm/load/2", Check: "foreign-cpu", Observed: 0.31, Limit: 0.05, Unit: "share", Message: "other processes used 31% of the CPU during the phase"},
	}}
}

// generateWith writes the demo run with run.json changed by change and
// generates its report; it returns the page, the summary and the
// reports directory.
func generateWith(t *testing.T, change func(*runstore.Run)) (string, *energy.Summary, string) {
	t.Helper()
	dir := t.TempDir()
	run, _ := synth.Generate(synth.Demo(1))
	if change != nil {
		change(run)
	}
	rd := filepath.Join(dir, "runs", run.Meta.ID)
	if err := synth.WriteDir(rd, run); err != nil {
		t.Fatal(err)
	}
	reports := filepath.Join(dir, "reports")
	res, err := Generate(rd, reports)
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(res.HTMLPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(page), res.Summary, reports
}

// rowsOf is the rows of the table with the given id.
func rowsOf(t *testing.T, page, id string) []string {
	t.Helper()
	i := strings.Index(page, `id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no table %q", id)
	}
	table := page[i : i+strings.Index(page[i:], "</table>")]
	return regexp.MustCompile(`(?s)<tr[ >].*?</tr>`).FindAllString(table, -1)[1:]
}

// TestReportValidity: a run whose run.json records problems gets a red
// banner at the top naming each, its affected phases are marked in every
// table and plot, and summary.json carries the record; a valid run and a
// run from before the checks say which they are.
func TestReportValidity(t *testing.T) {
	page, sum, _ := generateWith(t, func(r *runstore.Run) { r.Meta.Validity = invalidProblems() })
	banner := strings.Index(page, `id="validity-banner"`)
	if banner < 0 || banner > strings.Index(page, `id="summary"`) {
		t.Fatalf("no banner before the summary (at %d)", banner)
	}
	for _, want := range []string{"62% of the CPU before the load", "wasm/load/2: other processes used 31%", "busy-machine: 62% against a limit of 5%"} {
		if !strings.Contains(page[banner:banner+3000], want) {
			t.Errorf("banner lacks %q", want)
		}
	}
	for _, id := range []string{"requests-table", "summary-table", "summary-table-estimate"} {
		for _, row := range rowsOf(t, page, id) {
			marked := strings.Contains(row, `class="invalid"`) && strings.Contains(row, `<span class="bad"`)
			if wasm := strings.Contains(row, "<td>wasm "); marked != wasm {
				t.Errorf("table %s: row marked %v, want %v (wasm only):\n%s", id, marked, wasm, row)
			}
		}
	}
	// The per-repetition table marks repetition 2 of wasm alone.
	reps := regexp.MustCompile(`<tr class="invalid"><td>(\w[\w-]*)</td><td>load<span class="bad"[^>]*>invalid</span></td><td>[^<]*(?:<span[^>]*>[^<]*</span>)?</td><td class="n">(\d)</td>`).FindAllStringSubmatch(page, -1)
	if len(reps) != 2 || reps[0][1] != "wasm" || reps[0][2] != "2" || reps[1][2] != "2" {
		t.Errorf("per-repetition rows marked: %v, want wasm repetition 2 on each meter", reps)
	}
	for _, fig := range []string{"fig-power", "fig-jpr", "fig-dynamic-jpr", "fig-latency", "fig-coldstart-wasm", "fig-throughput"} {
		i := strings.Index(page, `id="`+fig+`"`)
		if i < 0 {
			t.Errorf("no %s", fig)
			continue
		}
		f := page[i : i+strings.Index(page[i:], "</figure>")]
		if !strings.Contains(f, "[invalid]") && !strings.Contains(f, "invalid phase (see the banner)") {
			t.Errorf("%s does not mark the invalid phase", fig)
		}
	}
	if sum.Validity == nil || sum.Validity.Valid || len(sum.Validity.Problems) != 2 {
		t.Errorf("summary validity %+v", sum.Validity)
	}

	for _, tc := range []struct {
		name     string
		validity *runstore.Validity
		badge    string
	}{
		{"valid", &runstore.Validity{Valid: true, Problems: []runstore.Problem{}}, `<span class="ok">valid</span>`},
		{"not recorded", nil, "validity not recorded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, _, _ := generateWith(t, func(r *runstore.Run) { r.Meta.Validity = tc.validity })
			if strings.Contains(page, `id="validity-banner"`) || strings.Contains(page, `class="invalid"`) {
				t.Error("banner or marks on a run without problems")
			}
			if !strings.Contains(page, tc.badge) {
				t.Errorf("page lacks %q", tc.badge)
			}
		})
	}
}

// TestPrintSummaryValidity: the console table shows failed requests and
// whether each phase is valid, and names every problem under it.
func TestPrintSummaryValidity(t *testing.T) {
	run, _ := synth.Generate(synth.Demo(1))
	s, err := energy.Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	s.Validity = invalidProblems()
	s.Validity.Problems = s.Validity.Problems[1:] // the phase's alone
	var b bytes.Buffer
	PrintSummary(&b, s)
	out := b.String()
	for _, want := range []string{"failed", "valid", "INVALID RUN: 1 problem(s)", "wasm/load/2: other processes used 31%"} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	docker := s.Find("docker-node", "load")
	failed := docker.Requests - docker.Successes
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || (f[0] != "wasm" && f[0] != "docker-node") {
			continue
		}
		valid := f[len(f)-1]
		if want := map[string]string{"wasm": "NO", "docker-node": "yes"}[f[0]]; valid != want {
			t.Errorf("%s: valid %q, want %q:\n%s", f[0], valid, want, line)
		}
		if f[0] == "docker-node" && (failed == 0 || !strings.Contains(line, " "+strconv.Itoa(failed)+" (")) {
			t.Errorf("docker-node's %d failed requests not shown:\n%s", failed, line)
		}
	}
	// A problem of the whole run marks every row.
	s.Validity = invalidProblems()
	b.Reset()
	PrintSummary(&b, s)
	if strings.Count(b.String(), "NO (run)") != 2 {
		t.Errorf("a problem of the whole run should mark docker-node's rows:\n%s", b.String())
	}
}

func TestAffects(t *testing.T) {
	for _, tc := range []struct {
		name, where   string
		target, phase string
		rep           int
		want          bool
	}{
		{"whole run", "", "wasm", "load", 0, true},
		{"the phase", "wasm/load/2", "wasm", "load", 0, true},
		{"the phase, that repetition", "wasm/load/2", "wasm", "load", 2, true},
		{"the phase, another repetition", "wasm/load/2", "wasm", "load", 3, false},
		{"an input with a slash", "wasm/load/n=10/1", "wasm", "load/n=10", 1, true},
		{"another input", "wasm/load/n=20/1", "wasm", "load/n=10", 1, false},
		{"its idle baseline", "wasm/idle/1", "wasm", "load", 1, true},
		{"a shared idle phase", "idle/3", "docker-node", "load", 3, true},
		{"another target", "docker-node/load/1", "wasm", "load", 1, false},
		{"a target whose name extends another's", "wasm-prime/load/1", "wasm", "load", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := affects(runstore.Problem{Phase: tc.where}, tc.target, tc.phase, tc.rep); got != tc.want {
				t.Errorf("affects(%q, %s %s %d) = %v, want %v (parsed %+v)", tc.where, tc.target, tc.phase, tc.rep, got, tc.want, parseWhere(tc.where))
			}
		})
	}
}

// TestResolutionAndAttributionLimits: a figure below the meter's
// resolution reads "below resolution" wherever it would be a number, a
// per-request distribution limited by the meter is not drawn and says
// why, cold-start energy is shown in joules and µWh, and the CSV carries
// all of it.
func TestResolutionAndAttributionLimits(t *testing.T) {
	dir := t.TempDir()
	run, _ := synth.Generate(synth.Demo(1))
	run.Dir = dir
	sum, det, err := energy.AnalyzeDetail(run, energy.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	e := sum.Find("wasm", "load").Meter("rapl")
	e.DynamicJPerRequest.BelowResolution = true
	e.DynamicJPerRequest.Reason = "below the 15 µJ counter step over the window"
	e.PerRequest.LimitedByMeter, e.PerRequest.SampleIntervalMs, e.PerRequest.TypicalLatencyMs = true, 100, 2
	sum.ColdStarts = []energy.ColdStartEnergy{{Function: "memes", Cold: "docker-node", Warm: "wasm", Phase: "load", Meter: "rapl",
		DynamicJPerRequest: energy.Interval{Value: 0.36, Lo: 0.3, Hi: 0.42, N: 3}}}
	html, err := RenderRun(run, sum, det, dir)
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	row := rowsOf(t, page, "summary-table")[0]
	if dyn := regexp.MustCompile(`(?s)<td class="n"[^>]*>(.*?)</td>`).FindAllStringSubmatch(row, -1)[0][1]; dyn != "below resolution" {
		t.Errorf("dynamic cell %q: want the words alone, no number", dyn)
	}
	for _, want := range []string{`id="not-drawn"`, "wasm load on rapl: the meter samples every 100 ms, longer than a typical request (2.00 ms)", "limited by the meter",
		`id="cold-start-table"`, "100 µWh", "wasm load (below resolution)"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, `id="fig-dist-wasm-load"`) {
		t.Error("a distribution limited by the meter is drawn")
	}
	for _, r := range ratiosOf(functionTables(run, sum, validity{})) {
		if r.meter == "rapl" && (!isNaN(r.cell.Dynamic) || !strings.Contains(r.cell.WhyDynamic, "below the meter's resolution")) {
			t.Errorf("function table ratio over a value below resolution: %+v", r.cell)
		}
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, sum); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, r := range recs[1:] {
		target, meter := r[col["target"]], r[col["meter"]]
		below := target == "wasm" && meter == "rapl"
		if got := r[col["below_resolution"]] == "true"; got != below {
			t.Errorf("%s %s: below_resolution %q", target, meter, r[col["below_resolution"]])
		}
		if below && (r[col["dynamic_j_per_request"]] != "NaN" || r[col["dynamic_uwh_per_request"]] != "NaN") {
			t.Errorf("%s %s: a value below resolution written as a number: %q, %q", target, meter, r[col["dynamic_j_per_request"]], r[col["dynamic_uwh_per_request"]])
		}
		if !below && r[col["dynamic_uwh_per_request"]] == "NaN" {
			t.Errorf("%s %s: no µWh", target, meter)
		}
		if cold := target == "docker-node" && meter == "rapl"; cold != (r[col["cold_start_uwh_per_request"]] == "100") {
			t.Errorf("%s %s: cold-start µWh %q", target, meter, r[col["cold_start_uwh_per_request"]])
		}
	}
	b.Reset()
	PrintSummary(&b, sum)
	if !strings.Contains(b.String(), "below resolution") || !strings.Contains(b.String(), "Cold start of memes") {
		t.Errorf("console:\n%s", b.String())
	}
}

type meterRatio struct {
	meter string
	cell  ratioCell
}

func ratiosOf(fts []functionTable) []meterRatio {
	var out []meterRatio
	for _, ft := range fts {
		for _, r := range ft.Rows {
			for _, c := range r.Ratios {
				out = append(out, meterRatio{ft.Meter.Name, c})
			}
		}
	}
	return out
}

func isNaN(x float64) bool { return x != x }

// TestCondense: the console names each failed check once, with how many
// places failed it and the worst, so one busy machine's dozens of phases
// do not hide a different check.
func TestCondense(t *testing.T) {
	busy := func(phase string, share float64) runstore.Problem {
		return runstore.Problem{Phase: phase, Check: "foreign_cpu", Observed: share, Limit: 0.05, Unit: "share", Message: fmt.Sprintf("others used %.0f%%", 100*share)}
	}
	ps := []runstore.Problem{
		busy("wasm/idle/0", 0.2), busy("wasm/load/0", 0.9), busy("wasm/cooldown/0", 0.3),
		{Phase: "wasm/load/1", Check: "failed_requests", Observed: 0.5, Limit: 0.05, Unit: "share", Message: "half failed"},
		busy("docker-node/idle/0", 0.1), busy("docker-node/load/0", 0.4),
	}
	got := condense(ps)
	if len(got) != 2 {
		t.Fatalf("%d lines, want one per check:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, want := range []string{"foreign_cpu in 5 places", "wasm/idle/0, wasm/load/0, wasm/cooldown/0, docker-node/idle/0, and 1 more", "worst: wasm/load/0: others used 90%"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("line %q lacks %q", got[0], want)
		}
	}
	if !strings.HasPrefix(got[1], "wasm/load/1: half failed") {
		t.Errorf("a check seen once is not described in full: %q", got[1])
	}
}
