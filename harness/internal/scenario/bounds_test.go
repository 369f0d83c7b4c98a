package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/meters"
	_ "github.com/academemes/harness/meters/all" // the real drivers' spec checks
	"github.com/academemes/harness/targets"
)

func init() {
	// A kind without its own CheckFunction: functions are checked by
	// checkFunction, against the project's functions.
	targets.Register(targets.Kind{
		Name:  "named",
		Modes: []targets.Mode{targets.Cold},
		New:   func(targets.Spec) (targets.Target, error) { return nil, errors.New("not for running") },
	})
}

// TestBadScenarios: every number has a range, names are names, and every
// problem is reported at once at its file:line:col (or its --set), before
// a run directory exists. Each case was accepted by --check, or reported
// misleadingly, before. want lists whole lines of the error.
func TestBadScenarios(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		sets []string
		want []string
	}{
		{"repeat beyond an int", strings.Replace(good, "repeat: 2", "repeat: 9223372036854775807", 1), nil,
			[]string{`s.yaml:3:9: repeat: must be a whole number from 1 to 1000, got "9223372036854775807"`}},
		{"repeat not whole", strings.Replace(good, "repeat: 2", "repeat: 2.5", 1), nil,
			[]string{`s.yaml:3:9: repeat: must be a whole number from 1 to 1000, got "2.5"`}},
		{"a list for a duration", strings.Replace(good, "idle: 3s", "idle: [1, 2]", 1), nil,
			[]string{`s.yaml:4:7: idle: must be a duration such as 30s, 1m30s or 250ms, got a list`}},
		{"a duration beyond time.Duration", strings.Replace(good, "idle: 3s", "idle: 99999999999h", 1), nil,
			[]string{`s.yaml:4:7: idle: must be a duration from 0s to 24h0m0s, got "99999999999h"`}},
		{"negative idle", strings.Replace(good, "idle: 3s", "idle: -1s", 1), nil,
			[]string{`s.yaml:4:7: idle: must be a duration from 0s to 24h0m0s, got "-1s"`}},
		{"a rate whose interval overflows", strings.Replace(good, "rate: 50,", "rate: 1e-300,", 1), nil,
			[]string{`s.yaml:15:14: load.stages[0].rate: must be a positive number of requests per second from 0.000278 to 1000000, got "1e-300"`}},
		{"a rate not a number", strings.Replace(good, "rate: 50,", "rate: .nan,", 1), nil,
			[]string{`s.yaml:15:14: load.stages[0].rate: must be a rate in requests per second such as 50 or 3000/m, got ".nan"`}},
		{"a stage of a day and more", strings.Replace(good, "duration: 10s", "duration: 25h", 1), nil,
			[]string{`s.yaml:15:28: load.stages[0].duration: must be a duration from 1ms to 24h0m0s, got "25h"`}},
		// 1e300 seconds converted to a Duration came out negative: "must
		// be a positive duration".
		{"a timeout of 1e300 s", good + "  timeout: 1e300\n", nil,
			[]string{`s.yaml:17:12: load.timeout: must be a duration from 1ms to 1h0m0s, got "1e300"`}},
		{"a timeout from --set", good, []string{"load.timeout=-5s"},
			[]string{`--set load.timeout=-5s: load.timeout: must be a duration from 1ms to 1h0m0s, got "-5s"`}},
		{"negative workers", good + "  workers: -1\n", nil,
			[]string{`s.yaml:17:12: load.workers: must be a whole number from 0 to 100000, got "-1"`}},
		{"sequential bounds", strings.Replace(good, "  stages:\n    - {rate: 50, duration: 10s}\n    - {rate: 3000/m, duration: 5s}\n",
			"  sequential: {requests: 1e12, pause: 2h}\n", 1), nil,
			[]string{
				`s.yaml:14:26: load.sequential.requests: must be a whole number from 1 to 10000000, got "1e12"`,
				`s.yaml:14:39: load.sequential.pause: must be a duration from 0s to 1h0m0s, got "2h"`,
			}},
		{"a function path", strings.Replace(good, "kind: fake\n    function: memes", "kind: named\n    function: ../../../etc/passwd", 1), []string{"targets[0].options={}"},
			[]string{`s.yaml:9:15: targets[0].function: "../../../etc/passwd" is not a function name (1 to 64 letters, digits, '-' and '_'; a function is named, not a path); the project has: ` + projectFunctions(t)}},
		{"a function that is a name", strings.Replace(good, "kind: fake\n    function: memes", "kind: named\n    function: fibonacci", 1), []string{"targets[0].options={}"}, nil},
		// The name used to run to the first ':', so this was an unknown
		// driver "auto?x=1".
		{"auto with options", strings.Replace(good, "[auto, testmeter]", "['auto?x=1', testmeter]", 1), nil,
			[]string{`s.yaml:5:10: meters[0]: bad meter spec "auto?x=1": auto takes no argument or options; to set some, name the driver, e.g. rapl:rate=100 or estimate:idle=5W`}},
		{"an estimate of NaN watts", good, []string{"meters[1]=estimate:idle=NaN"},
			[]string{`--set meters[1]=estimate:idle=NaN: meters[1]: bad meter spec "estimate:idle=NaN": idle: power "NaN": want a finite number with a unit such as 1.5W or 800mW; usage: ` + estimateUsage(t)}},
		{"an estimate of 1e308 watts", good, []string{"meters[1]=estimate:idle=1e308"},
			[]string{`--set meters[1]=estimate:idle=1e308: meters[1]: bad meter spec "estimate:idle=1e308": idle=1e308: want at most 100000 W; usage: ` + estimateUsage(t)}},
		{"pmd-usb without a path", strings.Replace(good, "testmeter]", "'pmd-usb:?baud=7']", 1), nil,
			[]string{`s.yaml:5:16: meters[1]: bad meter spec "pmd-usb:?baud=7": pmd-usb needs a device path, e.g. pmd-usb:/dev/ttyUSB0; usage: ` + usage(t, "pmd-usb")}},
		{"pmd-usb at 7 baud", strings.Replace(good, "testmeter]", "'pmd-usb:/dev/ttyUSB0?baud=7']", 1), nil,
			[]string{`s.yaml:5:16: meters[1]: bad meter spec "pmd-usb:/dev/ttyUSB0?baud=7": baud 7: the device takes 115200, 230400, 460800, 921600, 1500000 or 2000000; usage: ` + usage(t, "pmd-usb")}},
		{"modbus with an open bracket", strings.Replace(good, "testmeter]", "'modbus:[::1']", 1), nil,
			[]string{`s.yaml:5:16: meters[1]: bad meter spec "modbus:[::1": host "[::1": an IPv6 address goes in brackets, [::1] or [::1]:502; usage: ` + usage(t, "modbus")}},
		{"a request path naming a host", strings.Replace(good, "path: /,", "path: 'http://example.com/x',", 1), nil,
			[]string{`s.yaml:13:33: load.request.path: "http://example.com/x" names a host; give only the path (and ?query) that follows the target's URL`}},
		{"an input path with a control character", good, []string{`load.inputs=[{name: a, path: "/x\ny"}]`},
			[]string{`--set load.inputs=[{name: a, path: "/x\ny"}]: load.inputs[0].path: "/x\ny" holds a control character`}},
		{"a header value with a newline", strings.Replace(good, "Content-Type: application/json", `Content-Type: "a\nX-Injected: 1"`, 1), nil,
			[]string{`s.yaml:13:79: load.request.headers.Content-Type: header Content-Type: the value holds a control character`}},
		{"a header name with a space", strings.Replace(good, "Content-Type: application/json", `Content Type: json`, 1), nil,
			[]string{"s.yaml:13:79: load.request.headers.Content Type: header name \"Content Type\": use letters, digits and !#$%&'*+-.^_`|~"}},
		{"every problem at once", strings.Replace(strings.Replace(good, "repeat: 2", "repeat: 0", 1), "rate: 50,", "rate: 1e7,", 1), nil,
			[]string{
				`s.yaml:3:9: repeat: must be a whole number from 1 to 1000, got "0"`,
				`s.yaml:15:14: load.stages[0].rate: must be a positive number of requests per second from 0.000278 to 1000000, got "1e7"`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tc.yaml), tc.sets)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v (%T), want *Errors", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("%d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				found := false
				for _, l := range lines {
					found = found || l == w
				}
				if !found {
					t.Errorf("error\n%v\nhas no line\n%s", err, w)
				}
			}
		})
	}
}

