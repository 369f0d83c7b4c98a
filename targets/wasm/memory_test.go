package wasm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"unsafe"

	"github.com/academemes/harness/targets/option"
)

const page = 64 << 10

// An instance's memory grows in place, is refused past the budget (and
// says so), and gives everything back when freed.
func TestLinearMemoryBudget(t *testing.T) {
	b := &memBudget{max: 4 * page}
	m := b.newMemory(16 * page)
	buf := m.Reallocate(page)
	if len(buf) != page || b.used.Load() != page {
		t.Fatalf("initial: %d bytes, %d counted", len(buf), b.used.Load())
	}
	buf[page-1] = 42
	grown := m.Reallocate(3 * page)
	if len(grown) != 3*page || grown[page-1] != 42 || b.used.Load() != 3*page {
		t.Fatalf("grown: %d bytes, kept %d, %d counted", len(grown), grown[page-1], b.used.Load())
	}
	if _, reserved := m.(*reservedMemory); reserved && unsafe.SliceData(grown) != unsafe.SliceData(buf) {
		t.Error("a reserved memory moved when it grew")
	}
	grown[3*page-1] = 7 // the new pages are writable
	if m.refused() {
		t.Error("refused before the bound")
	}
	if m.Reallocate(5*page) != nil || !m.refused() || b.used.Load() != 3*page {
		t.Fatalf("past the bound: refused %v, %d counted", m.refused(), b.used.Load())
	}
	if m.Reallocate(17*page) != nil {
		t.Error("grew past its own maximum")
	}
	m.Free()
	if b.used.Load() != 0 || b.peak.Load() != 3*page {
		t.Errorf("after Free: %d counted, peak %d", b.used.Load(), b.peak.Load())
	}
}

// Memory bombs under a platform bound: each stops at its own limit or at
// the platform's, the committed total never passes the bound (by more than
// the initial pages that are counted without refusal), and all of it is
// handed back when the calls end (before: one bomb under a 128 MiB limit
// added ~400 MB of resident memory, eight reached 2 GB and held 1.8 GB
// 20 s later).
func TestMemoryBombsStayInBound(t *testing.T) {
	const bound = 64 << 20
	p, srv, _ := newTestPlatform(t, Options{MaxMemoryBytes: bound})
	if err := p.Deploy(context.Background(), "bomb", module(t, "bomb"), FunctionConfig{MemoryPages: 512}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := do(t, "POST", srv.URL+"/fn/bomb", "")
			if fault := resp.Header.Get("X-Purify-Fault"); !(resp.StatusCode == 502 && fault == "memory" || resp.StatusCode == 503 && (fault == "memory" || fault == "busy")) {
				t.Errorf("a bomb: %d %q %s", resp.StatusCode, fault, body)
			}
		}()
	}
	wg.Wait()
	st := p.Memory()
	if st.PeakBytes > bound+6*page || st.PeakBytes < 30<<20 { // a bomb stops within 16 pages of its 512
		t.Errorf("peak %d MiB committed under a bound of %d MiB", st.PeakBytes>>20, bound>>20)
	}
	if st.CommittedBytes != 0 {
		t.Errorf("%d bytes still committed after every call ended", st.CommittedBytes)
	}
}

// A function whose own limit exceeds the platform's bound is refused at
// deploy, naming memory_pages.
func TestDeployOverMemoryBound(t *testing.T) {
	p, _, _ := newTestPlatform(t, Options{MaxMemoryBytes: 64 << 20})
	err := p.Deploy(context.Background(), "echo", module(t, "echo"), FunctionConfig{MemoryPages: 2048})
	var oe *option.Error
	if !errors.As(err, &oe) || oe.Key != "memory_pages" {
		t.Fatalf("Deploy = %v, want an error for memory_pages", err)
	}
}

// An instance whose initial memory does not fit is not made: the request
// gets 503, and succeeds again once memory is handed back.
func TestNoRoomForAnInstance(t *testing.T) {
	held := newHeldSleep()
	p, srv, _ := newTestPlatform(t, Options{MaxMemoryBytes: page, Sleep: held.sleep})
	if err := p.Deploy(context.Background(), "s", module(t, "sleep"), FunctionConfig{Impure: true, MemoryPages: 1}); err != nil {
		t.Fatal(err)
	}
	first := invokeAsync(t, srv.URL, "s", "")
	hangGuard(t, held.asleep, "the first request never reached its sleep")
	resp, body := do(t, "POST", srv.URL+"/fn/s", "")
	if resp.StatusCode != 503 || resp.Header.Get("X-Purify-Fault") != "busy" {
		t.Errorf("with the bound taken: %d %s, want 503 busy", resp.StatusCode, body)
	}
	close(held.release)
	if r := hangGuard(t, first, "the first request never ended"); r.status != 200 {
		t.Errorf("first request: %d %s", r.status, r.body)
	}
	if resp, body := do(t, "POST", srv.URL+"/fn/s", ""); resp.StatusCode != 200 || body != "awake" {
		t.Errorf("after the memory came back: %d %q", resp.StatusCode, body)
	}
}
