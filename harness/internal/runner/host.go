package runner

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/academemes/harness/harness/internal/runstore"
)

// readHost collects the facts about the machine under test that change
// energy figures: CPU model and count, kernel, frequency governor, turbo,
// memory, and whether it is a virtual machine. Whatever cannot be read is
// left empty; nothing here fails a run.
func readHost(procfs, sysfs string) runstore.Host {
	h := runstore.Host{OS: runtime.GOOS, Arch: runtime.GOARCH, Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	h.Hostname, _ = os.Hostname()
	h.Kernel = readTrim(filepath.Join(procfs, "sys/kernel/osrelease"))
	h.Governor = readTrim(filepath.Join(sysfs, "devices/system/cpu/cpu0/cpufreq/scaling_governor"))
	switch {
	case readTrim(filepath.Join(sysfs, "devices/system/cpu/intel_pstate/no_turbo")) == "1":
		h.Turbo = "off (intel_pstate no_turbo=1)"
	case readTrim(filepath.Join(sysfs, "devices/system/cpu/intel_pstate/no_turbo")) == "0":
		h.Turbo = "on (intel_pstate)"
	case readTrim(filepath.Join(sysfs, "devices/system/cpu/cpufreq/boost")) == "1":
		h.Turbo = "on (cpufreq boost)"
	case readTrim(filepath.Join(sysfs, "devices/system/cpu/cpufreq/boost")) == "0":
		h.Turbo = "off (cpufreq boost)"
	}
	if f, err := os.Open(filepath.Join(procfs, "cpuinfo")); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			k, v, ok := strings.Cut(s.Text(), ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				if h.CPUModel == "" {
					h.CPUModel = strings.TrimSpace(v)
				}
			case "flags":
				if strings.Contains(" "+v+" ", " hypervisor ") {
					h.Virtual = "virtual machine (hypervisor flag)"
				}
			}
		}
		f.Close()
	}
	if f, err := os.Open(filepath.Join(procfs, "meminfo")); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if rest, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				h.MemoryMB = kb / 1024
			}
		}
		f.Close()
	}
	return h
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
