package report

// The Replication section: a run of the scenario that replicates the
// original study (scenarios/nebula.yaml) is shown beside the study's
// published figures, metric by metric, with the ratios, our intervals, the
// machine each figure came from and what differs in method. The published
// figures and their source are data (replication/study.json), not code:
// this file only knows how to compute our side of each metric.

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/targets"
)

//go:embed replication/study.json
var studyJSON []byte

// Study is the original study's published figures (replication/study.json).
type Study struct {
	// Scenario names the scenario that replicates the study: a run of it
	// gets the Replication section.
	Scenario string            `json:"scenario"`
	Title    string            `json:"title"`
	Source   string            `json:"source"`
	Method   map[string]string `json:"method"`
	Machines []StudyMachine    `json:"machines"`
	Figures  []StudyFigure     `json:"figures"`
}

// StudyMachine is a machine the study measured on.
type StudyMachine struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// StudyFigure is one published figure: a metric on one machine, for each
// platform (Docker, Wasm) or for the machine itself (Device), with the
// ratio the study printed where it did.
type StudyFigure struct {
	Metric  string   `json:"metric"`
	Unit    string   `json:"unit"`
	Machine string   `json:"machine"`
	Docker  *float64 `json:"docker,omitempty"`
	Wasm    *float64 `json:"wasm,omitempty"`
	Device  *float64 `json:"device,omitempty"`
	Ratio   *float64 `json:"ratio,omitempty"`
}

// replicationMetric is a metric the section compares: its label and unit,
// and whether it is a figure per platform or of the machine.
type replicationMetric struct {
	ID, Label, Note, Unit string
	Device                bool
}

// replicationMetrics are the metrics in the order shown. Each study
// figure must name one of them, in its unit (the test checks).
var replicationMetrics = []replicationMetric{
	{ID: "cold_start", Label: "cold start", Unit: "ms"},
	{ID: "total_latency", Label: "total latency", Unit: "ms"},
	{ID: "energy_per_request", Label: "energy per request", Note: "whole device, no idle subtracted, as the study", Unit: "uWh"},
	{ID: "dynamic_energy_per_request", Label: "dynamic energy per request", Note: "above the idle baseline; ours only", Unit: "J"},
	{ID: "idle_power", Label: "idle power", Note: "whole device", Unit: "W", Device: true},
}

// LoadStudy reads the embedded study figures and checks them.
func LoadStudy() (*Study, error) { return parseStudy(studyJSON) }

func parseStudy(b []byte) (*Study, error) {
	var s Study
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("report: study figures: %w", err)
	}
	var problems []string
	if s.Scenario == "" || s.Source == "" {
		problems = append(problems, "scenario and source are required")
	}
	for i, f := range s.Figures {
		m := metricByID(f.Metric)
		switch {
		case m == nil:
			problems = append(problems, fmt.Sprintf("figure %d: unknown metric %q", i, f.Metric))
		case m.Unit != f.Unit:
			problems = append(problems, fmt.Sprintf("figure %d: %s is in %s, not %s", i, f.Metric, m.Unit, f.Unit))
		case m.Device && f.Device == nil, !m.Device && (f.Docker == nil || f.Wasm == nil):
			problems = append(problems, fmt.Sprintf("figure %d: %s lacks its value(s)", i, f.Metric))
		}
		if !slices.ContainsFunc(s.Machines, func(mm StudyMachine) bool { return mm.ID == f.Machine }) {
			problems = append(problems, fmt.Sprintf("figure %d: unknown machine %q", i, f.Machine))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("report: study figures: %s", strings.Join(problems, "; "))
	}
	return &s, nil
}

func metricByID(id string) *replicationMetric {
	for i := range replicationMetrics {
		if replicationMetrics[i].ID == id {
			return &replicationMetrics[i]
		}
	}
	return nil
}

func (s *Study) machine(id string) string {
	for _, m := range s.Machines {
		if m.ID == id {
			return m.Name
		}
	}
	return id
}

// Replication is the section for one run: per metric, the study's rows
// and ours.
type Replication struct {
	RunID string `json:"run_id"`
	// Study names the study and where its figures come from.
	Study  string `json:"study"`
	Source string `json:"source"`
	// Machine is ours, in words; Meter the meter our energy came from.
	Machine  string `json:"machine"`
	Meter    string `json:"meter"`
	Estimate bool   `json:"estimate"`
	// Wasm and Docker say which of our targets make each side.
	Wasm   string           `json:"wasm"`
	Docker string           `json:"docker"`
	Rows   []ReplicationRow `json:"rows"`
	// Method says in a few sentences what differs between the study's
	// method and ours.
	Method []string `json:"method"`
	// Notes are caveats about our figures (too few repetitions, a side
	// that did not run, an invalid run).
	Notes []string `json:"notes,omitempty"`
}

