package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
)

// indexEntry is one row of index.html. Each page carries its own entry as
// JSON in a <meta name="harness-index"> tag near its top, so the index is
// rebuilt from the pages in the folder alone: a page deleted is a row
// gone, and no second file can fall out of step with the pages.
type indexEntry struct {
	Kind     string    `json:"kind"` // "run" or "comparison"
	ID       string    `json:"id"`
	Date     time.Time `json:"date"`
	Scenario string    `json:"scenario,omitempty"`
	Status   string    `json:"status,omitempty"`
	// Validity is "valid", "invalid" or "" (not checked); Problems are
	// the banner's lines.
	Validity string     `json:"validity,omitempty"`
	Problems []string   `json:"problems,omitempty"`
	Meter    string     `json:"meter,omitempty"`
	Estimate bool       `json:"estimate,omitempty"`
	Headline []headline `json:"headline,omitempty"`
	// Comparisons only: the runs and what came of it.
	Runs    []string `json:"runs,omitempty"`
	Outcome string   `json:"outcome,omitempty"`
	Href    string   `json:"-"`
}

// headline is a target's figures in the index: dynamic energy per
// request of its first measured phase on the run's primary meter, in
// joules and µWh, and its failed requests.
type headline struct {
	Target  string `json:"target"`
	Phase   string `json:"phase"`
	Dynamic string `json:"dynamic"`
	UWh     string `json:"uwh,omitempty"`
	Failed  string `json:"failed,omitempty"`
	Invalid bool   `json:"invalid,omitempty"`
	More    int    `json:"more,omitempty"` // further measured phases not shown
}

func validityName(v validity) string {
	switch {
	case !v.Known:
		return ""
	case v.Valid:
		return "valid"
	}
	return "invalid"
}

func runEntry(run *runstore.Run, sum *energy.Summary, v validity) indexEntry {
	e := indexEntry{Kind: "run", ID: sum.RunID, Date: run.Meta.Started.UTC(), Scenario: sum.Scenario, Status: sum.Status, Validity: validityName(v)}
	for _, p := range v.Problems {
		e.Problems = append(e.Problems, describe(p))
	}
	meter := primaryMeter(sum)
	for _, m := range sum.Meters {
		if m.Name == meter {
			e.Meter, e.Estimate = m.Label, m.Estimate
		}
	}
	for _, t := range sum.Targets {
		if t.Skipped || len(t.Phases) == 0 {
			continue
		}
		ph := t.Phases[0]
		h := headline{Target: t.Name, Phase: ph.Phase, Dynamic: "–", More: len(t.Phases) - 1, Invalid: v.Mark(t.Name, ph.Phase, 0).Invalid}
		if en := ph.Meter(meter); en != nil {
			h.Dynamic = fmtInterval(en.DynamicJPerRequest)
			if !en.DynamicJPerRequest.BelowResolution && en.DynamicJPerRequest.Value.OK() {
				h.UWh = fmtUWh(en.DynamicJPerRequest.Value)
			}
		}
		if f := ph.Requests - ph.Successes; f > 0 {
			h.Failed = fmt.Sprintf("%d of %d failed", f, ph.Requests)
		}
		e.Headline = append(e.Headline, h)
	}
	return e
}

func compareEntry(c *Comparison) indexEntry {
	e := indexEntry{Kind: "comparison", Date: time.Now().UTC(), Scenario: strings.TrimPrefix(c.Title, "Comparison of ")}
	for _, r := range c.Runs {
		e.Runs = append(e.Runs, r.ID)
	}
	var verdicts, none, refused int
	for _, r := range c.Rows {
		switch {
		case !r.Comparable && !r.Forced:
			refused++
		case r.Verdict != "":
			verdicts++
		default:
			none++
		}
	}
	e.Outcome = fmt.Sprintf("%d verdict(s), %d without one, %d not comparable", verdicts, none, refused)
	if c.Forced {
		e.Outcome += " (forced)"
	}
	return e
}

// indexMeta is the entry as the content of the page's meta tag.
func indexMeta(e indexEntry) (string, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("report: index entry: %w", err)
	}
	return string(b), nil
}

// metaTag finds the index entry in a page's head.
var metaTag = regexp.MustCompile(`<meta name="harness-index" content="([^"]*)">`)

// readEntry reads a page's index entry from its first kilobytes (the tag
// comes before the embedded font). A page written before entries were
// embedded gives what its file name says.
func readEntry(path string) indexEntry {
	name := filepath.Base(path)
	e := indexEntry{Href: name, ID: strings.TrimSuffix(name, ".html")}
	if f, err := os.Open(path); err == nil {
		head := make([]byte, 64<<10)
		n, _ := io.ReadFull(f, head)
		f.Close()
		if m := metaTag.FindSubmatch(head[:n]); m != nil {
			var got indexEntry
			if json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &got) == nil {
				got.Href = name
				if got.ID == "" {
					got.ID = e.ID
				}
				return got
			}
		}
	}
	e.Kind = "run"
	id := e.ID
	if c, ok := strings.CutPrefix(id, "compare-"); ok {
		e.Kind = "comparison"
		e.Runs = strings.Split(c, "_vs_")
		id = e.Runs[len(e.Runs)-1]
	}
	if t, err := time.Parse("20060102-150405", firstN(id, 15)); err == nil {
		e.Date = t
		if e.Kind == "run" && len(id) > 16 {
			e.Scenario = id[16:]
		}
	}
	return e
}

func firstN(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}

// WriteIndex rewrites reportsDir/index.html: one row per run report and
// per comparison there, newest first.
func WriteIndex(reportsDir string) error {
	ents, err := os.ReadDir(reportsDir)
	if err != nil {
		return fmt.Errorf("report: index: %w", err)
	}
	var runs, cmps []indexEntry
	for _, de := range ents {
		n := de.Name()
		if de.IsDir() || !strings.HasSuffix(n, ".html") || n == "index.html" {
			continue
		}
		e := readEntry(filepath.Join(reportsDir, n))
		if e.Kind == "comparison" {
			cmps = append(cmps, e)
		} else {
			runs = append(runs, e)
		}
	}
	newest := func(a, b indexEntry) int {
		if c := b.Date.Compare(a.Date); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	}
	slices.SortFunc(runs, newest)
	slices.SortFunc(cmps, newest)
	var b bytes.Buffer
	err = templates.ExecuteTemplate(&b, "index.html", map[string]any{
		"Title": "Reports", "Font": fontCSS(), "Runs": runs, "Comparisons": cmps,
	})
	if err != nil {
		return fmt.Errorf("report: index: %w", err)
	}
	return runstore.WriteFileAtomic(filepath.Join(reportsDir, "index.html"), b.Bytes())
}
