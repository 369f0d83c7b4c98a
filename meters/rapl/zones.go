package rapl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/procfs/sysfs"
)

// Zone is one RAPL power zone of the powercap tree.
type Zone struct {
	Dir     string // directory name under class/powercap: "intel-rapl:0:1"
	Path    string // full path of that directory
	Name    string // content of its name file: "package-0", "core", "dram", "psys"
	Domain  string // package, core, uncore, dram, psys, or Name for others
	Socket  int    // package index the zone belongs to; -1 for psys
	Parent  string // Dir of the enclosing zone, "" for a top-level zone
	MaxUJ   uint64 // max_energy_range_uj; 0 when the zone lacks the file
	Channel string // channel name: "package-0", "core-0", "dram-1", "psys"
}

// Nested reports whether the zone sits inside another zone.
func (z Zone) Nested() bool { return z.Parent != "" }

// The powercap control types that hold RAPL zones. intel-rapl-mmio exposes
// the package's power limits through MMIO on recent Intel client parts; its
// energy counter is the same package counter again, so its zones are
// duplicates of intel-rapl ones (https://docs.kernel.org/power/powercap/powercap.html).
const (
	prefixMSR  = "intel-rapl:"
	prefixMMIO = "intel-rapl-mmio:"
)

// Discover lists the RAPL zones under sysfsRoot/class/powercap, with the
// intel-rapl-mmio duplicates removed (their Dirs are returned in dropped).
//
// It asks procfs's sysfs.GetRaplZones first. That reader fails whole when a
// single zone lacks max_energy_range_uj (seen on some AMD kernels and in
// containers that mask files), so on such an error Discover walks the tree
// itself and keeps the zone with MaxUJ 0 (its wraparound cannot be undone;
// Run says so). The zones come back sorted: top-level zones by index, each
// followed by its subzones.
func Discover(sysfsRoot string) (zones []Zone, dropped []string, err error) {
	dir := filepath.Join(sysfsRoot, "class", "powercap")
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("%w: no %s: this kernel exposes no powercap interface (a virtual machine, or the intel_rapl_common/intel_rapl_msr modules are not loaded)", errUnavailable, dir)
		}
		return nil, nil, fmt.Errorf("%w: %s: %w", errUnavailable, dir, err)
	}
	var raw []Zone
	if pfs, ferr := sysfs.NewFS(sysfsRoot); ferr == nil {
		if rz, zerr := sysfs.GetRaplZones(pfs); zerr == nil {
			for _, z := range rz {
				name, nerr := readTrimmed(filepath.Join(z.Path, "name"))
				if nerr != nil {
					return nil, nil, fmt.Errorf("rapl: %s: %w", z.Path, nerr)
				}
				raw = append(raw, Zone{Dir: filepath.Base(z.Path), Path: z.Path, Name: name, MaxUJ: z.MaxMicrojoules})
			}
		} else {
			raw = nil
		}
	}
	if raw == nil {
		// procfs failed (or found nothing): read the tree directly.
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", errUnavailable, dir, err)
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			name, err := readTrimmed(filepath.Join(p, "name"))
			if err != nil {
				continue // the control-type directory "intel-rapl" has no name file
			}
			z := Zone{Dir: e.Name(), Path: p, Name: name}
			if s, err := readTrimmed(filepath.Join(p, "max_energy_range_uj")); err == nil {
				if v, err := strconv.ParseUint(s, 10, 64); err == nil {
					z.MaxUJ = v
				}
			}
			raw = append(raw, z)
		}
	}
	zones, dropped, err = classify(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	return zones, dropped, nil
}

func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// zoneIndex parses "intel-rapl:0:1" into [0 1]; ok is false for a name that
// is not a RAPL zone directory.
func zoneIndex(dir string) (prefix string, idx []int, ok bool) {
	for _, p := range []string{prefixMMIO, prefixMSR} {
		if rest, found := strings.CutPrefix(dir, p); found {
			for _, s := range strings.Split(rest, ":") {
				n, err := strconv.Atoi(s)
				if err != nil {
					return "", nil, false
				}
				idx = append(idx, n)
			}
			return p, idx, true
		}
	}
	return "", nil, false
}

