package targets

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestOwnerLabels: an owner written as labels reads back the same, and
// objects without them have no owner.
func TestOwnerLabels(t *testing.T) {
	self := Self()
	if self.PID != os.Getpid() || self.Host == "" {
		t.Fatalf("Self() = %+v", self)
	}
	if runtime.GOOS == "linux" && self.Start == "" {
		t.Errorf("Self() has no start on Linux: %+v", self)
	}
	if got := OwnerFromLabels(self.Labels()); got != self {
		t.Errorf("read back %+v, want %+v", got, self)
	}
	for _, l := range []map[string]string{nil, {LabelPID: "12"}, {LabelHost: "h", LabelPID: "x"}, {LabelHost: "h", LabelPID: "-3"}} {
		if got := OwnerFromLabels(l); got.Known() {
			t.Errorf("OwnerFromLabels(%v) = %+v, want none", l, got)
		}
	}
}

// TestOwnerAlive: a process is alive while it runs, gone once it ended
// (reaped or not), and another process with its pid is not it.
func TestOwnerAlive(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("start times come from /proc")
	}
	if OwnerAlive(Self()) != Alive {
		t.Fatal("this process is not alive")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBlock$")
	cmd.Env = append(os.Environ(), "HARNESS_TEST_BLOCK=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child := Owner{Host: Self().Host, PID: cmd.Process.Pid, Start: processStart(procRoot, cmd.Process.Pid)}
	if child.Start == "" {
		t.Fatal("no start time for a running child")
	}
	if got := OwnerAlive(child); got != Alive {
		t.Errorf("running child: %v, want Alive", got)
	}
	reused := child
	reused.Start += "0"
	if got := OwnerAlive(reused); got != Gone {
		t.Errorf("its pid with another start (a reused pid): %v, want Gone", got)
	}
	stdin.Close() // the child exits
	for deadline := time.Now().Add(10 * time.Second); processStart(procRoot, child.PID) != "" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // until it has exited
	}
	if got := OwnerAlive(child); got != Gone {
		t.Errorf("ended, not reaped: %v, want Gone", got)
	}
	cmd.Wait()
	if got := OwnerAlive(child); got != Gone {
		t.Errorf("ended and reaped: %v, want Gone", got)
	}
	other := Self()
	other.Host = "elsewhere"
	if got := OwnerAlive(other); got != Unknown {
		t.Errorf("another host: %v, want Unknown", got)
	}
	if got := OwnerAlive(Owner{}); got != Unknown {
		t.Errorf("no owner: %v, want Unknown", got)
	}
}

// TestHelperBlock is the child of TestOwnerAlive: it runs until its stdin
// closes.
func TestHelperBlock(t *testing.T) {
	if os.Getenv("HARNESS_TEST_BLOCK") == "" {
		t.Skip("helper process for TestOwnerAlive")
	}
	os.Stdin.Read(make([]byte, 1))
}

// TestKeep is the rule every Kind.Clean applies: what a live process or
// an uncheckable one made stays, unless All.
func TestKeep(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("start times come from /proc")
	}
	gone := Self()
	gone.Start = "not-" + gone.Start // this pid, another process: ended
	other := Self()
	other.Host = "elsewhere"
	tests := []struct {
		name  string
		owner Owner
		all   bool
		want  string // in the reason; "" to remove
	}{
		{"live run", Self(), false, "its run is still going (harness pid"},
		{"live run, --all", Self(), true, ""},
		{"ended run", gone, false, ""},
		{"another host", other, false, "on host elsewhere, which cannot be checked from here"},
		{"another host, --all", other, true, ""},
		{"no owner recorded", Owner{}, false, "no harness process is recorded on it"},
		{"no owner recorded, --all", Owner{}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CleanOptions{All: tt.all}.Keep(Leftover{What: "container", Owner: tt.owner})
			if (got == "") != (tt.want == "") || !strings.Contains(got, tt.want) {
				t.Errorf("Keep = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestProcessStart reads a process's start from a /proc tree, with a
// command name that holds spaces and parentheses.
func TestProcessStart(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sys/kernel/random/boot_id", "0b4c9a52-7c1c-4c4e-9d59-0e1f3f1a2b3c\n")
	write("42/stat", "42 (harness (x) y) S 1 42 42 0 -1 4194560 1000 0 0 0 5 3 0 0 20 0 12 0 987654 2000000 3000 18446744073709551615\n")
	write("43/stat", "43 (sh) Z 1 43 43 0 -1 4194560 1000 0 0 0 5 3 0 0 20 0 1 0 987700 0 0 18446744073709551615\n")
	write("44/stat", "44 (cut") // cut short
	tests := []struct {
		pid  int
		want string
	}{
		{42, "0b4c9a52-7c1c-4c4e-9d59-0e1f3f1a2b3c.987654"},
		{43, ""}, // a zombie
		{44, ""},
		{45, ""}, // no such process
	}
	for _, tt := range tests {
		if got := processStart(root, tt.pid); got != tt.want {
			t.Errorf("processStart(%d) = %q, want %q", tt.pid, got, tt.want)
		}
	}
}

func TestHostLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"build-7.example.org", "build-7.example.org"},
		{"Büro PC", "B--ro-PC"},
		{"-x-", "x"},
		{"", "unknown"},
		{strings.Repeat("a", 80), strings.Repeat("a", 63)},
	}
	for _, tt := range tests {
		if got := hostLabel(tt.in); got != tt.want {
			t.Errorf("hostLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