// ReplicationRow is one metric on one machine: the study's or ours.
// Values and intervals are NaN (null in JSON) where there are none.
type ReplicationRow struct {
	Metric string `json:"metric"`
	Label  string `json:"label"`
	// Note says what the metric holds, where the label does not.
	Note    string `json:"note,omitempty"`
	Unit    string `json:"unit"`
	Ours    bool   `json:"ours"`
	Machine string `json:"machine"`
	// Docker, Wasm and Device are the figures; for ours with a 95% t
	// interval over the repetitions.
	Docker energy.Interval `json:"docker"`
	Wasm   energy.Interval `json:"wasm"`
	Device energy.Interval `json:"device"`
	// Ratio is Docker / Wasm: the study's as published (or as its figures
	// give it), ours the geometric mean of the per-repetition ratios with
	// a t interval on their logarithm.
	Ratio energy.Interval `json:"ratio"`
	// VsOurs is, on a study row, our figure over this one, per side.
	VsOursDocker energy.Float `json:"ours_over_study_docker"`
	VsOursWasm   energy.Float `json:"ours_over_study_wasm"`
	VsOursDevice energy.Float `json:"ours_over_study_device"`
	// Span is, on the first row of a metric, how many rows it has (the
	// page writes the metric once); 0 on the others.
	Span int `json:"-"`
}

// Replicate is the Replication section of a run, or nil when the run is
// not of the study's scenario (or the study figures cannot be read: the
// test keeps them readable).
func Replicate(run *runstore.Run, sum *energy.Summary) *Replication {
	st, err := LoadStudy()
	if err != nil || run == nil || sum == nil || run.Meta.Scenario != st.Scenario {
		return nil
	}
	return replicate(st, run, sum)
}

// side is the targets that make one platform of ours.
type side struct {
	targets map[string]bool
	names   []string
}

func (s *side) add(t runstore.TargetMeta) {
	if s.targets == nil {
		s.targets = map[string]bool{}
	}
	s.targets[t.Name] = true
	var build []string
	for _, b := range []string{t.Variant, t.Language} {
		if b != "" {
			build = append(build, b)
		}
	}
	name := t.Name
	if len(build) > 0 {
		name += " (" + strings.Join(build, ", ") + ")"
	}
	s.names = append(s.names, name)
}

