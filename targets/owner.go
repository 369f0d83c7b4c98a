package targets

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Owner is the harness process that created something on a platform (a
// container, an image, an OpenFaaS function), as the labels on it record.
// `harness clean` removes only what belongs to owners that are gone: two
// runs may share one Docker Engine or gateway, and the cleaning of one
// must not pull the containers from under the other.
type Owner struct {
	Host string // the process's host name, as a label value (see hostLabel)
	PID  int
	// Start tells the process apart from a later one with the same pid:
	// on Linux the boot id and the start time in clock ticks since boot
	// (from /proc); "" where unknown.
	Start string
}

// Label keys that record an Owner on everything a kind creates.
const (
	LabelHost     = "io.academemes.harness.host"
	LabelPID      = "io.academemes.harness.pid"
	LabelPIDStart = "io.academemes.harness.pid-start"
)

// procRoot is where Self and OwnerAlive read the process table.
const procRoot = "/proc"

// Self is this process as an Owner.
var Self = sync.OnceValue(func() Owner {
	h, _ := os.Hostname()
	pid := os.Getpid()
	return Owner{Host: hostLabel(h), PID: pid, Start: processStart(procRoot, pid)}
})

// Labels returns the owner's labels, to add to an object's.
func (o Owner) Labels() map[string]string {
	l := map[string]string{LabelHost: o.Host, LabelPID: strconv.Itoa(o.PID)}
	if o.Start != "" {
		l[LabelPIDStart] = o.Start
	}
	return l
}

// OwnerFromLabels reads an Owner back from an object's labels; the zero
// Owner when they name none (an object made before owners were recorded).
func OwnerFromLabels(l map[string]string) Owner {
	pid, err := strconv.Atoi(l[LabelPID])
	if err != nil || pid <= 0 || l[LabelHost] == "" {
		return Owner{}
	}
	return Owner{Host: l[LabelHost], PID: pid, Start: l[LabelPIDStart]}
}

// Known reports whether o names a process.
func (o Owner) Known() bool { return o.PID > 0 }

// String says "harness pid 1234 on host h".
func (o Owner) String() string {
	if !o.Known() {
		return "an unknown harness process"
	}
	return fmt.Sprintf("harness pid %d on host %s", o.PID, o.Host)
}

// Liveness says whether an owner is still running.
type Liveness int

// Liveness states.
const (
	// Gone: the process is not running (on this host, where it ran).
	Gone Liveness = iota
	// Alive: the process is running.
	Alive
	// Unknown: it cannot be told from here (another host, or no owner
	// recorded).
	Unknown
)

// OwnerAlive checks o against this host's process table: a process with
// o's pid that started when o did is o. An owner on another host, or none
// recorded, is Unknown.
func OwnerAlive(o Owner) Liveness {
	self := Self()
	switch {
	case !o.Known():
		return Unknown
	case o.Host != self.Host:
		return Unknown
	case o.PID == self.PID && o.Start == self.Start:
		return Alive
	}
	if o.Start != "" && self.Start != "" {
		// The pid must be o's process, not a later one that was given
		// the same number.
		if processStart(procRoot, o.PID) == o.Start {
			return Alive
		}
		return Gone
	}
	// No start times to compare (no /proc): signal 0 checks that the
	// pid exists.
	p, err := os.FindProcess(o.PID)
	if err != nil {
		return Gone
	}
	if err := p.Signal(syscall.Signal(0)); err == nil || errors.Is(err, syscall.EPERM) {
		return Alive
	}
	return Gone
}

// Keep says why leftover l must not be removed, "" when it may go: what
// a process still running created stays, and so does what a process that
// cannot be checked from here created (another host's harness, or one
// that recorded no owner), unless all is set (`harness clean --all`).
// Every Kind.Clean asks it before removing anything, so that the rule is
// the same for every kind.
func (o CleanOptions) Keep(l Leftover) string {
	if o.All {
		return ""
	}
	switch OwnerAlive(l.Owner) {
	case Alive:
		return fmt.Sprintf("its run is still going (%s)", l.Owner)
	case Unknown:
		if !l.Owner.Known() {
			return "no harness process is recorded on it (made before owners were labelled), so whether its run is still going cannot be told"
		}
		return fmt.Sprintf("made by %s, which cannot be checked from here", l.Owner)
	}
	return ""
}

// processStart is the start of process pid as /proc under root gives it,
// "<boot id>.<start ticks>", or "" when it cannot be read (no such
// process, a process that has ended but was not reaped, no /proc).
func processStart(root string, pid int) string {
	stat, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", root, pid))
	if err != nil {
		return ""
	}
	// The command name, field 2, is in parentheses and may hold spaces
	// and parentheses; the fields after the last ")" are 3 on, and the
	// start time is field 22.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return "" // a zombie has ended: only its exit status is left
	}
	boot, err := os.ReadFile(root + "/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "." + f[19]
}

// hostLabel is a host name as a label value that Kubernetes (under an
// OpenFaaS gateway) accepts too: at most 63 letters, digits, '-', '_' and
// '.', beginning and ending with a letter or digit.
func hostLabel(h string) string {
	b := []byte(h)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	s := string(b[:min(len(b), 63)])
	s = strings.TrimFunc(s, func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	if s == "" {
		return "unknown"
	}
	return s
}
