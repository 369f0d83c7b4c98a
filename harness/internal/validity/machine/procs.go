// Package machine reads what a machine is doing besides a run: other
// processes' CPU time (from /proc, during the system check and through
// every phase), the load average, containers the run did not create, the
// frequency governor and turbo, swap, thermal throttling, the meter and
// the clock's synchronisation. `harness doctor` prints what it finds; the
// runner records it. Package validity judges it.
//
// Everything is read under a procfs and a sysfs root, so that tests run on
// fixture trees.
package machine

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/procfs"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/validity"
)

// userHZ is the unit of /proc's CPU times: clock ticks, 100 a second on
// every platform Go supports (procfs makes the same assumption).
const userHZ = 100

// pfKthread is the kernel's PF_KTHREAD flag in /proc/PID/stat: the process
// is a kernel thread (include/linux/sched.h).
const pfKthread = 0x00200000

// Classifier says which processes are the run's own: the harness (and
// everything it started), the targets' containers and, where targets run
// on the local container engine, the engine's daemons. The rest is
// foreign: its CPU time lands in the meter's figures without belonging to
// any target.
type Classifier struct {
	// Self is the harness's PID; it and its descendants are its own.
	// Purify runs inside the harness, so its work is the harness's.
	Self int
	// Container reports whether a container (by its full ID) is one the
	// run created, or an error when it cannot tell; nil when the run
	// creates none.
	Container func(id string) (bool, error)
	// Engine counts the container engine's daemons (dockerd, containerd
	// and its shims, runc, docker-proxy) as the targets' own: creating and
	// removing containers is what a docker-node cold start costs. Set when
	// a target runs on the local engine.
	Engine bool
}

// engineDaemons are the command names (comm, at most 15 characters) of the
// container engine's processes, matched as prefixes: "containerd" covers
// its shims, "runc" the "runc:[2:INIT]" a container start shows, and
// fuse-overlayfs is the storage driver of a rootless or FUSE-backed engine,
// one process per container.
var engineDaemons = []string{"dockerd", "containerd", "runc", "docker-proxy", "docker-init", "fuse-overlayfs"}

func isEngine(comm string) bool {
	for _, d := range engineDaemons {
		if strings.HasPrefix(comm, d) {
			return true
		}
	}
	return false
}

// containerID finds a container's 64-hex-digit ID in a cgroup path, as
// Docker names its cgroups under either driver: /docker/<id> (cgroupfs)
// or /system.slice/docker-<id>.scope (systemd).
var containerID = regexp.MustCompile(`[0-9a-f]{64}`)

// procKey tells processes apart across PID reuse.
type procKey struct {
	pid   int
	start uint64 // ticks after boot
}

// procState is one process in one snapshot.
type procState struct {
	ppid  int
	comm  string
	ticks uint64 // utime + stime + cutime + cstime: with the children it waited for
	child uint64 // cutime + cstime: the children's part of ticks
	kthr  bool
}

// snapshot is every process at one moment, and the machine's CPU time.
type snapshot struct {
	procs  map[int]procState
	keys   map[int]procKey
	busyS  float64 // all CPUs' busy time since boot, seconds; -1 when unreadable
	totalS float64 // all CPUs' time since boot, busy or not, seconds
	cpus   int
}

// Sampler turns successive snapshots of /proc into CPU time per process
// and the share of it that is foreign. Not safe for concurrent use; the
// Monitor wraps it.
type Sampler struct {
	fs    procfs.FS
	class Classifier

	// owner caches each process's classification.
	owner map[procKey]string
	prev  *snapshot

	// Cumulative since the first snapshot.
	foreignS float64
	totalS   float64 // the CPUs' time, busy or idle: the machine's capacity
	perProc  map[procKey]*procTotal
	cpus     int
	// groups is every process's CPU time so far by attribution group
	// (Group*), for the attribution model.
	groups map[string]float64
}

// procTotal is a foreign process's CPU time so far.
type procTotal struct {
	name string
	cpuS float64
}

// Owner names, as classify returns them.
const (
	ownHarness = "harness"
	ownTarget  = "target"
	ownEngine  = "engine"
	ownKernel  = "kernel"
	foreign    = ""
)

