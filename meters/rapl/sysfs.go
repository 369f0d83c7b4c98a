package rapl

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// source reads the raw counters of every channel at once.
type source interface {
	// Read fills dst[i] with channel i's raw counter.
	Read(dst []uint64) error
	Close() error
}

// openFunc opens a counter file. Production code uses os.Open; tests that
// run as root (who reads any file) pass one that refuses as an unprivileged
// user would.
type openFunc func(path string) (*os.File, error)

// sysfsSource reads energy_uj of each zone. It keeps every file open and
// reads it again from offset 0: sysfs regenerates an attribute's content on
// a read at offset 0, and one pread is far cheaper than open, read, close.
type sysfsSource struct {
	files []*os.File
	buf   [32]byte
}

func openSysfs(zones []Zone, open openFunc) (*sysfsSource, error) {
	s := &sysfsSource{}
	for _, z := range zones {
		p := filepath.Join(z.Path, "energy_uj")
		f, err := open(p)
		if err == nil {
			// A file can open and still refuse the read.
			_, err = f.ReadAt(s.buf[:], 0)
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if err != nil {
				f.Close()
			}
		}
		if err != nil {
			s.Close()
			return nil, counterError(p, err)
		}
		s.files = append(s.files, f)
	}
	return s, nil
}

// counterError maps a failure to read energy_uj to the sentinel callers
// branch on, with how to grant access when it is a refusal.
func counterError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: rapl: %s: %w\n%s", errPermission, path, err, GrantHelp)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: rapl: %s: %w", errUnavailable, path, err)
	}
	return fmt.Errorf("rapl: reading %s: %w", path, err)
}

// GrantHelp says how to make energy_uj readable. Since Linux 5.10 it is
// readable by root only (PLATYPUS, CVE-2020-8694: fine-grained energy
// readings leak secrets through a power side channel).
const GrantHelp = `energy_uj is readable by root only since Linux 5.10 (CVE-2020-8694). To measure as this user, either
  - until the next boot:  sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj /sys/class/powercap/intel-rapl:*:*/energy_uj
  - for good, a udev rule in /etc/udev/rules.d/99-powercap.rules:
      ACTION=="add", SUBSYSTEM=="powercap", KERNEL=="intel-rapl:*", RUN+="/bin/chmod o+r /sys%p/energy_uj"
    then: sudo udevadm trigger --subsystem-match=powercap --action=add
  - or run the harness as root,
  - or use the perf backend (rapl:backend=perf) with: sudo sysctl kernel.perf_event_paranoid=0
Granting read access lets every local user watch the CPU's power, which is the side channel the kernel closed; do it on a measurement machine, not a shared one.`

// Read implements source.
func (s *sysfsSource) Read(dst []uint64) error {
	for i, f := range s.files {
		n, err := f.ReadAt(s.buf[:], 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return counterError(f.Name(), err)
		}
		v, ok := parseCounter(s.buf[:n])
		if !ok {
			return fmt.Errorf("rapl: %s: %q is not a counter", f.Name(), s.buf[:n])
		}
		dst[i] = v
	}
	return nil
}

// Close implements source.
func (s *sysfsSource) Close() error {
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	s.files = nil
	return errors.Join(errs...)
}

// parseCounter parses energy_uj's content: decimal digits and a newline.
// It does not allocate, unlike strconv on a string made of the bytes, since
// it runs for every zone at up to 1 kHz.
func parseCounter(b []byte) (uint64, bool) {
	var v uint64
	digits := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if v > (1<<64-1-9)/10 {
				return 0, false // would overflow
			}
			v = v*10 + uint64(c-'0')
			digits++
		case c == '\n' || c == ' ' || c == 0:
			if digits > 0 {
				return v, true
			}
		default:
			return 0, false
		}
	}
	return v, digits > 0
}

// delta is the counter's advance from prev to cur. A counter that is lower
// than before wrapped once at max (the zone's max_energy_range_uj):
// delta = (max - prev) + cur. ok is false when it went backwards and no max
// is known (or the values make no sense for max), so the interval has no
// figure.
func delta(prev, cur, max uint64) (d uint64, ok bool) {
	if cur >= prev {
		return cur - prev, true
	}
	if max == 0 || prev > max {
		return 0, false
	}
	return (max - prev) + cur, true
}