func replicate(st *Study, run *runstore.Run, sum *energy.Summary) *Replication {
	rp := &Replication{RunID: sum.RunID, Study: st.Title, Source: st.Source, Machine: ourMachine(run.Meta.Host)}
	ourRow := "ours: " + run.Meta.Host.Hostname
	var wasm, docker side
	var snapshots []string
	dockerMethods := map[string]bool{}
	for _, t := range run.Meta.Targets {
		if !t.Skipped && t.Kind == "wasm" && t.Mode == string(targets.Snapshot) {
			snapshots = append(snapshots, t.Name)
		}
		// The study started a fresh instance with its runtime on every
		// request: its Wasm side is the cold targets. A snapshot target
		// does not initialise the runtime per request, so its start-up is
		// not the study's; the start-up ratios give its own.
		if t.Skipped || t.Mode != string(targets.Cold) {
			continue
		}
		switch t.Kind {
		case "wasm":
			wasm.add(t)
		case "docker-node":
			docker.add(t)
			if m, ok := t.Report["cold_start_method"].(string); ok {
				dockerMethods[m] = true
			}
		}
	}
	rp.Wasm, rp.Docker = strings.Join(wasm.names, ", "), strings.Join(docker.names, ", ")
	if rp.Wasm == "" {
		rp.Wasm = "none ran"
		rp.Notes = append(rp.Notes, "No Wasm target ran cold: the Wasm side has no figures.")
	}
	if rp.Docker == "" {
		rp.Docker = "none ran"
		rp.Notes = append(rp.Notes, "No docker-node target ran cold (is the Docker Engine there?): the Docker side has no figures.")
	}
	if len(snapshots) > 0 {
		rp.Notes = append(rp.Notes, fmt.Sprintf("Not on the Wasm side: %s (snapshot). The study initialised the language runtime on every request, as cold does; "+
			"a snapshot initialises it once at deploy. Its own Docker/Wasm start-up ratio is among the start-up ratios.", strings.Join(snapshots, ", ")))
	}
	meter := primaryMeter(sum)
	for _, m := range sum.Meters {
		if m.Name == meter {
			rp.Meter, rp.Estimate = m.Label, m.Estimate
		}
	}
	if minReps := energy.DefaultOptions().MinReps; run.Meta.Repeat < minReps {
		rp.Notes = append(rp.Notes, fmt.Sprintf("%d repetition(s): our figures have no interval (%d or more give one).", run.Meta.Repeat, minReps))
	}
	if run.Meta.Validity != nil && !run.Meta.Validity.Valid {
		rp.Notes = append(rp.Notes, "This run failed validity checks (its problems are listed with the run): our figures are shown, but they are not evidence.")
	}

	ours := map[string]ReplicationRow{}
	for _, m := range replicationMetrics {
		nan := energy.Float(math.NaN())
		row := ReplicationRow{Metric: m.ID, Label: m.Label, Note: m.Note, Unit: m.Unit, Ours: true, Machine: ourRow,
			VsOursDocker: nan, VsOursWasm: nan, VsOursDevice: nan}
		if m.Device {
			row.Device = repInterval(idlePerRep(sum, meter))
			row.Docker, row.Wasm, row.Ratio = noFigure(""), noFigure(""), noFigure("")
		} else {
			d, w := perRep(m.ID, run, sum, meter, &docker), perRep(m.ID, run, sum, meter, &wasm)
			row.Docker, row.Wasm = repInterval(d), repInterval(w)
			row.Ratio = energy.PairedRatio(d, w, energy.DefaultOptions())
			row.Device = noFigure("")
		}
		ours[m.ID] = row
	}
	for _, m := range replicationMetrics {
		first := len(rp.Rows)
		for _, f := range st.Figures {
			if f.Metric != m.ID {
				continue
			}
			row := ReplicationRow{Metric: m.ID, Label: m.Label, Note: m.Note, Unit: m.Unit, Machine: "study: " + st.machine(f.Machine),
				Docker: published(f.Docker), Wasm: published(f.Wasm), Device: published(f.Device), Ratio: noFigure("")}
			switch {
			case f.Ratio != nil:
				row.Ratio = published(f.Ratio)
			case f.Docker != nil && f.Wasm != nil && *f.Wasm > 0:
				row.Ratio = energy.Interval{Value: energy.Float(*f.Docker / *f.Wasm), Lo: energy.Float(math.NaN()), Hi: energy.Float(math.NaN()), Method: "the study's figures divided"}
			}
			o := ours[m.ID]
			row.VsOursDocker = over(o.Docker.Value, row.Docker.Value)
			row.VsOursWasm = over(o.Wasm.Value, row.Wasm.Value)
			row.VsOursDevice = over(o.Device.Value, row.Device.Value)
			rp.Rows = append(rp.Rows, row)
		}
		rp.Rows = append(rp.Rows, ours[m.ID])
		rp.Rows[first].Span = len(rp.Rows) - first
	}
	rp.Method = methodNotes(st, rp, dockerMethods)
	return rp
}

