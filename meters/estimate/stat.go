package estimate

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// CPUTimes are the cumulative times of the aggregate "cpu" line of
// /proc/stat, in USER_HZ ticks (1/100 s on every Linux architecture we know
// of). See proc(5).
type CPUTimes struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

// busy is time spent running something on this machine. Guest and
// guest_nice are not added: the kernel already counts them in user and
// nice.
func (c CPUTimes) busy() uint64 { return c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ }

// own is all time this machine's CPUs had, busy or idle. Steal (time the
// hypervisor gave to another guest) is left out of both busy and own: it is
// neither our work nor our idleness, and counting it as idle would make a
// loaded guest on a busy host look half idle.
func (c CPUTimes) own() uint64 { return c.busy() + c.Idle + c.IOWait }

// Stat is what the estimate needs from /proc/stat.
type Stat struct {
	Total CPUTimes // the aggregate "cpu" line
	Cores int      // how many "cpuN" lines follow it
}

// ParseStat parses the content of /proc/stat. It reads only the cpu lines
// and ignores the rest (intr, ctxt, btime, ...), so a kernel that adds or
// changes other lines does not break it. Older kernels give fewer than ten
// columns; missing ones are zero.
func ParseStat(data []byte) (Stat, error) {
	var st Stat
	seenTotal := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20) // the intr line can be long
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "cpu") {
			continue
		}
		if fields[0] != "cpu" {
			if _, err := strconv.Atoi(fields[0][3:]); err == nil {
				st.Cores++
			}
			continue
		}
		if len(fields) < 5 {
			return st, fmt.Errorf("/proc/stat line %d: cpu line has %d columns, want at least 4 times", line, len(fields)-1)
		}
		var v [8]uint64
		for i := 0; i < len(v) && i+1 < len(fields); i++ {
			n, err := strconv.ParseUint(fields[i+1], 10, 64)
			if err != nil {
				return st, fmt.Errorf("/proc/stat line %d column %d: %w", line, i+2, err)
			}
			v[i] = n
		}
		st.Total = CPUTimes{User: v[0], Nice: v[1], System: v[2], Idle: v[3], IOWait: v[4], IRQ: v[5], SoftIRQ: v[6], Steal: v[7]}
		seenTotal = true
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("/proc/stat: %w", err)
	}
	if !seenTotal {
		return st, fmt.Errorf("/proc/stat: no aggregate \"cpu\" line")
	}
	if st.Cores == 0 {
		return st, fmt.Errorf("/proc/stat: no per-CPU \"cpuN\" lines")
	}
	return st, nil
}

// Utilisation is the busy share of all CPUs between two snapshots, in
// [0, 1]. ok is false when no tick passed between them (the counters move
// in 10 ms steps), so the caller keeps its previous figure. A counter that
// went backwards (a CPU taken offline takes its times with it) also gives
// ok false rather than a nonsense share.
func Utilisation(prev, cur CPUTimes) (u float64, ok bool) {
	pb, cb, po, co := prev.busy(), cur.busy(), prev.own(), cur.own()
	if co <= po || cb < pb {
		return 0, false
	}
	u = float64(cb-pb) / float64(co-po)
	if u > 1 {
		u = 1
	}
	return u, true
}
