package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/harness/internal/runstore"
)

// gridCarbon is a carbon: block of a constant intensity and a server's
// embodied emissions.
func gridCarbon(g float64) *runstore.Carbon {
	return &runstore.Carbon{
		IntensityGPerKWh: &runstore.Sourced{Value: g, Source: "--set carbon.intensity=" + strconv.FormatFloat(g, 'g', -1, 64)},
		Embodied: &runstore.Embodied{TotalKg: runstore.Sourced{Value: 1200, Source: "s.yaml:20:24"},
			LifetimeYears: runstore.Sourced{Value: 4, Source: "s.yaml:20:46"}, Share: runstore.Sourced{Value: 1, Source: "default"}},
		PUE: runstore.Sourced{Value: 1, Source: "default"},
	}
}

// carbonRun writes the demo run (five repetitions, both targets at one
// rate) with a carbon record under dir/runs.
func carbonRun(t *testing.T, dir string, seed uint64, rec *runstore.Carbon, change func(*synth.Config)) string {
	t.Helper()
	cfg := synth.Demo(seed)
	cfg.Reps = 5
	sameRate(&cfg)
	if change != nil {
		change(&cfg)
	}
	run, _ := synth.Generate(cfg)
	run.Meta.Carbon = rec
	rd := filepath.Join(dir, "runs", run.Meta.ID)
	if err := synth.WriteDir(rd, run); err != nil {
		t.Fatal(err)
	}
	return rd
}

