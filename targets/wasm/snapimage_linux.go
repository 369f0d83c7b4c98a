package wasm

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// memImage is a snapshot's memory in a sealed memfd, which each restored
// instance maps privately: its pages are shared until the instance writes
// one, which then gets a copy of its own (copy-on-write), so making an
// instance costs a mapping, not a copy of the heap.
type memImage struct {
	fd   int
	size uint64 // bytes, whole 64 KiB pages
	// view is the image mapped read-only, to copy pages back from when
	// an instance is reset.
	view []byte
}

// newMemImage puts image into a memfd. Only its non-zero runs are written:
// the rest stays a hole, which reads as zeros and takes no memory.
func newMemImage(name string, image []byte) (*memImage, error) {
	if len(image)%65536 != 0 {
		return nil, fmt.Errorf("memory image of %d bytes is not whole 64 KiB pages", len(image))
	}
	fd, err := unix.MemfdCreate("purify-snapshot-"+name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	m := &memImage{fd: fd, size: uint64(len(image))}
	fail := func(what string, err error) (*memImage, error) {
		m.close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.Ftruncate(fd, int64(len(image))); err != nil {
		return fail("ftruncate memfd", err)
	}
	for _, r := range nonZeroRuns(image, 4096) {
		for off := r[0]; off < r[1]; {
			n, err := unix.Pwrite(fd, image[off:r[1]], int64(off))
			if err != nil {
				return fail("write memfd", err)
			}
			off += n
		}
	}
	// Sealed, the image cannot change under the instances mapping it.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		return fail("seal memfd", err)
	}
	view, err := unix.Mmap(fd, 0, len(image), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fail("map memfd", err)
	}
	m.view = view
	return m, nil
}

// newMemory makes an instance's linear memory of at most max bytes whose
// first m.size bytes are a private mapping of the image: a reservation as
// reservedMemory makes, with the image mapped over its start.
func (m *memImage) newMemory(b *memBudget, max uint64) linearMemory {
	r := newReservedMemory(b, max)
	if r == nil || max < m.size {
		return refusedMemory{}
	}
	if _, err := unix.MmapPtr(m.fd, 0, unsafe.Pointer(unsafe.SliceData(r.region)), uintptr(m.size),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED); err != nil {
		r.Free()
		return refusedMemory{}
	}
	return r
}

func (m *memImage) close() {
	if m.view != nil {
		unix.Munmap(m.view)
	}
	unix.Close(m.fd)
}

// pagemap is /proc/self/pagemap, opened once: one 64-bit entry per page of
// the process's address space (Documentation/admin-guide/mm/pagemap.rst).
var pagemap = sync.OnceValues(func() (*os.File, error) { return os.Open("/proc/self/pagemap") })

// Bits of a pagemap entry. A page of a private file mapping that the
// process wrote is an anonymous copy (present, not file-backed); one it
// only read, or never touched, still shows the file.
const (
	pmPresent = 1 << 63
	pmSwapped = 1 << 62
	pmFile    = 1 << 61
)

// resettable reports why instances of this image cannot be reset in place
// ("" if they can): the kernel must tell which pages a process wrote.
func (m *memImage) resettable() string {
	f, err := pagemap()
	if err != nil {
		return fmt.Sprintf("cannot read which pages an instance wrote: %v", err)
	}
	probe := make([]byte, 8)
	if _, err := f.ReadAt(probe, int64(uintptr(unsafe.Pointer(unsafe.SliceData(m.view)))/uintptr(os.Getpagesize())*8)); err != nil {
		return fmt.Sprintf("cannot read which pages an instance wrote: /proc/self/pagemap: %v", err)
	}
	return ""
}

// reset puts mem (an instance's memory made by newMemory, still of the
// image's size) back to the image: every page the instance wrote, and
// so holds a private copy of, gets the image's bytes again. Copying
// rather than dropping the copies (madvise) keeps the pages mapped: the
// next request writes them without a page fault, which on a virtual
// machine cost more than the whole reset (RATIONALE.md, "Snapshot
// starts"). It returns how many pages it copied.
func (m *memImage) reset(mem []byte, entries []byte) (int, []byte, error) {
	f, err := pagemap()
	if err != nil {
		return 0, entries, err
	}
	ps := os.Getpagesize()
	n := int(m.size) / ps
	if cap(entries) < n*8 {
		entries = make([]byte, n*8)
	}
	entries = entries[:n*8]
	if _, err := f.ReadAt(entries, int64(uintptr(unsafe.Pointer(unsafe.SliceData(mem)))/uintptr(ps)*8)); err != nil {
		return 0, entries, fmt.Errorf("pagemap: %w", err)
	}
	copied := 0
	for i := range n {
		e := binary.LittleEndian.Uint64(entries[i*8:])
		if e&pmSwapped != 0 || e&pmPresent != 0 && e&pmFile == 0 {
			copy(mem[i*ps:(i+1)*ps], m.view[i*ps:])
			copied++
		}
	}
	return copied, entries, nil
}