// NewSampler opens the procfs at root ("/proc" on a live machine).
func NewSampler(root string, c Classifier) (*Sampler, error) {
	f, err := procfs.NewFS(root)
	if err != nil {
		return nil, fmt.Errorf("procfs %s: %w", root, err)
	}
	return &Sampler{fs: f, class: c, owner: map[procKey]string{}, perProc: map[procKey]*procTotal{}, groups: map[string]float64{}}, nil
}

// take reads every process's CPU time. Processes that end while it reads
// are skipped.
func (s *Sampler) take() (*snapshot, error) {
	all, err := s.fs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	snap := &snapshot{procs: make(map[int]procState, len(all)), keys: make(map[int]procKey, len(all))}
	for _, p := range all {
		st, err := p.Stat()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				continue
			}
			continue // a process caught mid-exit reads short; it is gone by the next snapshot
		}
		snap.procs[p.PID] = procState{
			ppid:  st.PPID,
			comm:  st.Comm,
			ticks: uint64(st.UTime) + uint64(st.STime) + uint64(max(st.CUTime, 0)) + uint64(max(st.CSTime, 0)),
			child: uint64(max(st.CUTime, 0)) + uint64(max(st.CSTime, 0)),
			kthr:  st.Flags&pfKthread != 0 || st.PID == 2 || st.PPID == 2,
		}
		snap.keys[p.PID] = procKey{p.PID, st.Starttime}
	}
	snap.busyS = -1
	if ps, err := s.fs.Stat(); err == nil {
		c := ps.CPUTotal
		// Steal is time the hypervisor gave to others: not this
		// machine's work. Guest time is already inside user.
		snap.busyS = c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ
		snap.totalS = snap.busyS + c.Idle + c.Iowait + c.Steal
		snap.cpus = len(ps.CPU)
	}
	return snap, nil
}

// classify says whose a process is; foreign is "".
func (s *Sampler) classify(snap *snapshot, pid int) string {
	key := snap.keys[pid]
	if o, ok := s.owner[key]; ok {
		return o
	}
	o, sure := s.classifyUncached(snap, pid)
	// The harness's descendants are found through the live tree, which
	// a re-parented orphan leaves; cache only what cannot change.
	if sure && o != ownHarness {
		s.owner[key] = o
	}
	return o
}

// classifyUncached says whose a process is, and whether that is sure (a
// container the engine could not tell about is not).
func (s *Sampler) classifyUncached(snap *snapshot, pid int) (owner string, sure bool) {
	st := snap.procs[pid]
	if st.kthr {
		// Kernel threads work for whoever runs (softirqs, writeback);
		// they are not another program's load.
		return ownKernel, true
	}
	for p, depth := pid, 0; p > 0 && depth < 64; depth++ {
		if p == s.class.Self {
			return ownHarness, true
		}
		next, ok := snap.procs[p]
		if !ok {
			break
		}
		p = next.ppid
	}
	if s.class.Container != nil {
		if proc, err := s.fs.Proc(pid); err == nil {
			if groups, err := proc.Cgroups(); err == nil {
				for _, g := range groups {
					id := containerID.FindString(g.Path)
					if id == "" {
						continue
					}
					// In a container: the run's, or someone else's,
					// whoever started it.
					own, err := s.class.Container(id)
					if own {
						return ownTarget, true
					}
					return foreign, err == nil
				}
			}
		}
	}
	if s.class.Engine {
		// The engine's daemons, and what they start outside any
		// container (dockerd re-executes itself as "exe" to set up
		// networks).
		if isEngine(st.comm) {
			return ownEngine, true
		}
		if parent, ok := snap.procs[st.ppid]; ok && isEngine(parent.comm) {
			return ownEngine, true
		}
	}
	return foreign, true
}