// classify works out nesting, sockets, domains and channel names from the
// directory names alone (procfs lists subzones flat; the parent is only
// visible in the name), and drops intel-rapl-mmio zones that duplicate an
// intel-rapl one.
func classify(raw []Zone) (zones []Zone, dropped []string, err error) {
	byDir := map[string]*Zone{}
	type keyed struct {
		z    Zone
		mmio bool
		idx  []int
	}
	var ks []keyed
	for _, z := range raw {
		prefix, idx, ok := zoneIndex(z.Dir)
		if !ok {
			continue // some other powercap control type (dtpm, ...)
		}
		if len(idx) > 1 {
			parts := strings.Split(z.Dir, ":")
			z.Parent = strings.Join(parts[:len(parts)-1], ":")
		}
		z.Domain, z.Socket = domainOf(z.Name)
		ks = append(ks, keyed{z, prefix == prefixMMIO, idx})
	}
	sort.SliceStable(ks, func(i, j int) bool {
		if ks[i].mmio != ks[j].mmio {
			return !ks[i].mmio
		}
		a, b := ks[i].idx, ks[j].idx
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return len(a) < len(b)
	})
	msrNames := map[string]bool{}
	for _, k := range ks {
		if !k.mmio && !k.z.Nested() {
			msrNames[k.z.Name] = true
		}
	}
	droppedDirs := map[string]bool{}
	for _, k := range ks {
		z := k.z
		if k.mmio && (msrNames[z.Name] || droppedDirs[z.Parent]) {
			dropped = append(dropped, z.Dir)
			droppedDirs[z.Dir] = true
			continue
		}
		zones = append(zones, z)
		byDir[z.Dir] = &zones[len(zones)-1]
	}
	// Subzones take the socket of their package; names get it as suffix.
	seen := map[string]int{}
	for i := range zones {
		z := &zones[i]
		if z.Nested() {
			if p, ok := byDir[z.Parent]; ok {
				z.Socket = p.Socket
			} else {
				return nil, nil, fmt.Errorf("rapl zone %s: parent zone %s not found", z.Dir, z.Parent)
			}
		}
		switch {
		case z.Domain == "psys":
			z.Channel = "psys"
		case z.Socket >= 0:
			z.Channel = fmt.Sprintf("%s-%d", z.Domain, z.Socket)
		default:
			z.Channel = z.Name
		}
		if n := seen[z.Channel]; n > 0 {
			// Two zones of one name (two psys, a dram at top level on each
			// socket without an index): keep both, distinguishable.
			z.Channel = fmt.Sprintf("%s#%d", z.Channel, n)
		}
		seen[strings.SplitN(z.Channel, "#", 2)[0]]++
	}
	if len(zones) == 0 {
		return nil, dropped, fmt.Errorf("%w: no intel-rapl zones (no RAPL driver loaded, or a virtual machine)", errUnavailable)
	}
	// Subzones without a socket of their own (a top-level "dram" on some
	// servers) keep Socket from their name or -1.
	return zones, dropped, nil
}

// domainOf maps a zone's name file to its domain and, for "package-N" and
// "dram-N"-style names, the socket index. Names without an index (core,
// uncore, dram as a subzone) get -1 and take their parent's socket later.
func domainOf(name string) (domain string, socket int) {
	base, num, found := strings.Cut(name, "-")
	if found {
		if n, err := strconv.Atoi(num); err == nil {
			return base, n
		}
	}
	if name == "psys" {
		return "psys", -1
	}
	return name, -1
}

// TotalRule says which channels count toward the meter's total:
//
//   - psys=true: the psys zone(s) alone. psys is the whole platform
//     (package, and on client parts more: the PCH, eDRAM, the
//     rest of the SoC), so nothing is added to it.
//   - otherwise: every top-level package zone (summed across sockets); core
//     and uncore are inside their package and never added again.
//   - dram=true adds the dram zones. DRAM energy is a separate RAPL domain
//     (Intel SDM vol. 3B, 15.10: MSR_DRAM_ENERGY_STATUS is not part of
//     MSR_PKG_ENERGY_STATUS), although powercap files it as a subzone of
//     its package. AMD has no dram domain.
func TotalRule(zones []Zone, psys, dram bool) ([]bool, error) {
	in := make([]bool, len(zones))
	found := false
	if psys {
		for i, z := range zones {
			if z.Domain == "psys" {
				in[i], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("psys=1 asked for, but this machine has no psys zone (only client parts since Skylake have one)")
		}
		return in, nil
	}
	for i, z := range zones {
		if z.Domain == "package" && !z.Nested() {
			in[i], found = true, true
		}
		if dram && z.Domain == "dram" {
			in[i] = true
		}
	}
	if !found {
		var has []string
		for _, z := range zones {
			has = append(has, z.Domain)
		}
		hint := ""
		if slices.Contains(has, "psys") {
			hint = "; psys=1 totals the platform (psys) zone instead"
		}
		return nil, fmt.Errorf("%w: no package zone to total (zones here: %s)%s", errUnavailable, strings.Join(has, ", "), hint)
	}
	return in, nil
}
