package wasm

import (
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// Linear memory (RATIONALE.md, "Instance memory is the platform's").
//
// wazero keeps a guest's memory in a Go slice that grows by copying, so a
// memory bomb under a 128 MiB limit leaves ~400 MB of garbage that Go
// returns to the system only slowly (eight at once: 2 GB, still 1.8 GB
// 20 s later). Purify gives wazero its own allocator instead: each
// instance's memory is a reservation of address space as large as the
// function's limit, of which only the pages the guest has grown to are
// usable (and resident once touched); growth never copies, and closing the
// instance hands the pages back to the system at once. Every instance's
// usable size counts against one platform-wide budget: a growth past it
// fails as memory.grow fails at the function's own limit (the guest sees
// -1; most runtimes then stop with "out of memory"), and a new instance
// that would not fit is not made.

// memBudget counts the bytes of linear memory committed by every instance
// of a platform against a bound.
type memBudget struct {
	max        int64
	used, peak atomic.Int64
}

// take counts n more bytes if they fit; force counts them even if not (an
// instance's initial memory, whose room instantiate checked beforehand:
// wazero cannot take a refusal there).
func (b *memBudget) take(n int64, force bool) bool {
	for {
		u := b.used.Load()
		if !force && u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			for p := b.peak.Load(); u+n > p && !b.peak.CompareAndSwap(p, u+n); p = b.peak.Load() {
			}
			return true
		}
	}
}

func (b *memBudget) give(n int64) { b.used.Add(-n) }

// room reports whether n more bytes fit now.
func (b *memBudget) room(n int64) bool { return b.used.Load()+n <= b.max }

// linearMemory is an instance's memory as the platform makes it.
type linearMemory interface {
	experimental.LinearMemory
	// refused reports whether the budget refused a growth.
	refused() bool
}

// newMemory makes one instance's linear memory of at most max bytes,
// counted against b.
func (b *memBudget) newMemory(max uint64) linearMemory {
	if m := newReservedMemory(b, max); m != nil {
		return m
	}
	return &sliceMemory{budget: b, max: max}
}

// sliceMemory is linear memory in a Go slice, where address space cannot
// be reserved: it grows by copying, and is counted like the rest.
type sliceMemory struct {
	budget *memBudget
	buf    []byte
	max    uint64
	grown  bool // past the initial allocation

	refusedGrow bool
}

func (m *sliceMemory) refused() bool { return m.refusedGrow }

func (m *sliceMemory) Reallocate(size uint64) []byte {
	cur := uint64(len(m.buf))
	if size > m.max {
		return nil
	}
	initial := !m.grown
	m.grown = true
	if size > cur && !m.budget.take(int64(size-cur), initial) {
		m.refusedGrow = true
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	nb := make([]byte, size, min(max(size, 2*uint64(cap(m.buf))), m.max))
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

func (m *sliceMemory) Free() {
	m.budget.give(int64(len(m.buf)))
	m.buf = nil
}

// refusedMemory is a memory that could not be made: wazero then fails the
// instantiation (it panics on the nil buffer, which instantiate recovers).
type refusedMemory struct{}

func (refusedMemory) Reallocate(uint64) []byte { return nil }
func (refusedMemory) Free()                    {}
func (refusedMemory) refused() bool            { return true }