// Sample takes a snapshot and adds the CPU time since the previous one to
// the totals. The first call only sets the starting point.
func (s *Sampler) Sample() error {
	cur, err := s.take()
	if err != nil {
		return err
	}
	if cur.cpus > 0 {
		s.cpus = cur.cpus
	}
	prev := s.prev
	s.prev = cur
	if prev == nil {
		return nil
	}
	// A process that ended since the last snapshot hands its CPU time to
	// the process that waits for it, as that one's children's time. That
	// time was counted, up to the last snapshot, under the ended one;
	// take it off the reaper's growth so that it is not counted twice.
	// The reaper is one of its ancestors: its parent; or, when the parent
	// ended too, whoever reaped the parent after it waited (a test
	// binary, then the go command that waited for it, then the shell's
	// child: the time climbs the chain with each wait); or, when the
	// parent ended first, init or a subreaper further up, which adopted
	// it. So it is the nearest ancestor still alive whose children's time
	// grew by at least as much. Without this a test binary's minutes of
	// CPU time would land in its shell's one interval, and the cap at the
	// machine's busy time would shrink every other process out of sight.
	counted := map[int]uint64{}
	room := map[int]uint64{} // children's time gained and not yet explained
	alive := func(pid int) bool {
		_, ok := cur.procs[pid]
		return ok && cur.keys[pid] == prev.keys[pid]
	}
	var ended []int
	for pid, st := range prev.procs {
		if !alive(pid) {
			ended = append(ended, pid)
			continue
		}
		if c := cur.procs[pid].child; c > st.child {
			room[pid] = c - st.child
		}
	}
	slices.Sort(ended)
	for _, pid := range ended {
		st := prev.procs[pid]
		for p, depth := st.ppid, 0; p > 0 && depth < 64; depth++ {
			if _, ok := prev.procs[p]; !ok {
				break
			}
			if alive(p) && room[p] >= st.ticks {
				counted[p] += st.ticks
				room[p] -= st.ticks
				break
			}
			p = prev.procs[p].ppid
		}
	}
	var foreignTicks, allTicks uint64
	grown := map[procKey]uint64{}
	byGroup := map[string]uint64{}
	for pid, st := range cur.procs {
		key := cur.keys[pid]
		d := st.ticks // a new process: all its time is since the last snapshot
		if p, ok := prev.procs[pid]; ok && prev.keys[pid] == key {
			d = 0
			if st.ticks > p.ticks {
				d = st.ticks - p.ticks
			}
		}
		if c := counted[pid]; c > 0 {
			d -= min(d, c)
		}
		if d == 0 {
			continue
		}
		owner := s.classify(cur, pid)
		byGroup[group(owner, st, cur)] += d
		allTicks += d
		if owner != foreign {
			continue
		}
		foreignTicks += d
		grown[key] = d
	}
	secs := float64(foreignTicks) / userHZ
	scale := 1.0
	// Never more than the machine was busy: ticks are sampled by the
	// kernel, and a wait seen late can land in the wrong interval.
	if prev.busyS >= 0 && cur.busyS >= 0 {
		if busy := cur.busyS - prev.busyS; secs > busy && secs > 0 {
			scale = max(busy, 0) / secs
		}
	}
	s.foreignS += secs * scale
	s.addGroups(byGroup, allTicks, prev, cur)
	if prev.busyS >= 0 && cur.busyS >= 0 {
		s.totalS += max(cur.totalS-prev.totalS, 0)
	}
	for key, d := range grown {
		t := s.perProc[key]
		if t == nil {
			t = &procTotal{name: cur.procs[key.pid].comm}
			s.perProc[key] = t
		}
		t.cpuS += float64(d) / userHZ * scale
	}
	return nil
}

// Attribution groups: whose CPU time it is, as cpu.csv records it. The
// harness, its load generator, its meters and an in-process Purify share
// one process and one group: Go's goroutines move between threads, so no
// per-thread reading (/proc/self/task) tells them apart.
const (
	GroupTarget     = "target"     // the run's containers (docker-node, OpenFaaS functions)
	GroupDockerd    = "dockerd"    // dockerd and what it starts outside containers (docker-proxy, its re-executed "exe")
	GroupContainerd = "containerd" // containerd, its shims, runc, fuse-overlayfs
	GroupHarness    = "harness"    // the harness process and its children: load generator, meters, in-process Purify
	GroupKernel     = "kernel"     // kernel threads
	GroupOther      = "other"      // every other process: the rest of the machine
)

// group is the attribution group of a process of owner.
func group(owner string, st procState, snap *snapshot) string {
	switch owner {
	case ownHarness:
		return GroupHarness
	case ownTarget:
		return GroupTarget
	case ownKernel:
		return GroupKernel
	case ownEngine:
		comm := st.comm
		if !isEngine(comm) {
			comm = snap.procs[st.ppid].comm // started by a daemon
		}
		if strings.HasPrefix(comm, "dockerd") || strings.HasPrefix(comm, "docker-") {
			return GroupDockerd
		}
		return GroupContainerd
	}
	return GroupOther
}

