package report

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/academemes/harness/harness/internal/energy/synth"
	"github.com/academemes/harness/harness/internal/runstore"
)

// chromium finds a Chromium to drive, or skips the test (fails it in CI,
// where .ci/run installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH: install it with `apt-get install -y chromium fonts-liberation` to run the browser test"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artefactDir is where screenshots go: testdata-out/ beside this file
// (git-ignored), or $HARNESS_TEST_ARTEFACTS.
func artefactDir(t *testing.T) string {
	dir := os.Getenv("HARNESS_TEST_ARTEFACTS")
	if dir == "" {
		dir = "testdata-out"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowser opens a run report and a comparison in headless Chromium
// and checks that every plot renders with its text in the embedded font,
// and that nothing is logged as an error (no script errors, no blocked
// network loads). It keeps full-page screenshots as test artefacts.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	reports := filepath.Join(dir, "reports")
	rd1 := demoRun(t, dir, 1, nil)
	res, err := Generate(rd1, reports)
	if err != nil {
		t.Fatal(err)
	}
	rd2 := demoRun(t, dir, 2, func(c *synth.Config) { c.Start = time.Date(2026, 1, 2, 4, 4, 5, 0, time.UTC) })
	var runs []*Analysed
	for _, rd := range []string{rd1, rd2} {
		a, err := LoadAnalysed(rd)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, a)
	}
	cmpPath, err := WriteComparison(reports, Compare("Comparison of coldstart", Pairs(runs), Options{}))
	if err != nil {
		t.Fatal(err)
	}
	// A run whose validity checks failed: its page must show the banner.
	invalid := demoRun(t, dir, 3, func(c *synth.Config) { c.Start = time.Date(2026, 1, 2, 5, 4, 5, 0, time.UTC) })
	meta, err := runstore.Load(invalid)
	if err != nil {
		t.Fatal(err)
	}
	meta.Meta.Validity = invalidProblems()
	if err := runstore.WriteJSON(filepath.Join(invalid, runstore.RunFile), meta.Meta); err != nil {
		t.Fatal(err)
	}
	bad, err := Generate(invalid, reports)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	pages := []struct {
		name, path string
		minSVG     int
		banner     bool
	}{
		{"report", res.HTMLPath, 8, false},
		{"invalid report", bad.HTMLPath, 8, true},
		{"comparison", cmpPath, 0, false},
		{"index", filepath.Join(reports, "index.html"), 0, false},
	}
	out := artefactDir(t)
	for _, pg := range pages {
		t.Run(pg.name, func(t *testing.T) {
			// Subscribe to the console before loading, so nothing is missed.
			lctx, lcancel := context.WithCancel(bctx)
			var mu sync.Mutex
			var problems []string
			done := make(chan struct{})
			go func() {
				defer close(done)
				for m, err := range chromedp.Console(lctx) {
					if err != nil {
						return
					}
					if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleWarning {
						mu.Lock()
						problems = append(problems, fmt.Sprintf("%s: %s (%s)", m.Type, m.Text, m.URL))
						mu.Unlock()
					}
				}
			}()
			abs, _ := filepath.Abs(pg.path)
			err := chromedp.Do(bctx,
				chromedp.EmulateViewport(1280, 900),
				chromedp.Navigate("file://"+abs),
				chromedp.WaitReady(chromedp.CSS("body")),
			)
			if err != nil {
				lcancel()
				t.Fatal(err)
			}
			fontOK, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.fonts.ready.then(() => document.fonts.check('12px "Liberation Sans"'))`, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			if !fontOK {
				t.Error("the embedded Liberation Sans is not available to the page")
			}
			// Each plot: an SVG with a real size and text drawn in it.
			type svgInfo struct {
				ID     string  `json:"id"`
				W      float64 `json:"w"`
				H      float64 `json:"h"`
				Texts  int     `json:"texts"`
				Shapes int     `json:"shapes"`
			}
			svgs, err := chromedp.Run(bctx, chromedp.Evaluate[[]svgInfo](`Array.from(document.querySelectorAll('figure svg')).map(s => {
				const r = s.getBoundingClientRect();
				return {id: s.closest('figure').id, w: r.width, h: r.height,
					texts: s.querySelectorAll('text').length, shapes: s.querySelectorAll('path').length};
			})`))
			if err != nil {
				t.Fatal(err)
			}
			if len(svgs) < pg.minSVG {
				t.Errorf("%d plots, want at least %d", len(svgs), pg.minSVG)
			}
			for _, s := range svgs {
				if s.W < 100 || s.H < 50 || s.Texts == 0 || s.Shapes == 0 {
					t.Errorf("plot %s did not render: %+v", s.ID, s)
				}
			}
			// The validity banner: there, visible in the first screen,
			// red, and naming each problem; absent where there is none.
			type bannerInfo struct {
				Top, W, H float64
				Visible   bool
				BG, Text  string
			}
			bn, err := chromedp.Run(bctx, chromedp.Evaluate[*bannerInfo](`(() => {
				const b = document.getElementById('validity-banner');
				if (!b) return null;
				const r = b.getBoundingClientRect(), st = getComputedStyle(b);
				return {Top: r.top, W: r.width, H: r.height, BG: st.backgroundColor, Text: b.innerText,
					Visible: st.visibility === 'visible' && st.display !== 'none' && +st.opacity > 0};
			})()`))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case !pg.banner && bn != nil:
				t.Errorf("a banner on a page without problems: %+v", *bn)
			case pg.banner && bn == nil:
				t.Error("no validity banner")
			case pg.banner:
				if !bn.Visible || bn.Top < 0 || bn.Top+bn.H > 900 || bn.W < 600 || bn.H < 40 {
					t.Errorf("banner not visible in the first screen: %+v", *bn)
				}
				if bn.BG != "rgb(253, 232, 232)" {
					t.Errorf("banner background %s, want the red tint", bn.BG)
				}
				for _, p := range invalidProblems().Problems {
					if !strings.Contains(bn.Text, p.Message) {
						t.Errorf("banner does not name %q:\n%s", p.Message, bn.Text)
					}
				}
			}
			png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			shot := filepath.Join(out, "browser-"+slug(pg.name)+".png")
			if err := os.WriteFile(shot, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", shot)
			// Close-ups of the top of the page and the first plot.
			for _, sel := range []string{"table", "figure"} {
				if pg.minSVG == 0 && sel == "figure" {
					continue
				}
				img, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.CSS(sel)))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(out, "browser-"+slug(pg.name)+"-"+sel+".png"), img, 0o644)
			}
			// Let late messages arrive, then stop listening.
			chromedp.Do(bctx, chromedp.Sleep(200*time.Millisecond))
			lcancel()
			<-done
			mu.Lock()
			defer mu.Unlock()
			if len(problems) > 0 {
				t.Errorf("the page logged problems:\n%s", strings.Join(problems, "\n"))
			}
		})
	}
}
