package wasm

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
)

// restores are the ways of restoring a snapshot this machine has, the
// default first.
func restores() []string {
	if runtime.GOOS != "linux" {
		return []string{RestoreSegments}
	}
	if why, err := instanceStateOutsideMemory(counterModule); why != "" || err != nil {
		return []string{RestoreCOW, RestoreSegments}
	}
	return []string{RestoreReset, RestoreCOW, RestoreSegments}
}

var counterModule, _ = os.ReadFile("testdata/counter.wasm")

// TestSnapshotPristine is the purity proof of snapshot mode: counter's
// _initialize counts once, its handler counts once more and prints both
// counters (one in memory, one a mutable global). Every request in
// snapshot mode, one after another and sixteen at once, must print the
// values _initialize left plus one; in warm mode they count up.
func TestSnapshotPristine(t *testing.T) {
	p, srv, _ := newTestPlatform(t, Options{})
	ctx := context.Background()
	const want = "memory=42 global=1001 random=0 clock=1000000\n"
	for _, restore := range restores() {
		t.Run(restore, func(t *testing.T) {
			name := "counter-" + restore
			if err := p.Deploy(ctx, name, module(t, "counter"), FunctionConfig{Mode: targets.Snapshot, Restore: restore}); err != nil {
				t.Fatal(err)
			}
			url := srv.URL + "/fn/" + name
			for i := range 5 {
				resp, body := do(t, http.MethodPost, url, "")
				if resp.StatusCode != 200 || body != want {
					t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, body, want)
				}
				if resp.Header.Get(targets.HeaderColdStart) != "1" {
					t.Errorf("request %d: %s = %q, want 1 (a fresh instance)", i, targets.HeaderColdStart, resp.Header.Get(targets.HeaderColdStart))
				}
				if ns, err := strconv.ParseInt(resp.Header.Get(targets.HeaderStartNs), 10, 64); err != nil || ns <= 0 {
					t.Errorf("request %d: %s = %q, want the restore's nanoseconds", i, targets.HeaderStartNs, resp.Header.Get(targets.HeaderStartNs))
				}
			}
			var wg sync.WaitGroup
			bodies := make([]string, 16)
			for i := range bodies {
				wg.Go(func() {
					resp, body := do(t, http.MethodPost, url, "")
					bodies[i] = strconv.Itoa(resp.StatusCode) + " " + body
				})
			}
			wg.Wait()
			for i, b := range bodies {
				if b != "200 "+want {
					t.Errorf("concurrent request %d: %q, want 200 %q", i, b, want)
				}
			}
			info, err := p.Function(name)
			if err != nil {
				t.Fatal(err)
			}
			s := info.Snapshot
			if s == nil {
				t.Fatal("GET /functions: no snapshot described")
			}
			if s.Restore != restore || !s.Initialized || s.Globals < 2 || s.MemoryBytes != 65536 || s.DataBytes == 0 {
				t.Errorf("snapshot = %+v, want restore %s, initialized, 2 or more globals, 64 KiB of memory with data", *s, restore)
			}
			if !slices.Equal(s.Frozen, []string{"clock", "random"}) {
				t.Errorf("frozen = %q, want [clock random]", s.Frozen)
			}
			if info.Cold != 21 {
				t.Errorf("cold starts = %d, want 21 (every request)", info.Cold)
			}
			// Reset in place keeps the instances it made; the other ways
			// keep none.
			if kept := info.Ready; (restore == RestoreReset) != (kept > 0) || kept > 16 {
				t.Errorf("restore %s: %d instances kept", restore, kept)
			}
		})
	}
	t.Run("warm counts up", func(t *testing.T) {
		if err := p.Deploy(ctx, "counter-warm", module(t, "counter"), FunctionConfig{Mode: targets.Warm}); err != nil {
			t.Fatal(err)
		}
		waitReady(t, p, "counter-warm", targets.Warm)
		for i := range 3 {
			_, body := do(t, http.MethodPost, srv.URL+"/fn/counter-warm", "")
			w := sprintf("memory=%d global=%d random=0 clock=%d\n", 42+i, 1001+i, (i+1)*1000000)
			if body != w {
				t.Fatalf("request %d: %q, want %q", i, body, w)
			}
		}
	})
}

