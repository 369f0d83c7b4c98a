package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/harness/internal/runstore"
)

var update = flag.Bool("update", false, "rewrite golden files")

// demoRun writes the synthetic demo run under dir/runs and returns its
// directory.
func demoRun(t testing.TB, dir string, seed uint64, change func(*synth.Config)) string {
	t.Helper()
	cfg := synth.Demo(seed)
	if change != nil {
		change(&cfg)
	}
	run, _ := synth.Generate(cfg)
	rd := filepath.Join(dir, "runs", run.Meta.ID)
	if err := synth.WriteDir(rd, run); err != nil {
		t.Fatal(err)
	}
	return rd
}

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	rd := demoRun(t, dir, 1, nil)
	// A target's own facts (run.json targets[].report) go into the page.
	run, err := runstore.Load(rd)
	if err != nil {
		t.Fatal(err)
	}
	run.Meta.Targets[0].Report = map[string]any{"cold_start_method": "scale-to-zero", "config": map[string]any{"pool": 4}, "cpu_time_ns": 5.580575309e+09}
	if err := runstore.WriteJSON(filepath.Join(rd, runstore.RunFile), run.Meta); err != nil {
		t.Fatal(err)
	}
	reports := filepath.Join(dir, "reports")
	res, err := Generate(rd, reports)
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(res.HTMLPath)
	if err != nil {
		t.Fatal(err)
	}
	// summary.json is written and reads back.
	data, err := os.ReadFile(filepath.Join(rd, runstore.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var s energy.Summary
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	page := string(html)
	for _, want := range []string{
		`id="summary-table"`, `id="fig-power"`, `id="fig-jpr"`, `id="fig-latency"`, `id="fig-throughput"`,
		`id="fig-dist-docker-node-load"`, `id="fig-coldstart-docker-node"`, `id="method"`, `id="meters"`, `id="host"`,
		`class="estimate"`, "@font-face", "../runs/" + s.RunID + "/requests.csv",
		`id="targets"`, "<dt>cold_start_method</dt><dd>scale-to-zero</dd>", `<dt>config</dt><dd>{&#34;pool&#34;:4}</dd>`, "<dt>cpu_time_ns</dt><dd>5580575309</dd>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, m := range s.Meters {
		if m.Estimate && (!strings.Contains(m.Label, "estimate") || !strings.Contains(page, m.Label)) {
			t.Errorf("model meter %q is not labelled as an estimate in the report", m.Label)
		}
	}
	for _, bad := range []string{"http://", "https://", "<script src", "NaN"} {
		if strings.Contains(stripSVGNS(page), bad) {
			t.Errorf("report holds %q (it must work offline and show no NaN)", bad)
		}
	}
	idx, err := os.ReadFile(filepath.Join(reports, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(idx), s.RunID+".html") {
		t.Error("index.html does not link the report")
	}
	// The request rate has its own axis, below the power's, not scaled
	// onto watts.
	i := strings.Index(page, `id="fig-power"`)
	power := page[i : i+strings.Index(page[i:], "</figure>")]
	if !strings.Contains(power, ">requests/s</text>") || strings.Contains(power, "scaled") {
		t.Error("the power plot does not give the request rate its own axis")
	}
	if strings.Count(power, ">W</text>") != 1 {
		t.Error("the power plot lacks its watts axis")
	}
	goldenStructure(t, "run.structure.golden", page)
}

// stripSVGNS drops the namespace URIs that SVG must name, which are not
// fetched.
func stripSVGNS(s string) string {
	return regexp.MustCompile(`xmlns(:\w+)?="[^"]*"`).ReplaceAllString(s, "")
}

// structure is the page's outline: headings, ids, table headers and the
// number of SVG elements, not the numbers, which the summary golden pins.
func structure(page string) string {
	var b strings.Builder
	re := regexp.MustCompile(`<h[12][^>]*>[^<]*|id="[^"]+"|<th>[^<]*</th>|<svg `)
	for _, m := range re.FindAllString(page, -1) {
		b.WriteString(m)
		b.WriteByte('\n')
	}
	return b.String()
}

func goldenStructure(t *testing.T, name, page string) {
	t.Helper()
	got := structure(page)
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("structure of the page differs from %s; run with -update if intended.\ngot:\n%s", path, got)
	}
}

func TestPrintSummary(t *testing.T) {
	run, _ := synth.Generate(synth.Demo(1))
	s, err := energy.Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	PrintSummary(&b, s)
	out := b.String()
	for _, want := range []string{"target", "wasm", "docker-node", "rapl", "estimate", "J/request", "cold starts", "come from a model"} {
		if !strings.Contains(out, want) {
			t.Errorf("console table lacks %q:\n%s", want, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines < 5 {
		t.Errorf("console table has %d lines:\n%s", lines, out)
	}
}

func TestWriteCSV(t *testing.T) {
	run, _ := synth.Generate(synth.Demo(1))
	s, err := energy.Analyze(run)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, s); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+4 { // 2 targets x 2 meters
		t.Fatalf("%d records, want 5", len(recs))
	}
	for i, r := range recs {
		if len(r) != len(CSVHeader) {
			t.Errorf("record %d has %d fields, want %d", i, len(r), len(CSVHeader))
		}
	}
}

// sameRate makes the demo's targets offer the same request rate, as the
// shipped scenarios do (one load section for all targets): only then are
// they like for like.
func sameRate(c *synth.Config) {
	for i := range c.Targets {
		c.Targets[i].Rate = 4
	}
}

func TestCompare(t *testing.T) {
	dir := t.TempDir()
	rd1 := demoRun(t, dir, 1, func(c *synth.Config) { c.Reps = 5; sameRate(c) })
	rd2 := demoRun(t, dir, 2, func(c *synth.Config) {
		c.Reps = 5
		sameRate(c)
		c.Start = time.Date(2026, 1, 2, 4, 4, 5, 0, time.UTC)
		c.Targets[0].JPerRequest *= 2 // the wasm target got worse
	})
	var runs []*Analysed
	for _, rd := range []string{rd1, rd2} {
		a, err := LoadAnalysed(rd)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, a)
	}
	c := Compare("test", Pairs(runs), Options{})
	var verdicts []string
	for _, r := range c.Rows {
		if !r.Comparable {
			t.Errorf("%s %s vs %s: not comparable: %q", r.Metric, r.A.name(true), r.B.name(true), r.Reasons)
		}
		verdicts = append(verdicts, r.Verdict)
	}
	if c.Rows[0].Metric != "dynamic energy per request" || c.Rows[1].Metric != "total energy per request" {
		t.Errorf("rows lead with %q, %q; want dynamic energy first, total second", c.Rows[0].Metric, c.Rows[1].Metric)
	}
	all := strings.Join(verdicts, "\n")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`^wasm used \d+x \(\d+-\d+x\) less dynamic energy per request than docker-node \(p [<=] [\d.]+\)$`),
		regexp.MustCompile(`wasm \(20260102-030405-coldstart\) used [\d.]+x \([\d.]+-[\d.]+x\) less dynamic energy per request than wasm \(20260102-040405-coldstart\)`),
	} {
		found := false
		for _, v := range verdicts {
			if want.MatchString(v) {
				found = true
			}
		}
		if !found {
			t.Errorf("no verdict matches %s:\n%s", want, all)
		}
	}
	reports := filepath.Join(dir, "reports")
	os.MkdirAll(reports, 0o755)
	path, err := WriteComparison(reports, c)
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "less dynamic energy per request than docker-node") {
		t.Error("comparison page lacks the verdict")
	}
	for _, want := range []string{`id="runs-table"`, "Synthetic CPU, 2 cores"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("comparison page lacks %q (the runs and their hosts)", want)
		}
	}
	goldenStructure(t, "compare.structure.golden", string(page))
	var b bytes.Buffer
	PrintComparison(&b, c)
	if !strings.Contains(b.String(), "Mann-Whitney") || !strings.Contains(b.String(), "host synthetic") {
		t.Errorf("comparison table:\n%s", b.String())
	}
}