// ourMachine describes the host as the study described its machines.
func ourMachine(h runstore.Host) string {
	var parts []string
	if h.CPUModel != "" {
		parts = append(parts, h.CPUModel)
	}
	if h.Cores > 0 {
		parts = append(parts, fmt.Sprintf("%d cores", h.Cores))
	}
	if h.Virtual != "" {
		parts = append(parts, h.Virtual)
	}
	s := h.Hostname
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

// methodNotes says what differs between the study's method and this run's.
func methodNotes(st *Study, rp *Replication, dockerMethods map[string]bool) []string {
	meter := rp.Meter
	if meter == "" {
		meter = "no meter"
	}
	if rp.Estimate {
		meter += " (an estimate from a model, not a measurement)"
	}
	docker := "docker-node"
	switch {
	case dockerMethods["stdin"] && len(dockerMethods) == 1:
		docker += " with cold_start_method stdin, the study's docker run --rm -i through the Engine API (start-up: create to the function loaded)"
	case len(dockerMethods) > 0:
		docker += " with cold_start_method " + strings.Join(slices.Sorted(maps.Keys(dockerMethods)), ", ") +
			" (http: a container serving HTTP per request, health-checked; not the study's docker run --rm -i)"
	}
	return []string{
		fmt.Sprintf("The study: %s; against %s; %s; meter: %s; %s; %s.",
			st.Method["wasm"], st.Method["docker"], st.Method["load"], st.Method["meter"], st.Method["energy"], st.Method["statistic"]),
		fmt.Sprintf("Ours, on %s: Purify (wazero, in process) with %s against %s; meter: %s.", rp.Machine, rp.Wasm, docker, meter),
		"What differs: the machine (see each row); the meter and what it covers (the study's PDU the whole device at the wall; RAPL the processor package, " +
			"not the whole device; the estimate a model of it); the energy is integrated over each load phase's steady window and shared among its requests " +
			"(the study kept a sample only when it fell wholly inside a request); the idle baseline is measured, so dynamic energy (idle subtracted) " +
			"stands beside the study's whole-device figure; each figure of ours is the mean of per-repetition means, with a 95% t interval over the repetitions, " +
			"and each repetition ran the targets in a fresh order.",
	}
}

func published(v *float64) energy.Interval {
	if v == nil {
		return noFigure("")
	}
	return energy.Interval{Value: energy.Float(*v), Lo: energy.Float(math.NaN()), Hi: energy.Float(math.NaN()), N: 0, Method: "published"}
}

func noFigure(reason string) energy.Interval {
	nan := energy.Float(math.NaN())
	return energy.Interval{Value: nan, Lo: nan, Hi: nan, Method: "none", Reason: reason}
}

func over(a, b energy.Float) energy.Float {
	if !a.OK() || !b.OK() || b == 0 {
		return energy.Float(math.NaN())
	}
	return a / b
}

// perRep is one value per repetition of metric for the targets of s,
// by repetition number; a repetition without the figure is absent.
func perRep(metric string, run *runstore.Run, sum *energy.Summary, meter string, s *side) map[int]float64 {
	out := map[int]float64{}
	if len(s.targets) == 0 {
		return out
	}
	switch metric {
	case "cold_start", "total_latency":
		total, n := map[int]float64{}, map[int]int{}
		for _, r := range run.Requests {
			if !s.targets[r.Target] || !strings.HasPrefix(r.Phase, runstore.PhaseLoad) || !r.OK() {
				continue
			}
			v := float64(r.LatencyNs) / 1e6
			if metric == "cold_start" {
				if !r.Cold || r.StartUpNs <= 0 {
					continue
				}
				v = float64(r.StartUpNs) / 1e6
			}
			total[r.Rep] += v
			n[r.Rep]++
		}
		for rep, c := range n {
			out[rep] = total[rep] / float64(c)
		}
	case "energy_per_request", "dynamic_energy_per_request":
		j, n, bad := map[int]float64{}, map[int]float64{}, map[int]bool{}
		for _, t := range sum.Targets {
			if !s.targets[t.Name] {
				continue
			}
			for _, p := range t.Phases {
				if !strings.HasPrefix(p.Phase, runstore.PhaseLoad) {
					continue
				}
				for _, e := range p.Energy {
					if e.Meter != meter {
						continue
					}
					for _, re := range e.Reps {
						v := re.TotalJ
						if metric == "dynamic_energy_per_request" {
							v = re.DynamicJ
							bad[re.Rep] = bad[re.Rep] || re.BelowResolution
						}
						if !v.OK() || !re.Requests.OK() {
							bad[re.Rep] = true
							continue
						}
						j[re.Rep] += float64(v)
						n[re.Rep] += float64(re.Requests)
					}
				}
			}
		}
		for rep, c := range n {
			if !bad[rep] && c > 0 {
				out[rep] = j[rep] / c
				if metric == "energy_per_request" {
					out[rep] = energy.UWh(out[rep])
				}
			}
		}
	}
	return out
}

// idlePerRep is the machine's idle power per repetition on meter: the
// mean over the targets of each one's idle power in its i-th idle phase.
func idlePerRep(sum *energy.Summary, meter string) map[int]float64 {
	total, n := map[int]float64{}, map[int]int{}
	for _, t := range sum.Targets {
		for _, is := range t.Idle {
			if is.Meter != meter {
				continue
			}
			for i, w := range is.PerW {
				if w.OK() {
					total[i] += float64(w)
					n[i]++
				}
			}
		}
	}
	out := map[int]float64{}
	for i, c := range n {
		out[i] = total[i] / float64(c)
	}
	return out
}

// values are m's values in repetition order, the finite ones.
func values(m map[int]float64) []float64 {
	var out []float64
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if x := m[k]; !math.IsNaN(x) && !math.IsInf(x, 0) {
			out = append(out, x)
		}
	}
	return out
}

// repInterval is the mean of per-repetition values with a 95% t interval
// (from three repetitions on).
func repInterval(byRep map[int]float64) energy.Interval {
	vs := values(byRep)
	if len(vs) == 0 {
		return noFigure("no repetition has this figure")
	}
	nan := energy.Float(math.NaN())
	if len(vs) < energy.DefaultOptions().MinReps {
		return energy.Interval{Value: energy.Float(energy.Mean(vs)), Lo: nan, Hi: nan, N: len(vs), Method: "none",
			Reason: fmt.Sprintf("%d repetition(s): no interval", len(vs))}
	}
	m, lo, hi := energy.TInterval(vs, 0.95)
	return energy.Interval{Value: energy.Float(m), Lo: energy.Float(lo), Hi: energy.Float(hi), N: len(vs),
		Method: fmt.Sprintf("t over %d repetitions", len(vs))}
}