func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// TestCarbonReport: summary.json, the report, the console and the CSV
// give SCI per request with its parts, in gCO2e, the estimate marked.
func TestCarbonReport(t *testing.T) {
	dir := t.TempDir()
	rd := carbonRun(t, dir, 1, gridCarbon(400), nil)
	res, err := Generate(rd, filepath.Join(dir, "reports"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(rd, runstore.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var s energy.Summary
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Carbon == nil || !strings.Contains(s.Carbon.Method, "ISO/IEC 21031:2024") {
		t.Fatalf("summary.json carbon %+v", s.Carbon)
	}
	e := s.Find("wasm", "load").Meter("rapl")
	if e == nil || e.Carbon == nil {
		t.Fatal("summary.json has no carbon for wasm on rapl")
	}
	if c := e.Carbon; !sameFloat(float64(c.SCIPerRequest.Value), float64(e.DynamicJPerRequest.Value)*400/3.6e6+float64(c.EmbodiedPerRequest.Value)) {
		t.Errorf("summary.json SCI %v, want dynamic J/request x 400/3.6e6 + M = %v", c.SCIPerRequest.Value,
			float64(e.DynamicJPerRequest.Value)*400/3.6e6+float64(c.EmbodiedPerRequest.Value))
	}

	html, err := os.ReadFile(res.HTMLPath)
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	for _, want := range []string{`id="carbon-table"`, `id="carbon-table-estimate"`, `id="carbon-method"`, "ISO/IEC 21031:2024", "gCO2e", "400 gCO2e/kWh"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	est := page[strings.Index(page, `id="carbon-table"`):strings.Index(page, `id="carbon-table-estimate"`)]
	if !strings.Contains(est, `class="estimate"`) {
		t.Error("the carbon table of the estimate meter is not labelled an estimate")
	}
	if strings.Contains(page, `id="carbon-none"`) || strings.Contains(stripSVGNS(page), "NaN") {
		t.Error("report says there is no carbon, or shows NaN")
	}

	var b bytes.Buffer
	PrintSummary(&b, &s)
	out := b.String()
	if !strings.Contains(out, "Carbon per request (SCI") || !regexp.MustCompile(`wasm\s+load\s+estimate \(model\)\s+[\d.]+ [µmn]?gCO2e \[`).MatchString(out) {
		t.Errorf("console carbon lines:\n%s", out)
	}

	b.Reset()
	if err := WriteCSV(&b, &s); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int { return slices.Index(recs[0], name) }
	for _, r := range recs[1:] {
		e := s.Find(r[col("target")], r[col("phase")]).Meter(r[col("meter")])
		got, _ := strconv.ParseFloat(r[col("sci_g_per_request")], 64)
		lo, _ := strconv.ParseFloat(r[col("sci_g_per_request_lo")], 64)
		if !sameFloat(got, float64(e.Carbon.SCIPerRequest.Value)) || !sameFloat(lo, float64(e.Carbon.SCIPerRequest.Lo)) {
			t.Errorf("%s %s: CSV SCI %v [lo %v], summary %v [lo %v]", r[col("target")], r[col("meter")], got, lo, e.Carbon.SCIPerRequest.Value, e.Carbon.SCIPerRequest.Lo)
		}
		if r[col("carbon_intensity_g_per_kwh")] != "400" || r[col("estimate")] != strconv.FormatBool(e.Estimate) {
			t.Errorf("CSV row %v", r)
		}
	}
}

// TestNoCarbonSaysHow: without a carbon: block there are no carbon
// figures, and the report and the console say how to add one.
func TestNoCarbonSaysHow(t *testing.T) {
	dir := t.TempDir()
	rd := carbonRun(t, dir, 1, nil, nil)
	res, err := Generate(rd, filepath.Join(dir, "reports"))
	if err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(res.HTMLPath)
	if !strings.Contains(string(html), `id="carbon-none"`) || !strings.Contains(string(html), "carbon: {intensity: G}") || strings.Contains(string(html), `id="carbon-table"`) {
		t.Error("the report of a run without carbon does not say how to add it")
	}
	var b bytes.Buffer
	PrintSummary(&b, res.Summary)
	if !strings.Contains(b.String(), NoCarbon) {
		t.Errorf("console:\n%s", b.String())
	}
	b.Reset()
	WriteCSV(&b, res.Summary)
	recs, _ := csv.NewReader(&b).ReadAll()
	if i := slices.Index(recs[0], "sci_g_per_request"); i < 0 || recs[1][i] != "NaN" {
		t.Errorf("CSV without carbon: %v / %v", recs[0], recs[1])
	}
}

// TestCompareCarbon: compare puts SCI per request side by side with its
// parts and a verdict, and refuses runs whose carbon settings differ.
func TestCompareCarbon(t *testing.T) {
	dir := t.TempDir()
	later := func(c *synth.Config) { c.Start = time.Date(2026, 1, 2, 4, 4, 5, 0, time.UTC) }
	load := func(rd string) *Analysed {
		a, err := LoadAnalysed(rd)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	one := load(carbonRun(t, dir, 1, gridCarbon(400), nil))
	c := Compare("test", Pairs([]*Analysed{one}), Options{})
	var row *Row
	for i := range c.Rows {
		if c.Rows[i].Metric == carbonMetric && c.Rows[i].Meter == "rapl" {
			row = &c.Rows[i]
		}
	}
	if row == nil {
		t.Fatal("no carbon row")
	}
	if !regexp.MustCompile(`^wasm emitted [\d.]+x \([\d.]+-[\d.]+x\) less carbon per request \(SCI\) than docker-node`).MatchString(row.Verdict) {
		t.Errorf("verdict %q", row.Verdict)
	}
	if txt := sideText(row.A, row.Unit); !strings.Contains(txt, "gCO2e") || !strings.Contains(txt, "E x I") || !strings.Contains(txt, "per 1,000 requests") {
		t.Errorf("side text %q lacks the parts", txt)
	}
	var b bytes.Buffer
	if err := WriteComparisonJSON(&b, c, ""); err != nil {
		t.Fatal(err)
	}
	var js struct {
		Comparisons []struct {
			Metric string `json:"metric"`
			Unit   string `json:"unit"`
			Sides  []struct {
				Carbon *struct {
					Operational float64 `json:"operational_g_per_request"`
					Per1000     float64 `json:"sci_g_per_1000_requests"`
				} `json:"carbon"`
			} `json:"sides"`
		} `json:"comparisons"`
	}
	if err := json.Unmarshal(b.Bytes(), &js); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range js.Comparisons {
		if r.Metric == carbonMetric && r.Unit == "gCO2e" && r.Sides[0].Carbon != nil && r.Sides[0].Carbon.Per1000 > 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("compare --json lacks the carbon rows' parts:\n%s", b.String())
	}

	other := load(carbonRun(t, dir, 2, gridCarbon(350), later))
	c = Compare("test", []Pair{{A: one, B: other, TA: "wasm", TB: "wasm", Phase: "load"}}, Options{})
	for _, r := range c.Rows {
		if r.Metric != carbonMetric {
			continue
		}
		if r.Comparable || !strings.Contains(strings.Join(r.Reasons, "; "), "different carbon settings: 400 gCO2e/kWh") {
			t.Errorf("runs at 400 and 350 gCO2e/kWh compared: %v", r.Reasons)
		}
	}
}
