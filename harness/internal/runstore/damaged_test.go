package runstore

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rewrite reads the run directory src and writes it again through
// today's Writer into a new directory, as a run leaves it: the rows, then
// status complete and Close. edit, when not nil, changes run.json first.
// From format1Dir it makes a real small run whose run.json counts its
// rows, for damaging.
func rewrite(t testing.TB, src string, edit func(*Meta)) string {
	t.Helper()
	run, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&run.Meta)
	}
	dir := filepath.Join(t.TempDir(), filepath.Base(src))
	w, err := Create(dir, run.Scenario, run.Meta)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range run.Requests {
		if err := w.AddRequest(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range run.Samples {
		if err := w.AddSample(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Update(func(m *Meta) { m.Status = StatusComplete }); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// editLines rewrites the file at path through fn, which gets its lines
// (the header is lines[0], file line 1) without their newlines.
func editLines(t testing.TB, path string, fn func([]string) []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	lines = fn(lines)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// setField sets field i of the CSV line (which has no quoted fields).
func setField(line string, i int, v string) string {
	f := strings.Split(line, ",")
	f[i] = v
	return strings.Join(f, ",")
}

func truncateTo(t testing.TB, path string, size func(int64) int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size(fi.Size())); err != nil {
		t.Fatal(err)
	}
}

// TestWriterCountsRows: run.json records the rows the files hold, and
// while the run goes never more than they hold.
func TestWriterCountsRows(t *testing.T) {
	dir := rewrite(t, format1Dir, nil)
	run, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if w := run.Meta.Written; w == nil || *w != (Written{Requests: 250, Samples: 508}) {
		t.Errorf("run.json written = %+v, want 250 requests and 508 samples", w)
	}

	live := filepath.Join(t.TempDir(), "live")
	w, err := Create(live, nil, Meta{ID: "live", Meters: []MeterMeta{{Name: "m"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.AddSample(Sample{Meter: "m", TNs: 1, Watts: 1, Joules: math.NaN()})
	w.AddSample(Sample{Meter: "m", TNs: 2, Watts: 1, Joules: math.NaN()})
	if err := w.Update(nil); err != nil { // a phase boundary
		t.Fatal(err)
	}
	w.AddSample(Sample{Meter: "m", TNs: 3, Watts: 1, Joules: math.NaN()}) // buffered, not yet in run.json
	run, err = Load(live)
	if err != nil {
		t.Fatal(err)
	}
	if got := run.Meta.Written; got == nil || *got != (Written{Samples: 2}) {
		t.Errorf("mid-run written = %+v, want the 2 samples flushed at the last update", got)
	}
}

// TestLoadDamagedFiles: a file that holds fewer rows than run.json
// records written (cut short after the run: half the requests of a
// phase, twice its joules per request) is damage, told apart from a short
// run, and said loudly: a warning and a problem that makes the run
// invalid. A run killed while writing holds more rows than recorded, and
// is not damaged.
func TestLoadDamagedFiles(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		// want is the damage warning, "" for none; rows and recorded are
		// the problem's Observed and Limit.
		want            string
		rows, recorded  float64
		wantCutShortRow bool
	}{
		{name: "intact", damage: func(*testing.T, string) {}},
		{
			name: "requests.csv cut to half its bytes",
			damage: func(t *testing.T, dir string) {
				truncateTo(t, filepath.Join(dir, RequestsFile), func(n int64) int64 { return n / 2 })
			},
			want: "requests.csv is damaged", recorded: 250, wantCutShortRow: true,
		},
		{
			name: "half of wasm-cold's load rows gone, at a row boundary",
			damage: func(t *testing.T, dir string) {
				editLines(t, filepath.Join(dir, RequestsFile), func(l []string) []string { return l[:201] })
			},
			want: "requests.csv is damaged: it holds 200 rows, but run.json records 250 written", rows: 200, recorded: 250,
		},
		{
			name: "samples.csv lost its last 100 rows",
			damage: func(t *testing.T, dir string) {
				editLines(t, filepath.Join(dir, SamplesFile), func(l []string) []string { return l[:len(l)-100] })
			},
			want: "samples.csv is damaged: it holds 408 rows, but run.json records 508 written", rows: 408, recorded: 508,
		},
		{
			name: "samples appended after the run",
			damage: func(t *testing.T, dir string) {
				editLines(t, filepath.Join(dir, SamplesFile), func(l []string) []string { return append(l, l[len(l)-1]) })
			},
			want: "samples.csv is damaged: it holds 509 rows, but run.json records 508 written when the run ended", rows: 509, recorded: 508,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := rewrite(t, format1Dir, nil)
			tt.damage(t, dir)
			run, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			var damage, cut []string
			for _, w := range run.Warnings {
				if strings.Contains(w, "damaged") {
					damage = append(damage, w)
				}
				if strings.Contains(w, "last row cut short") {
					cut = append(cut, w)
				}
			}
			if tt.want == "" {
				if len(run.Warnings) > 0 || run.Meta.Validity != nil {
					t.Errorf("intact run: warnings %q, validity %+v", run.Warnings, run.Meta.Validity)
				}
				return
			}
			if len(damage) != 1 || !strings.HasPrefix(damage[0], tt.want) {
				t.Errorf("damage warnings %q, want one starting %q", damage, tt.want)
			}
			if (len(cut) > 0) != tt.wantCutShortRow {
				t.Errorf("cut-short warnings %q, want some: %v", cut, tt.wantCutShortRow)
			}
			v := run.Meta.Validity
			if v == nil || v.Valid || len(v.Problems) != 1 {
				t.Fatalf("validity %+v, want invalid with one problem", v)
			}
			p := v.Problems[0]
			if p.Check != CheckFiles || p.Phase != "" || p.Limit != tt.recorded || (tt.rows != 0 && p.Observed != tt.rows) || p.Message != damage[0] {
				t.Errorf("problem %+v, want %s for the whole run, %v rows of %v recorded, the warning as message", p, CheckFiles, tt.rows, tt.recorded)
			}
		})
	}
}

// TestLoadKilledRunNotDamaged: rows flushed after run.json was last
// written (a run killed mid-phase) are more than it records, which is no
// damage while it says running.
func TestLoadKilledRunNotDamaged(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "killed")
	w, err := Create(dir, nil, Meta{ID: "killed", Meters: []MeterMeta{{Name: "m"}}})
	if err != nil {
		t.Fatal(err)
	}
	w.AddSample(Sample{Meter: "m", TNs: 1, Watts: 1, Joules: math.NaN()})
	w.Update(nil)
	w.AddSample(Sample{Meter: "m", TNs: 2, Watts: 1, Joules: math.NaN()})
	w.Flush() // the once-a-second flush; then the kill
	run, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Samples) != 2 || run.Meta.Validity != nil || len(run.Warnings) != 1 || !strings.Contains(run.Warnings[0], "killed") {
		t.Errorf("%d samples, validity %+v, warnings %q; want 2, none, only the killed warning", len(run.Samples), run.Meta.Validity, run.Warnings)
	}
}

// TestLoadExcludesImpossibleRows: rows that parse but hold what no run
// writes are excluded, each kind with a warning naming the rows' lines;
// none is used or dropped silently.
func TestLoadExcludesImpossibleRows(t *testing.T) {
	const pmd = "pmd-usb:/tmp/rsfix/pmd"
	// Lines (1-based, the header is 1) of the fixture's samples.csv:
	// 2-6 are the estimate's, 7-14 pmd-usb's (channels 0-3, twice).
	tests := []struct {
		name    string
		file    string
		edit    func(l []string)
		want    []string // the warnings, whole
		dropped int      // rows of file excluded
	}{
		{
			name: "negative latency", file: RequestsFile,
			edit: func(l []string) { l[29] = setField(l[29], 5, "-5000") },
			want: []string{"requests.csv: 1 row with a negative latency_ns: excluded from the analysis (line 30)"}, dropped: 1,
		},
		{
			name: "negative latencies across a phase", file: RequestsFile,
			edit: func(l []string) {
				for i := 26; i < 126; i++ {
					l[i] = setField(l[i], 5, "-1")
				}
			},
			want: []string{"requests.csv: 100 rows with a negative latency_ns: excluded from the analysis (lines 27, 28, 29, 30, 31, 32, 33, 34, 35, 36 and 90 more)"}, dropped: 100,
		},
		{
			name: "undeclared target", file: RequestsFile,
			edit: func(l []string) { l[3] = setField(l[3], 0, "ghost") },
			want: []string{`requests.csv: 1 row naming target "ghost", which run.json does not declare: excluded from the analysis (line 4)`}, dropped: 1,
		},
		{
			name: "phase run.json does not record", file: RequestsFile,
			edit: func(l []string) { l[3] = setField(l[3], 2, "7") },
			want: []string{"requests.csv: 1 row in phase wasm/warmup/7, which run.json does not record: excluded from the analysis (line 4)"}, dropped: 1,
		},
		{
			name: "NaN watts and joules", file: SamplesFile,
			edit: func(l []string) { l[1] = setField(setField(l[1], 3, "NaN"), 4, "NaN") },
			want: []string{`samples.csv: 1 row of meter "estimate:rate=10" channel 0 with no reading (watts and joules both NaN): excluded from the analysis (line 2)`}, dropped: 1,
		},
		{
			name: "NaN watts beside joules is a reading", file: SamplesFile,
			edit: func(l []string) { l[1] = setField(l[1], 3, "NaN") },
		},
		{
			name: "infinite watts", file: SamplesFile,
			edit: func(l []string) { l[2] = setField(l[2], 3, "+Inf"); l[3] = setField(l[3], 3, "-Inf") },
			want: []string{`samples.csv: 2 rows of meter "estimate:rate=10" channel 0 with an infinite reading: excluded from the analysis (lines 3, 4)`}, dropped: 2,
		},
		{
			name: "negative watts", file: SamplesFile,
			edit: func(l []string) { l[8] = setField(l[8], 3, "-1267") },
			want: []string{`samples.csv: 1 row of meter "pmd-usb:/tmp/rsfix/pmd" channel 2 with negative watts: excluded from the analysis (line 9)`}, dropped: 1,
		},
		{
			name: "undeclared meter", file: SamplesFile,
			edit: func(l []string) {
				for _, i := range []int{1, 2, 6} {
					l[i] = setField(l[i], 0, "rapl")
				}
			},
			want: []string{`samples.csv: 3 rows naming meter "rapl", which run.json does not declare: excluded from the analysis (lines 2, 3, 7)`}, dropped: 3,
		},
		{
			name: "undeclared channel", file: SamplesFile,
			edit: func(l []string) { l[6] = setField(l[6], 1, "7") },
			want: []string{`samples.csv: 1 row naming channel 7 of meter "pmd-usb:/tmp/rsfix/pmd", which declares 4 channels: excluded from the analysis (line 7)`}, dropped: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := rewrite(t, format1Dir, nil)
			editLines(t, filepath.Join(dir, tt.file), func(l []string) []string {
				if tt.file == SamplesFile && !strings.HasPrefix(l[6], pmd+",0,") {
					t.Fatalf("fixture moved: line 7 is %q", l[6])
				}
				tt.edit(l)
				return l
			})
			run, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(run.Warnings, tt.want) {
				t.Errorf("warnings\n%q\nwant\n%q", run.Warnings, tt.want)
			}
			wantReq, wantSmp := 250, 508
			if tt.file == RequestsFile {
				wantReq -= tt.dropped
			} else {
				wantSmp -= tt.dropped
			}
			if len(run.Requests) != wantReq || len(run.Samples) != wantSmp {
				t.Errorf("%d requests, %d samples; want %d, %d", len(run.Requests), len(run.Samples), wantReq, wantSmp)
			}
			if run.Meta.Validity != nil {
				t.Errorf("validity %+v: rows excluded with a warning leave the files whole", run.Meta.Validity)
			}
		})
	}
}

// TestNegativeWithinStep: a reading a little below zero, within the
// meter's power step, is a sensor's offset around zero and is kept.
func TestNegativeWithinStep(t *testing.T) {
	dir := rewrite(t, format1Dir, func(m *Meta) { m.Meters[1].Precision.PowerStepW = 0.59 })
	editLines(t, filepath.Join(dir, SamplesFile), func(l []string) []string {
		l[8] = setField(l[8], 3, "-0.3")
		l[9] = setField(l[9], 3, "-0.6")
		return l
	})
	run, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`samples.csv: 1 row of meter "pmd-usb:/tmp/rsfix/pmd" channel 3 with negative watts (below -0.59 W, the meter's power step): excluded from the analysis (line 10)`}
	if !slices.Equal(run.Warnings, want) || len(run.Samples) != 507 {
		t.Errorf("warnings %q, %d samples; want %q and 507", run.Warnings, len(run.Samples), want)
	}
}

// BenchmarkLoad reads the fixture run: the row checks cost little.
func BenchmarkLoad(b *testing.B) {
	dir := rewrite(b, format1Dir, nil)
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
