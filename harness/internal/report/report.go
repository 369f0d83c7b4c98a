// Package report writes what a run found: summary.json in the run
// directory, a self-contained HTML page per run and per comparison under
// the reports directory (inline SVG plots from gonum/plot, the font
// embedded, no network), an index of them, the console table and a CSV
// export.
package report

import (
	"bytes"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"codeberg.org/go-fonts/liberation/liberationsansbold"
	"codeberg.org/go-fonts/liberation/liberationsansregular"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
)

//go:embed templates/*.html
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html"))

// Result is what Generate wrote.
type Result struct {
	HTMLPath string
	Summary  *energy.Summary
}

// Generate reads the run in runDir, analyses it, writes
// runDir/summary.json and reportsDir/<id>.html, and refreshes
// reportsDir/index.html.
func Generate(runDir, reportsDir string) (*Result, error) {
	run, err := runstore.Load(runDir)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	sum, det, err := energy.AnalyzeDetail(run, energy.DefaultOptions())
	if err != nil {
		return nil, fmt.Errorf("report: analyse %s: %w", runDir, err)
	}
	if sum.Validity == nil {
		// summary.json carries run.json's validity for its readers.
		sum.Validity = run.Meta.Validity
	}
	if err := runstore.WriteJSON(filepath.Join(runDir, runstore.SummaryFile), sum); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if err := os.MkdirAll(reportsDir, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	html, err := RenderRun(run, sum, det, reportsDir)
	if err != nil {
		return nil, err
	}
	id := run.Meta.ID
	if id == "" {
		id = filepath.Base(runDir)
	}
	path := filepath.Join(reportsDir, id+".html")
	if err := runstore.WriteFileAtomic(path, html); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if err := WriteIndex(reportsDir); err != nil {
		return nil, err
	}
	return &Result{HTMLPath: path, Summary: sum}, nil
}

// runPage is the data of templates/run.html.
type runPage struct {
	Title     string
	Generated string
	Font      template.CSS
	Run       *runstore.Run
	Summary   *energy.Summary
	Figures   []Figure
	Energy    []energyTable
	Functions []functionTable
	Files     []fileLink
	Warnings  []string
	// Negative is set when some dynamic energy is below zero, so that the
	// page explains its ⚠ mark only where one is shown.
	Negative bool
	// Validity is run.json's record; Invalid the problems the red banner
	// names.
	Validity validity
	// ColdStarts is the cold-start energy table.
	ColdStarts []coldStartRow
	// StartUps is the start-up ratio table: one row per pair of a target
	// of another kind and a Wasm target, each named with its mode.
	StartUps []startUpRow
	// WasmModes says what the Wasm modes that start per request mean,
	// where the run has one; "" otherwise.
	WasmModes string
	// Carbon is the carbon tables, one per meter; none without a carbon:
	// block, and NoCarbon then says how to add one.
	Carbon   []carbonTable
	NoCarbon string
	// CPUShares is the attribution by CPU share, one table per meter;
	// none for a run without cpu.csv.
	CPUShares []cpuShareTable
	// NotDrawn explains per-request distributions left out because the
	// meter samples too slowly to attribute energy to single requests.
	NotDrawn []string
	// Index is the JSON that index.html reads back from the page.
	Index string
	// Replication is the study's figures beside ours, for a run of the
	// study's scenario (replication.go); nil otherwise.
	Replication *Replication
}

type fileLink struct{ Name, Href string }

// RenderRun renders the report page of one run. Links to the raw files
// are relative to reportsDir, where the page is written.
func RenderRun(run *runstore.Run, sum *energy.Summary, det *energy.Detail, reportsDir string) ([]byte, error) {
	v := readValidity(&run.Meta)
	figs, err := runFigures(run, sum, det, v)
	if err != nil {
		return nil, err
	}
	pg := runPage{
		Title:      "Run " + sum.RunID,
		Generated:  time.Now().UTC().Format(time.RFC3339),
		Font:       fontCSS(),
		Run:        run,
		Summary:    sum,
		Figures:    figs,
		Energy:     energyTables(sum, v),
		Functions:  functionTables(run, sum, v),
		Validity:   v,
		ColdStarts: coldStartRows(sum),
		StartUps:   startUpRows(sum),
		WasmModes:  wasmModesNote(sum),
		Carbon:     carbonTables(sum, v),
		NoCarbon:   NoCarbon,
		CPUShares:  cpuShareTables(sum, v),
		NotDrawn:   notDrawn(sum),
		// The study's figures beside ours, for a run of its scenario.
		Replication: Replicate(run, sum),
	}
	idx, err := indexMeta(runEntry(run, sum, v))
	if err != nil {
		return nil, err
	}
	pg.Index = idx
	rel, err := filepath.Rel(mustAbs(reportsDir), mustAbs(run.Dir))
	if err != nil {
		rel = run.Dir
	}
	for _, f := range []string{runstore.RunFile, runstore.ScenarioFile, runstore.RequestsFile, runstore.SamplesFile, runstore.CPUFile, runstore.SummaryFile} {
		if f == runstore.CPUFile && len(run.CPU) == 0 {
			continue
		}
		pg.Files = append(pg.Files, fileLink{f, filepath.ToSlash(filepath.Join(rel, f))})
	}
	pg.Warnings = groupWarnings(sum)
	for _, t := range sum.Targets {
		for _, ph := range t.Phases {
			for _, e := range ph.Energy {
				if e.DynamicJPerRequest.Value.OK() && e.DynamicJPerRequest.Value < 0 {
					pg.Negative = true
				}
			}
		}
	}
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, "run.html", pg); err != nil {
		return nil, fmt.Errorf("report: render %s: %w", sum.RunID, err)
	}
	return b.Bytes(), nil
}

func mustAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// primaryMeter is the meter plots use: the first measured one, else the
// first.
func primaryMeter(sum *energy.Summary) string {
	for _, m := range sum.Meters {
		if !m.Estimate && m.Samples > 0 {
			return m.Name
		}
	}
	if len(sum.Meters) > 0 {
		return sum.Meters[0].Name
	}
	return ""
}

func runFigures(run *runstore.Run, sum *energy.Summary, det *energy.Detail, v validity) ([]Figure, error) {
	var figs []Figure
	const w, h = 7.5 * vg.Inch, 3.2 * vg.Inch
	put := func(id, caption string, p *legended, err error, ww, hh vg.Length) error {
		if err != nil {
			return fmt.Errorf("report: plot %s: %w", id, err)
		}
		if p == nil || p.Plot == nil {
			return nil
		}
		var s template.HTML
		var err2 error
		if p.below != nil {
			s, err2 = svgStack(p.Plot, p.below, ww, hh)
		} else {
			s, err2 = svg(p.Plot, ww, hh)
		}
		if err2 != nil {
			return err2
		}
		figs = append(figs, Figure{ID: id, Title: p.Title.Text, Caption: caption, SVG: s, Legend: p.legend})
		return nil
	}
	plain := func(p *plot.Plot) *legended {
		if p == nil {
			return nil
		}
		return &legended{Plot: p}
	}
	meter := primaryMeter(sum)
	pp, err := powerPlot(run, sum, det, v)
	caption := "Total power of each meter (dashed: an estimate from a model), with each target's phases shaded: grey idle, strong colour measured load, pale warm-up and cool-down. Below, on its own axis, the requests sent per second."
	if !v.Valid && len(v.Problems) > 0 {
		caption += " A red bar over a phase marks it invalid (see the banner at the top)."
	}
	if err := put("power", caption, pp, err, w, h*1.45); err != nil {
		return nil, err
	}
	if meter != "" {
		jp, n, err := jprPlot(sum, meter, false, v)
		if err := put("jpr", "Joules per request over each phase's steady window, with its 95% interval (method in the summary table).", jp, err, w, dotHeight(n)); err != nil {
			return nil, err
		}
		dp, n, err := jprPlot(sum, meter, true, v)
		if err := put("dynamic-jpr", "Energy per request above the idle baseline, with its 95% interval. A value left of zero means the load phase drew less power than idle: the baseline was noisy or drifted (see the warnings).", dp, err, w, dotHeight(n)); err != nil {
			return nil, err
		}
		for i, t := range sum.Targets {
			for _, ph := range t.Phases {
				g := det.Groups[energy.GroupKey{Target: t.Name, Phase: ph.Phase, Meter: meter}]
				if g == nil {
					continue
				}
				if e := ph.Meter(meter); e != nil && e.PerRequest != nil && e.PerRequest.LimitedByMeter {
					continue // not drawn: notDrawn says why, under the plots
				}
				big := 0.0
				for _, v := range g.PerRequestJ {
					big = math.Max(big, math.Abs(v))
				}
				if big < zeroJ {
					continue // nothing but rounding residue to show
				}
				k, u := jUnit(big)
				vals := make([]float64, len(g.PerRequestJ))
				for j, v := range g.PerRequestJ {
					vals[j] = v * k
				}
				title := "Per request: " + t.Name + " " + ph.Phase
				if v.Mark(t.Name, ph.Phase, 0).Invalid {
					title += invalidSuffix
				}
				hp, err := histPlot(title, u+" dynamic energy per request (attributed by overlap)", vals, colour(i))
				caption := "Each sampling interval's dynamic energy shared among the requests in flight by their overlap; one count per request wholly inside a steady window."
				if neg := countNegative(g.PerRequestJ); neg > 0 {
					caption += fmt.Sprintf(" %d of %d requests got negative energy: in their intervals the power dipped below the idle baseline (the meter's or the baseline's noise); they are shown as measured, not cut off.", neg, len(g.PerRequestJ))
				}
				if err := put("dist-"+slug(t.Name+"-"+ph.Phase), caption, plain(hp), err, w/2, h*0.9); err != nil {
					return nil, err
				}
			}
		}
	}
	lp, n, err := latencyPlot(sum, v)
	if err := put("latency", "Latency percentiles of successful requests, client side.", lp, err, w, dotHeight(n)); err != nil {
		return nil, err
	}
	for i, t := range sum.Targets {
		var su []float64
		for _, r := range run.Requests {
			if r.Target == t.Name && r.Cold && r.StartUpNs > 0 && energy.Measured(r.Phase) {
				su = append(su, float64(r.StartUpNs)/1e6)
			}
		}
		title := "Start-up time: " + t.Name
		for _, ph := range t.Phases {
			if v.Mark(t.Name, ph.Phase, 0).Invalid {
				title += invalidSuffix
				break
			}
		}
		hp, err := histPlot(title, "ms (as the target reported it)", su, colour(i))
		if err := put("coldstart-"+slug(t.Name), "Cold starts: the start-up part of each cold request's latency, from the target's X-Start-Ns header.", plain(hp), err, w/2, h*0.9); err != nil {
			return nil, err
		}
	}
	if meter != "" {
		tp, err := throughputPlot(sum, det, meter, v)
		if err := put("throughput", "Mean power against request rate in 1-s windows (idle windows at zero); dashed: the least-squares line whose slope is the marginal joules per request.", tp, err, w, h); err != nil {
			return nil, err
		}
	}
	return figs, nil
}

