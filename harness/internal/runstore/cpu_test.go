package runstore

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// cpu.csv comes back as written; a run without one has no CPU rows, and a
// row no run writes is excluded with a warning.
func TestCPURoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		rows  []CPU
		extra string // appended to cpu.csv by hand
		write bool
		want  []CPU
		warn  string
	}{
		{name: "no cpu.csv", write: false},
		{
			name:  "groups over two samples",
			write: true,
			rows:  []CPU{{100, "harness", 0}, {100, "target", 0}, {1_000_000_100, "harness", 0.25}, {1_000_000_100, "target", 1.5}},
			want:  []CPU{{100, "harness", 0}, {100, "target", 0}, {1_000_000_100, "harness", 0.25}, {1_000_000_100, "target", 1.5}},
		},
		{
			name:  "negative time excluded",
			write: true,
			rows:  []CPU{{100, "other", 0.5}},
			extra: "200,other,-1\n",
			want:  []CPU{{100, "other", 0.5}},
			warn:  "cpu.csv:3: excluded",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "20260101-000000-test")
			w, err := Create(dir, []byte("name: test\n"), Meta{ID: "20260101-000000-test", Started: time.Unix(1, 0)})
			if err != nil {
				t.Fatal(err)
			}
			if tc.write {
				cw, err := CreateCPU(dir)
				if err != nil {
					t.Fatal(err)
				}
				if err := cw.Add(tc.rows...); err != nil {
					t.Fatal(err)
				}
				if err := cw.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.extra != "" {
				f, _ := os.OpenFile(filepath.Join(dir, CPUFile), os.O_APPEND|os.O_WRONLY, 0)
				f.WriteString(tc.extra)
				f.Close()
			}
			w.Update(func(m *Meta) { m.Status = StatusComplete })
			w.Close()
			run, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(run.CPU, tc.want) {
				t.Errorf("CPU = %+v, want %+v", run.CPU, tc.want)
			}
			if got := strings.Join(run.Warnings, "; "); (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) {
				t.Errorf("warnings %q, want %q", got, tc.warn)
			}
		})
	}
	// The file opens in pandas and R as it is: a header, then plain rows.
	dir := t.TempDir()
	cw, _ := CreateCPU(dir)
	cw.Add(CPU{5, "dockerd", 0.01})
	cw.Close()
	b, _ := os.ReadFile(filepath.Join(dir, CPUFile))
	if string(b) != "t_ns,group,cpu_s\n5,dockerd,0.01\n" {
		t.Errorf("cpu.csv = %q", b)
	}
}
