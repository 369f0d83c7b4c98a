//go:build unix

package wasm

import (
	"syscall"
)

// reservedMemory is linear memory in a reservation of address space
// (mmap with no access) as large as the function's limit; growing makes
// more of it readable and writable in place, and Free unmaps it, which
// returns the pages to the system at once.
type reservedMemory struct {
	budget *memBudget
	region []byte // the whole reservation
	size   uint64 // the usable part
	grown  bool   // past the initial allocation

	refusedGrow bool
}

func (m *reservedMemory) refused() bool { return m.refusedGrow }

// newReservedMemory reserves max bytes, or returns nil where that fails
// (the caller then falls back to a slice).
func newReservedMemory(b *memBudget, max uint64) *reservedMemory {
	if max == 0 || max > 1<<32 {
		return nil
	}
	region, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	return &reservedMemory{budget: b, region: region}
}

func (m *reservedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.region)) {
		return nil
	}
	initial := !m.grown
	m.grown = true
	if size > m.size {
		// wazero asks for whole 64 KiB pages, so m.size is page-aligned.
		if !m.budget.take(int64(size-m.size), initial) {
			m.refusedGrow = true
			return nil
		}
		if err := syscall.Mprotect(m.region[m.size:size], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
			m.budget.give(int64(size - m.size))
			return nil
		}
		m.size = size
	}
	return m.region[:size:size]
}

func (m *reservedMemory) Free() {
	if m.region == nil {
		return
	}
	syscall.Munmap(m.region)
	m.budget.give(int64(m.size))
	m.region, m.size = nil, 0
}