func TestVerdictNoDifference(t *testing.T) {
	r := Row{Metric: "dynamic energy per request", Unit: "J", A: Side{Target: "a", Phase: "load", Value: 1, Values: []float64{1, 1, 1, 1, 1}}, B: Side{Target: "b", Phase: "load", Value: 1.01, Values: []float64{1, 1, 1, 1, 1}},
		Ratio: 1.01, RatioLo: 0.95, RatioHi: 1.07, PMannWhitney: 0.6, PWelch: 0.7}
	if v := verdict(r, false); !strings.HasPrefix(v, "no clear difference in dynamic energy per request between a and b") {
		t.Errorf("verdict %q", v)
	}
	// Three repetitions a side: the exact Mann-Whitney test cannot reach
	// 0.05, and the verdict says so rather than leaving it a mystery.
	r.A.Values, r.B.Values = r.A.Values[:3], r.B.Values[:3]
	r.PMannWhitney, r.PWelch, r.RatioLo, r.RatioHi, r.Ratio = 0.1, 0.001, 1.5, 1.7, 1.6
	if v := verdict(r, false); !strings.Contains(v, "cannot go below p = 0.1") {
		t.Errorf("verdict %q", v)
	}
}

// TestVerdictNeedsThreeReps: with fewer than three repetitions a side
// there is no verdict, and the row says why; the 1-s windows that once
// stood in for repetitions never feed one.
func TestVerdictNeedsThreeReps(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadAnalysed(demoRun(t, dir, 1, func(c *synth.Config) { c.Reps = 2; sameRate(c) }))
	if err != nil {
		t.Fatal(err)
	}
	c := Compare("two repetitions", Pairs([]*Analysed{a}), Options{})
	if len(c.Rows) == 0 {
		t.Fatal("no rows")
	}
	for _, r := range c.Rows {
		if r.Verdict != "" || !strings.Contains(r.NoVerdict, "at least 3") || !strings.Contains(r.Text(), "no verdict") {
			t.Errorf("%s: verdict %q, no verdict %q", r.Metric, r.Verdict, r.NoVerdict)
		}
		if strings.Contains(r.Samples, "window") || !math.IsNaN(r.PWelch) {
			t.Errorf("%s: tested over %q (p %v): only repetitions may be tested", r.Metric, r.Samples, r.PWelch)
		}
	}
}