// TestSnapshotFaults: a trap or a timeout in one request leaves the next a
// pristine instance, and a function scaled to zero keeps its snapshot.
func TestSnapshotFaults(t *testing.T) {
	p, srv, _ := newTestPlatform(t, Options{})
	ctx := context.Background()
	const want = "memory=42 global=1001 random=0 clock=1000000\n"
	for _, restore := range restores() {
		t.Run(restore, func(t *testing.T) {
			name := "counter-" + restore
			cfg := FunctionConfig{Mode: targets.Snapshot, Restore: restore, Timeout: Duration(100 * time.Millisecond)}
			if err := p.Deploy(ctx, name, module(t, "counter"), cfg); err != nil {
				t.Fatal(err)
			}
			url := srv.URL + "/fn/" + name
			taken := mustFunction(t, p, name).Snapshot.TakeNs
			for _, c := range []struct {
				body   string
				status int
			}{{"t", 502}, {"", 200}, {"loop", 504}, {"", 200}, {"t", 502}, {"grow", 200}, {"", 200}, {"close", 200}, {"", 200}} {
				resp, body := do(t, http.MethodPost, url, c.body)
				if resp.StatusCode != c.status || c.status == 200 && body != want {
					t.Fatalf("body %q: %d %q, want %d (and %q)", c.body, resp.StatusCode, body, c.status, want)
				}
				// Only a clean request on an instance that can be reset
				// leaves one kept.
				kept := mustFunction(t, p, name).Ready
				if wantKept := restore == RestoreReset && (c.body == "" || c.body == "loop"); (kept == 1) != wantKept && c.body != "loop" {
					t.Errorf("after body %q: %d instances kept, want %v", c.body, kept, wantKept)
				}
			}
			if err := p.ScaleToZero(name); err != nil {
				t.Fatal(err)
			}
			if kept := mustFunction(t, p, name).Ready; kept != 0 {
				t.Errorf("scaled to zero: %d instances kept", kept)
			}
			if resp, body := do(t, http.MethodPost, url, ""); resp.StatusCode != 200 || body != want {
				t.Fatalf("after scale to zero: %d %q, want 200 %q", resp.StatusCode, body, want)
			}
			if info := mustFunction(t, p, name); info.Snapshot.TakeNs != taken || info.Faults != 3 || info.Ready > 1 {
				t.Errorf("after scale to zero: take_ns %d (was %d), faults %d; want the same snapshot and 3 faults", info.Snapshot.TakeNs, taken, info.Faults)
			}
		})
	}
}

func mustFunction(t *testing.T, p *Platform, name string) FunctionInfo {
	t.Helper()
	info, err := p.Function(name)
	if err != nil {
		t.Fatal(err)
	}
	if info.Snapshot == nil {
		t.Fatalf("%s: no snapshot", name)
	}
	return info
}