func usage(t *testing.T, driver string) string {
	t.Helper()
	for _, d := range meters.Drivers() {
		if d.Name == driver {
			return d.Usage
		}
	}
	t.Fatalf("no driver %s", driver)
	return ""
}

func estimateUsage(t *testing.T) string { return usage(t, "estimate") }

func projectFunctions(t *testing.T) string {
	names, err := functions.Names(functions.FS())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, ", ")
}

// TestBadFiles: a body_file is a regular file of at most MaxBodyBytes
// inside the scenario's directory, and so is the scenario. /dev/zero grew a
// run to 3 GB before the load began; a directory failed the run after its
// directory was made.
func TestBadFiles(t *testing.T) {
	outer := t.TempDir()
	dir := filepath.Join(outer, "sc")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "bodies", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "bodies", "ok.json"), []byte(`{"id": 3}`), 0o644))
	must(os.WriteFile(filepath.Join(outer, "secret.json"), []byte(`{}`), 0o644))
	big, err := os.Create(filepath.Join(dir, "big.json"))
	must(err)
	must(big.Truncate(MaxBodyBytes + 1))
	big.Close()
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	must(os.Symlink(filepath.Join(outer, "secret.json"), filepath.Join(dir, "link.json")))
	must(os.Symlink("/dev/zero", filepath.Join(dir, "zero")))

	const bodyAt = "s.yaml:13:47: load.request.body_file: "
	cases := []struct {
		name, file string
		want       string // "" for none; the message after the field
	}{
		{"beside the scenario", "bodies/ok.json", ""},
		{"absolute, inside", filepath.Join(dir, "bodies", "ok.json"), ""},
		{"a device", "/dev/zero", "not a file the scenario may read: /dev/zero is outside the scenario's directory " + dir + "; a scenario reads only files beside it or below"},
		{"a link to a device", "zero", "not a file the scenario may read: " + filepath.Join(dir, "zero") + " is outside the scenario's directory " + dir + "; a scenario reads only files beside it or below"},
		{"a directory", "bodies/sub", "not a file the scenario may read: " + filepath.Join(dir, "bodies", "sub") + " is a directory"},
		{"the scenario's own directory", ".", "not a file the scenario may read: " + dir + " is a directory"},
		{"a fifo", "fifo", "not a file the scenario may read: " + filepath.Join(dir, "fifo") + " is not a regular file (p---------)"},
		{"too big", "big.json", "not a file the scenario may read: " + filepath.Join(dir, "big.json") + " has 16777217 bytes, more than the 16777216 allowed"},
		{"up and out", "../secret.json", "not a file the scenario may read: " + filepath.Join(outer, "secret.json") + " is outside the scenario's directory " + dir + "; a scenario reads only files beside it or below"},
		{"a link out", "link.json", "not a file the scenario may read: " + filepath.Join(dir, "link.json") + " is outside the scenario's directory " + dir + "; a scenario reads only files beside it or below"},
		{"missing", "nope.json", "cannot read " + filepath.Join(dir, "nope.json") + ": no such file or directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "s.yaml")
			src := strings.Replace(good, `body: '{"id": 1}'`, "body_file: '"+tc.file+"'", 1)
			must(os.WriteFile(path, []byte(src), 0o644))
			sc, err := ReadFile(path, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				b, err := ReadBody(sc.Load.Request.BodyFile)
				if err != nil || string(b) != `{"id": 3}` {
					t.Errorf("ReadBody(%s) = %q, %v", sc.Load.Request.BodyFile, b, err)
				}
				return
			}
			want := path[:len(path)-len("s.yaml")] + bodyAt + tc.want
			if err == nil || err.Error() != want {
				t.Errorf("error\n%v\nwant\n%s", err, want)
			}
		})
	}

	// The scenario itself.
	for _, tc := range []struct{ path, want string }{
		{"/dev/zero", "/dev/zero: not a file the scenario may read: /dev/zero is not a regular file (Dc---------)"},
		{dir, dir + ": not a file the scenario may read: " + dir + " is a directory"},
		{filepath.Join(dir, "big.json"), filepath.Join(dir, "big.json") + ": not a file the scenario may read: " + filepath.Join(dir, "big.json") + " has 16777217 bytes, more than the 1048576 allowed"},
	} {
		if _, err := ReadFile(tc.path, nil); err == nil || err.Error() != tc.want {
			t.Errorf("ReadFile(%s) = %v, want %s", tc.path, err, tc.want)
		}
	}
}