func countNegative(xs []float64) int {
	n := 0
	for _, x := range xs {
		if x < -zeroJ {
			n++
		}
	}
	return n
}

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// fontCSS embeds Liberation Sans (regular and bold) once per page.
func fontCSS() template.CSS {
	face := func(ttf []byte, weight string) string {
		return fmt.Sprintf("@font-face{font-family:'Liberation Sans';font-style:normal;font-weight:%s;src:url(data:font/ttf;base64,%s) format('truetype');}\n", weight, base64.StdEncoding.EncodeToString(ttf))
	}
	return template.CSS(face(liberationsansregular.TTF, "normal") + face(liberationsansbold.TTF, "bold"))
}

// digits matches the numbers in a warning, so that warnings differing only
// in counts ("only 7 samples", "only 9 samples") are grouped.
var digits = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)

// groupWarnings lists the phases' warnings once per kind: a run with many
// targets and inputs repeats the same warning in dozens of phases, and a
// list of all of them hides the one that differs. The first occurrence is
// shown in full with where it came from, then where else it applies; every
// single warning stays in summary.json.
func groupWarnings(sum *energy.Summary) []string {
	type group struct {
		first string
		where []string
	}
	var order []string
	groups := map[string]*group{}
	for _, t := range sum.Targets {
		for _, p := range t.Phases {
			for _, w := range p.Warnings {
				key := digits.ReplaceAllString(w, "#")
				g := groups[key]
				if g == nil {
					g = &group{first: w}
					groups[key] = g
					order = append(order, key)
				}
				g.where = append(g.where, t.Name+" "+p.Phase)
			}
		}
	}
	var out []string
	for _, k := range order {
		g := groups[k]
		line := g.where[0] + ": " + g.first
		if n := len(g.where) - 1; n > 0 {
			line += fmt.Sprintf(" (the same kind of warning in %d more phase(s): %s)", n, strings.Join(g.where[1:], ", "))
		}
		out = append(out, line)
	}
	return out
}
