package rapl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The perf backend reads the same RAPL counters through the kernel's
// "power" PMU (arch/x86/events/rapl.c): events power/energy-pkg/,
// energy-cores, energy-gpu, energy-ram, energy-psys. The kernel widens the
// 32-bit MSRs to 64 bits, so there is no wraparound to undo, and access is
// governed by perf_event_paranoid / CAP_PERFMON rather than file modes: it
// works where energy_uj is root-only but perf is allowed.

// perfDomains maps perf event names to powercap domains, so that both
// backends give the same channels.
var perfDomains = map[string]string{
	"energy-pkg":   "package",
	"energy-cores": "core",
	"energy-gpu":   "uncore",
	"energy-ram":   "dram",
	"energy-psys":  "psys",
}

// PerfEvent is one RAPL event of the power PMU, as sysfs describes it.
type PerfEvent struct {
	Name   string  // "energy-pkg"
	Domain string  // "package"
	Config uint64  // perf_event_attr.config
	Scale  float64 // joules per count (from the .scale file)
}

// PerfPMU is the power PMU: its type number, the CPUs to open events on
// (one per package), and its events.
type PerfPMU struct {
	Type    uint32
	CPUs    []int
	Sockets []int // physical package of each CPU in CPUs
	Events  []PerfEvent
}

// DiscoverPerf reads the power PMU's description under
// sysfsRoot/bus/event_source/devices/power. It opens nothing.
func DiscoverPerf(sysfsRoot string) (PerfPMU, error) {
	var pmu PerfPMU
	dir := filepath.Join(sysfsRoot, "bus", "event_source", "devices", "power")
	typ, err := readTrimmed(filepath.Join(dir, "type"))
	if err != nil {
		return pmu, fmt.Errorf("%w: rapl perf backend: no power PMU (%s): %w", errUnavailable, dir, err)
	}
	t, err := strconv.ParseUint(typ, 10, 32)
	if err != nil {
		return pmu, fmt.Errorf("rapl perf backend: %s/type: %w", dir, err)
	}
	pmu.Type = uint32(t)
	mask, err := readTrimmed(filepath.Join(dir, "cpumask"))
	if err != nil {
		return pmu, fmt.Errorf("rapl perf backend: %s/cpumask: %w", dir, err)
	}
	if pmu.CPUs, err = ParseCPUList(mask); err != nil {
		return pmu, fmt.Errorf("rapl perf backend: %s/cpumask: %w", dir, err)
	}
	for i, cpu := range pmu.CPUs {
		socket := i // fallback: the order of the mask
		if s, err := readTrimmed(filepath.Join(sysfsRoot, "devices", "system", "cpu", fmt.Sprintf("cpu%d", cpu), "topology", "physical_package_id")); err == nil {
			if n, err := strconv.Atoi(s); err == nil {
				socket = n
			}
		}
		pmu.Sockets = append(pmu.Sockets, socket)
	}
	formats := map[string]string{}
	if fe, err := os.ReadDir(filepath.Join(dir, "format")); err == nil {
		for _, e := range fe {
			if s, err := readTrimmed(filepath.Join(dir, "format", e.Name())); err == nil {
				formats[e.Name()] = s
			}
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "events"))
	if err != nil {
		return pmu, fmt.Errorf("%w: rapl perf backend: %s/events: %w", errUnavailable, dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		domain, ok := perfDomains[name]
		if !ok {
			continue // .scale, .unit, or an event we do not know
		}
		ev := PerfEvent{Name: name, Domain: domain}
		content, err := readTrimmed(filepath.Join(dir, "events", name))
		if err != nil {
			return pmu, fmt.Errorf("rapl perf backend: event %s: %w", name, err)
		}
		if ev.Config, err = ParseEventConfig(content, formats); err != nil {
			return pmu, fmt.Errorf("rapl perf backend: event %s: %w", name, err)
		}
		scale, err := readTrimmed(filepath.Join(dir, "events", name+".scale"))
		if err != nil {
			return pmu, fmt.Errorf("rapl perf backend: event %s has no .scale: %w", name, err)
		}
		if ev.Scale, err = strconv.ParseFloat(scale, 64); err != nil || !(ev.Scale > 0) {
			return pmu, fmt.Errorf("rapl perf backend: event %s: scale %q is not a positive number", name, scale)
		}
		if unit, err := readTrimmed(filepath.Join(dir, "events", name+".unit")); err == nil && unit != "Joules" {
			return pmu, fmt.Errorf("rapl perf backend: event %s counts %q, want Joules", name, unit)
		}
		pmu.Events = append(pmu.Events, ev)
	}
	if len(pmu.Events) == 0 {
		return pmu, fmt.Errorf("%w: rapl perf backend: the power PMU has no energy events", errUnavailable)
	}
	order := map[string]int{"package": 0, "core": 1, "uncore": 2, "dram": 3, "psys": 4}
	sort.Slice(pmu.Events, func(i, j int) bool { return order[pmu.Events[i].Domain] < order[pmu.Events[j].Domain] })
	return pmu, nil
}

// ParseCPUList parses a kernel CPU list such as "0", "0,36" or "0-3,8".
func ParseCPUList(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// ParseEventConfig turns an event description ("event=0x02") into the
// perf_event_attr.config value, placing each term by the PMU's format files
// ("event" -> "config:0-7"). A term without a format file goes to bit 0, as
// the power PMU's only term does.
func ParseEventConfig(desc string, formats map[string]string) (uint64, error) {
	var config uint64
	for _, term := range strings.Split(desc, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(term), "=")
		if !ok {
			return 0, fmt.Errorf("term %q is not key=value", term)
		}
		val, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			return 0, fmt.Errorf("term %q: %w", term, err)
		}
		shift := 0
		if f, ok := formats[k]; ok {
			field, bits, ok := strings.Cut(f, ":")
			if !ok || field != "config" {
				return 0, fmt.Errorf("format %s=%q: only config fields are supported", k, f)
			}
			lo, _, _ := strings.Cut(bits, "-")
			if shift, err = strconv.Atoi(lo); err != nil || shift > 63 {
				return 0, fmt.Errorf("format %s=%q: bad bit range", k, f)
			}
		}
		config |= val << shift
	}
	return config, nil
}