// addGroups adds one interval's ticks by group to the totals, scaled down
// as the foreign time is when they exceed what the machine was busy.
func (s *Sampler) addGroups(byGroup map[string]uint64, all uint64, prev, cur *snapshot) {
	secs := float64(all) / userHZ
	scale := 1.0
	if prev.busyS >= 0 && cur.busyS >= 0 {
		if busy := cur.busyS - prev.busyS; secs > busy && secs > 0 {
			scale = max(busy, 0) / secs
		}
	}
	for g, d := range byGroup {
		s.groups[g] += float64(d) / userHZ * scale
	}
}

// Totals is the foreign CPU time so far, for the difference at a phase's
// end.
type Totals struct {
	ForeignS float64
	// CapacityS is the CPUs' time, busy or idle, as /proc/stat counts
	// it: the share's denominator, in the same ticks as the processes'
	// times, so that a share never exceeds 1 however short the span.
	CapacityS float64
	Procs     map[procKey]float64
	CPUs      int
	// Groups is all processes' CPU time so far by attribution group
	// (Group*), seconds since the sampler's first snapshot.
	Groups map[string]float64
}

// Totals returns a copy of the totals so far.
func (s *Sampler) Totals() Totals {
	t := Totals{ForeignS: s.foreignS, CapacityS: s.totalS, Procs: make(map[procKey]float64, len(s.perProc)), CPUs: s.cpus, Groups: make(map[string]float64, len(s.groups))}
	for g, v := range s.groups {
		t.Groups[g] = v
	}
	for k, p := range s.perProc {
		t.Procs[k] = p.cpuS
	}
	return t
}

// Foreign is the foreign CPU time between two totals, with the top
// processes named (the busiest top, and every other one with RecordShare
// or more), as run.json records it. Shares are of the machine's
// CPU time between them; secs, the span's length, stands in when
// /proc/stat could not be read.
func (s *Sampler) Foreign(from, to Totals, secs float64, top int) *runstore.ForeignCPU {
	capacity := to.CapacityS - from.CapacityS
	if capacity <= 0 {
		capacity = float64(max(to.CPUs, 1)) * secs
	}
	f := &runstore.ForeignCPU{CPUSeconds: max(to.ForeignS-from.ForeignS, 0)}
	if capacity > 0 {
		f.Share = f.CPUSeconds / capacity
	}
	for k, v := range to.Procs {
		d := v - from.Procs[k]
		if d <= 0 {
			continue
		}
		p := runstore.Process{PID: k.pid, CPUSeconds: d}
		if t := s.perProc[k]; t != nil {
			p.Name = t.name
		}
		if capacity > 0 {
			p.Share = d / capacity
		}
		f.Top = append(f.Top, p)
	}
	slices.SortFunc(f.Top, func(a, b runstore.Process) int {
		return cmp.Or(cmp.Compare(b.CPUSeconds, a.CPUSeconds), cmp.Compare(a.PID, b.PID))
	})
	n := min(len(f.Top), top)
	for n < len(f.Top) && f.Top[n].Share >= RecordShare {
		n++
	}
	f.Top = f.Top[:n]
	return f
}

// TopProcesses is how many of the busiest foreign processes are recorded
// at least; beyond them, every one with RecordShare of the machine or
// more is recorded too, so that a busy process is never cut off by a
// crowd of others as busy.
const TopProcesses = 10

// RecordShare is the share of the machine's CPU time from which a
// foreign process is always recorded: what a problem's message names
// (validity.NamedShare).
const RecordShare = validity.NamedShare

// Monitor samples processes in the background through a run and at every
// phase boundary. Safe for concurrent use.
type Monitor struct {
	mu sync.Mutex
	s  *Sampler
}

// NewMonitor wraps a sampler.
func NewMonitor(s *Sampler) *Monitor { return &Monitor{s: s} }

// Sample takes a sample now and returns the totals after it.
func (m *Monitor) Sample() (Totals, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.s.Sample()
	return m.s.Totals(), err
}

// Foreign is the foreign CPU time between two totals over secs seconds.
func (m *Monitor) Foreign(from, to Totals, secs float64) *runstore.ForeignCPU {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s.Foreign(from, to, secs, TopProcesses)
}