// fmtRepl is a figure of the Replication section in its unit: "324.7 ms",
// with " [lo, hi]" where there is an interval; "–" where there is none.
func fmtRepl(iv energy.Interval, unit string) string {
	if !iv.Value.OK() {
		return "–"
	}
	v := float64(iv.Value)
	if unit == "J" {
		s := fmtJ(iv.Value)
		if iv.Lo.OK() && iv.Hi.OK() {
			s += " [" + fmtJ(iv.Lo) + ", " + fmtJ(iv.Hi) + "]"
		}
		return s
	}
	u := " " + strings.Replace(unit, "uWh", "µWh", 1)
	if unit == "x" {
		u = "×"
	}
	if iv.Method == "published" {
		// As the study printed it, every digit.
		return strconv.FormatFloat(v, 'f', -1, 64) + u
	}
	s := sig(v) + u
	if iv.Lo.OK() && iv.Hi.OK() {
		s += " [" + sig(float64(iv.Lo)) + ", " + sig(float64(iv.Hi)) + "]"
	}
	return s
}

// fmtTimes is "0.42×", or "" for none.
func fmtTimes(f energy.Float) string {
	if !f.OK() {
		return ""
	}
	return sig(float64(f)) + "×"
}

// PrintReplication writes the section as text (harness compare).
func PrintReplication(w io.Writer, rp *Replication) {
	fmt.Fprintf(w, "\nReplication of the original study (run %s)\n", rp.RunID)
	fmt.Fprintf(w, "  study: %s\n  source: %s\n", rp.Study, rp.Source)
	fmt.Fprintf(w, "  ours: on %s; Wasm = %s; Docker = %s; meter %s\n", rp.Machine, rp.Wasm, rp.Docker, orNone(rp.Meter))
	for _, row := range rp.Rows {
		vs := ""
		if t := row.VsText(); t != "" {
			vs = "  (ours/this: " + t + ")"
		}
		if row.IsDevice() {
			fmt.Fprintf(w, "  %-26s %-44s device %s%s\n", row.Metric, row.Machine, row.DeviceText(), vs)
			continue
		}
		ratio := row.RatioText()
		if row.Ours && !row.Ratio.Lo.OK() && row.Ratio.Reason != "" {
			ratio += " (" + row.Ratio.Reason + ")"
		}
		fmt.Fprintf(w, "  %-26s %-44s Docker %s  Wasm %s  Docker/Wasm %s%s\n", row.Metric, row.Machine,
			row.DockerText(), row.WasmText(), ratio, vs)
	}
	for _, m := range rp.Method {
		fmt.Fprintf(w, "  %s\n", m)
	}
	for _, n := range rp.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// The texts of a row, for templates/replication.html.

// IsDevice reports whether the row is a figure of the machine (idle
// power) rather than one per platform.
func (r ReplicationRow) IsDevice() bool { m := metricByID(r.Metric); return m != nil && m.Device }

// UnitText is the row's unit as people read it.
func (r ReplicationRow) UnitText() string { return strings.Replace(r.Unit, "uWh", "µWh", 1) }

// DockerText, WasmText, DeviceText and RatioText are the row's figures.
func (r ReplicationRow) DockerText() string { return fmtRepl(r.Docker, r.Unit) }

// WasmText is the Wasm figure.
func (r ReplicationRow) WasmText() string { return fmtRepl(r.Wasm, r.Unit) }

// DeviceText is the machine's figure.
func (r ReplicationRow) DeviceText() string { return fmtRepl(r.Device, r.Unit) }

// RatioText is Docker / Wasm.
func (r ReplicationRow) RatioText() string { return fmtRepl(r.Ratio, "x") }

// VsText is, on a study row, our figures over its figures.
func (r ReplicationRow) VsText() string { return strings.Join(r.VsParts(), ", ") }

// VsParts are VsText's parts, one per side.
func (r ReplicationRow) VsParts() []string {
	var parts []string
	for _, p := range []struct {
		name string
		f    energy.Float
	}{{"Docker", r.VsOursDocker}, {"Wasm", r.VsOursWasm}, {"idle", r.VsOursDevice}} {
		if s := fmtTimes(p.f); s != "" {
			parts = append(parts, p.name+" "+s)
		}
	}
	return parts
}