// TestSnapshotRefusals: modules snapshot mode cannot serve are refused at
// deploy, saying why.
func TestSnapshotRefusals(t *testing.T) {
	p, _, _ := newTestPlatform(t, Options{})
	for _, c := range []struct {
		module string
		cfg    FunctionConfig
		want   string
	}{
		{"trap", FunctionConfig{Mode: targets.Snapshot}, "mode snapshot needs an exported purify_handle"},
		{"initopen", FunctionConfig{Mode: targets.Snapshot}, `_initialize failed: the function tried to open the file "/etc/passwd"`},
		{"counter", FunctionConfig{Mode: targets.Warm, Restore: RestoreCOW}, "only mode snapshot restores"},
		{"counter", FunctionConfig{Mode: targets.Snapshot, Restore: "fork"}, "want reset, cow or segments"},
		{"counter", FunctionConfig{Mode: targets.Warm, Warmup: "{}"}, "only mode snapshot takes a snapshot"},
		{"counter", FunctionConfig{Mode: targets.Snapshot, Warmup: "t"}, "the warm-up request failed"},
	} {
		t.Run(c.module+"/"+c.want, func(t *testing.T) {
			err := p.Deploy(context.Background(), "f", module(t, c.module), c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("deploy: %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// TestSnapshotOverHTTP: a deploy with "mode": "snapshot" in its config
// header, and GET /functions/NAME saying how instances are restored.
func TestSnapshotOverHTTP(t *testing.T) {
	_, srv, _ := newTestPlatform(t, Options{})
	resp, body := do(t, http.MethodPut, srv.URL+"/functions/counter", string(module(t, "counter")),
		"Authorization", "Bearer s3cret", "X-Purify-Config", `{"mode":"snapshot"}`)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodGet, srv.URL+"/functions/counter", "", "Authorization", "Bearer s3cret")
	var info FunctionInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %d %s (%v)", resp.StatusCode, body, err)
	}
	if info.Snapshot == nil || info.Snapshot.Restore != restores()[0] || info.Config.Mode != targets.Snapshot {
		t.Fatalf("GET /functions/counter = %s, want mode snapshot restored by %s", body, restores()[0])
	}
}

// TestSnapshotWarmup: a post-warm-up snapshot holds what the warm-up
// request left (counter counts it once), the same for every request.
func TestSnapshotWarmup(t *testing.T) {
	p, srv, _ := newTestPlatform(t, Options{})
	if err := p.Deploy(context.Background(), "c", module(t, "counter"), FunctionConfig{Mode: targets.Snapshot, Warmup: "{}"}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		// The warm-up's own clock reading is in the snapshot too.
		const want = "memory=43 global=1002 random=0 clock=2000000\n"
		if resp, body := do(t, http.MethodPost, srv.URL+"/fn/c", ""); resp.StatusCode != 200 || body != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, body, want)
		}
	}
	if w := mustFunction(t, p, "c").Snapshot.Warmup; w != "{}" {
		t.Errorf("snapshot warmup = %q, want {}", w)
	}
}

// TestSnapshotDefaultRestore: on Linux every build here is reset in place
// by default; a module whose code writes its table is not, and says why.
func TestSnapshotDefaultRestore(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reset in place and copy-on-write need Linux; elsewhere snapshot mode restores from data segments")
	}
	p, _, _ := newTestPlatform(t, Options{Interpreter: true})
	ctx := context.Background()
	mods := map[string][]byte{"counter": module(t, "counter")}
	for _, v := range []string{functions.Reactor, "small", "rust"} {
		b, err := functions.Module(functions.FS(), "memes", v)
		if err != nil {
			t.Fatal(err)
		}
		mods["memes-"+v] = b
	}
	for name, b := range mods {
		if err := p.Deploy(ctx, name, b, FunctionConfig{Mode: targets.Snapshot}); err != nil {
			t.Fatal(err)
		}
		if s := mustFunction(t, p, name).Snapshot; s.Restore != RestoreReset || s.NotReset != "" {
			t.Errorf("%s: restore %s (%s), want reset", name, s.Restore, s.NotReset)
		}
	}
	if err := p.Deploy(ctx, "table", module(t, "snaptable"), FunctionConfig{Mode: targets.Snapshot}); err != nil {
		t.Fatal(err)
	}
	if s := mustFunction(t, p, "table").Snapshot; s.Restore != RestoreCOW || !strings.Contains(s.NotReset, "table.set in function 1") {
		t.Errorf("table-writing module: restore %s (%q), want cow because of its table.set", s.Restore, s.NotReset)
	}
	err := p.Deploy(ctx, "table2", module(t, "snaptable"), FunctionConfig{Mode: targets.Snapshot, Restore: RestoreReset})
	if err == nil || !strings.Contains(err.Error(), "restore reset: the code may change state a reset does not restore: table.set") {
		t.Errorf("restore reset of a table-writing module: %v, want refused", err)
	}
}