// perfZones turns the PMU's events into zones, one per event per package,
// named and ordered as the powercap backend has them: each package
// followed by its core, uncore and dram, then psys. psys is one
// platform-wide counter, opened on the first CPU only. core and uncore are
// marked as nested in their package, as powercap has them.
func perfZones(pmu PerfPMU) (zones []Zone, cpus []int, events []PerfEvent) {
	var psys []PerfEvent
	for i, cpu := range pmu.CPUs {
		socket := pmu.Sockets[i]
		for _, ev := range pmu.Events {
			if ev.Domain == "psys" {
				if i == 0 {
					psys = append(psys, ev)
				}
				continue
			}
			z := Zone{
				Dir:     fmt.Sprintf("power/%s/@cpu%d", ev.Name, cpu),
				Name:    ev.Name,
				Domain:  ev.Domain,
				Socket:  socket,
				Channel: fmt.Sprintf("%s-%d", ev.Domain, socket),
			}
			if ev.Domain == "core" || ev.Domain == "uncore" {
				z.Parent = fmt.Sprintf("power/energy-pkg/@cpu%d", cpu)
			}
			zones = append(zones, z)
			cpus = append(cpus, cpu)
			events = append(events, ev)
		}
	}
	for _, ev := range psys {
		zones = append(zones, Zone{Dir: fmt.Sprintf("power/%s/@cpu%d", ev.Name, pmu.CPUs[0]), Name: ev.Name, Domain: "psys", Socket: -1, Channel: "psys"})
		cpus = append(cpus, pmu.CPUs[0])
		events = append(events, ev)
	}
	return zones, cpus, events
}

// perfSource reads RAPL counters through perf_event_open file descriptors.
type perfSource struct {
	fds []int
	buf [8]byte
}

// openPerf opens one counting event per zone. It is system-wide (pid -1 on
// a CPU), which perf allows only with perf_event_paranoid <= 0 or
// CAP_PERFMON.
func openPerf(pmu PerfPMU, cpus []int, events []PerfEvent) (*perfSource, error) {
	s := &perfSource{}
	for i, ev := range events {
		attr := unix.PerfEventAttr{
			Type:   pmu.Type,
			Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
			Config: ev.Config,
		}
		fd, err := unix.PerfEventOpen(&attr, -1, cpus[i], -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err != nil {
			s.Close()
			where := fmt.Sprintf("perf_event_open(power/%s/, cpu %d)", ev.Name, cpus[i])
			switch {
			case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
				return nil, fmt.Errorf("%w: rapl: %s: %w\nsystem-wide perf events need kernel.perf_event_paranoid <= 0 (sudo sysctl kernel.perf_event_paranoid=0) or CAP_PERFMON (sudo setcap cap_perfmon+ep ./harness)", errPermission, where, err)
			case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL):
				return nil, fmt.Errorf("%w: rapl: %s: %w", errUnavailable, where, err)
			}
			return nil, fmt.Errorf("rapl: %s: %w", where, err)
		}
		s.fds = append(s.fds, fd)
	}
	return s, nil
}

// Read implements source: each fd reads as one native-endian u64 count.
func (s *perfSource) Read(dst []uint64) error {
	for i, fd := range s.fds {
		n, err := unix.Read(fd, s.buf[:])
		if err != nil || n != len(s.buf) {
			return fmt.Errorf("rapl: reading perf counter %d: read %d bytes: %v", i, n, err)
		}
		dst[i] = binary.NativeEndian.Uint64(s.buf[:])
	}
	return nil
}

// Close implements source.
func (s *perfSource) Close() error {
	var errs []error
	for _, fd := range s.fds {
		errs = append(errs, unix.Close(fd))
	}
	s.fds = nil
	return errors.Join(errs...)
}
