package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/academemes/harness/harness/internal/runstore"
)

// TestNebulaReplication is the replication end to end: the study's
// scenario, shortened with --set, runs the Rust builds against docker run
// --rm -i per request, and its report's Replication section, opened in
// headless Chromium, shows the study's published figures beside ours with
// intervals and ratios; harness compare prints the same section.
func TestNebulaReplication(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the replication scenario (-short)")
	}
	exe := chromiumPath(t)
	runs, reports := t.TempDir(), t.TempDir()
	code, out, errs := runCLI(t, "run", "../scenarios/nebula.yaml",
		"--set", "repeat=3", "--set", "idle=1s", "--set", "warmup=0s", "--set", "cooldown=0s",
		"--set", "load.sequential.duration=400ms", "--set", "checks=off", "--runs", runs, "--reports", reports)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	dirs, _ := filepath.Glob(filepath.Join(runs, "*-nebula"))
	html, _ := filepath.Glob(filepath.Join(reports, "*-nebula.html"))
	if len(dirs) != 1 || len(html) != 1 {
		t.Fatalf("run directories %v, reports %v", dirs, html)
	}
	run, err := runstore.Load(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	// run.json names every target's build and language, and how Docker
	// cold starts ran.
	dockerRan := false
	for _, tg := range run.Meta.Targets {
		switch {
		case tg.Kind == "wasm" && (tg.Variant != "rust" || tg.Language != "Rust"):
			t.Errorf("wasm target %s: build %q %q, want rust, Rust", tg.Name, tg.Variant, tg.Language)
		case tg.Kind == "docker-node" && (tg.Variant != "node" || tg.Language != "JavaScript"):
			t.Errorf("docker-node target %s: build %q %q, want node, JavaScript", tg.Name, tg.Variant, tg.Language)
		case tg.Kind == "docker-node" && !tg.Skipped:
			dockerRan = true
			if tg.Report["cold_start_method"] != "stdin" {
				t.Errorf("docker-node target %s: cold_start_method %v, want stdin", tg.Name, tg.Report["cold_start_method"])
			}
		}
	}
	if !dockerRan {
		msg := "the docker-node targets were skipped (no Docker Engine?): only the Wasm side is checked"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true needs this: " + msg)
		}
		t.Log(msg)
	}

	// harness compare prints the section too.
	code, cout, cerr := runCLI(t, "compare", dirs[0], "--reports", reports)
	if code != exitOK || !strings.Contains(cout, "Replication of the original study") || !strings.Contains(cout, "Docker 324.66 ms  Wasm 0.89 ms  Docker/Wasm 365×") {
		t.Errorf("harness compare: exit %d\n%s%s", code, cout, cerr)
	}

	type row struct {
		Metric string   `json:"metric"`
		Ours   bool     `json:"ours"`
		Cells  []string `json:"cells"`
	}
	type section struct {
		Visible bool   `json:"visible"`
		Heading string `json:"heading"`
		Text    string `json:"text"`
		W       float64
		Rows    []row `json:"rows"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
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
				problems = append(problems, fmt.Sprintf("%s: %s", m.Type, m.Text))
				mu.Unlock()
			}
		}
	}()
	abs, _ := filepath.Abs(html[0])
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate("file://"+abs), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		t.Fatal(err)
	}
	sec, err := chromedp.Run(bctx, chromedp.Evaluate[*section](`(() => {
		const s = document.getElementById('study-replication');
		if (!s) return null;
		s.scrollIntoView();
		const st = getComputedStyle(s), r = s.getBoundingClientRect();
		return {visible: st.display !== 'none' && st.visibility === 'visible' && r.height > 100, W: r.width,
			heading: s.querySelector('h2').innerText, text: s.innerText,
			rows: Array.from(s.querySelectorAll('#replication-table tbody tr')).map(tr => ({
				metric: tr.dataset.metric, ours: tr.classList.contains('ours'),
				cells: Array.from(tr.querySelectorAll('td:not([rowspan])')).map(td => td.innerText.trim())}))};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if sec == nil {
		t.Fatal("the report has no Replication section")
	}
	if !sec.Visible || sec.W < 600 || sec.Heading != "Replication of the original study" {
		t.Errorf("section not shown: visible %v, width %v, heading %q", sec.Visible, sec.W, sec.Heading)
	}
	for _, want := range []string{"Gude", "wasmtime 17", "cold_start_method stdin", "idle baseline", run.Meta.Host.Hostname} {
		if !strings.Contains(sec.Text, want) {
			t.Errorf("the section does not say %q", want)
		}
	}
	number := regexp.MustCompile(`^[0-9.]+ (ms|µWh|W|[mµ]?J)( \[.+\])?$`)
	withInterval := regexp.MustCompile(`\[[-0-9.]+( [mµ]?J)?, [-0-9.]+( [mµ]?J)?\]$`)
	var study, ours int
	for _, r := range sec.Rows {
		// The cells after the metric's (written once per metric): machine,
		// Docker, Wasm, Docker/Wasm, ours/this; or machine, the device's
		// figure, ours/this.
		if len(r.Cells) < 3 {
			t.Errorf("row %+v has too few cells", r)
			continue
		}
		if !r.Ours {
			study++
			if r.Metric == "cold_start" && strings.Contains(r.Cells[0], "1-vCPU") &&
				(r.Cells[1] != "324.66 ms" || r.Cells[2] != "0.89 ms" || r.Cells[3] != "365×") {
				t.Errorf("the study's VM cold start row: %q", r.Cells)
			}
			continue
		}
		ours++
		if !strings.Contains(r.Cells[0], run.Meta.Host.Hostname) {
			t.Errorf("our %s row does not name our machine: %q", r.Metric, r.Cells[0])
		}
		switch r.Metric {
		case "cold_start", "total_latency", "energy_per_request":
			docker, wasm, ratio := r.Cells[1], r.Cells[2], r.Cells[3]
			if !number.MatchString(wasm) || !withInterval.MatchString(wasm) {
				t.Errorf("our Wasm %s is %q, want a figure with its interval", r.Metric, wasm)
			}
			if dockerRan && (!number.MatchString(docker) || !withInterval.MatchString(docker) || !strings.Contains(ratio, "×")) {
				t.Errorf("our Docker %s is %q (ratio %q), want a figure with its interval and a ratio", r.Metric, docker, ratio)
			}
		case "idle_power":
			if !strings.HasSuffix(r.Cells[1], "(whole device)") || !withInterval.MatchString(strings.TrimSuffix(r.Cells[1], " (whole device)")) {
				t.Errorf("our idle power is %q", r.Cells[1])
			}
		}
	}
	if study < 4 || ours != 5 {
		t.Errorf("%d study rows and %d of ours, want at least 4 and 5:\n%+v", study, ours, sec.Rows)
	}
	if png, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.CSS("#study-replication"))); err == nil {
		dir := os.Getenv("HARNESS_TEST_ARTEFACTS")
		if dir == "" {
			dir = "testdata-out"
		}
		if os.MkdirAll(dir, 0o755) == nil && os.WriteFile(filepath.Join(dir, "nebula-replication.png"), png, 0o644) == nil {
			t.Logf("screenshot: %s", filepath.Join(dir, "nebula-replication.png"))
		}
	}
	chromedp.Do(bctx, chromedp.Sleep(200*time.Millisecond))
	lcancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the page logged problems:\n%s", strings.Join(problems, "\n"))
	}
	if b, err := json.Marshal(sec.Rows); err == nil {
		t.Logf("replication rows: %s", b)
	}
}

// chromiumPath finds a Chromium to drive, or skips the test (fails it in
// CI, where .ci/run installs Debian's chromium).
func chromiumPath(t *testing.T) string {
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
