package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
)

// Carbon per request (the Software Carbon Intensity method) wherever a
// run is shown: a table per meter in the report, lines under the console
// table, columns of the CSV and rows of compare. Without a carbon: block
// there are no figures, and each of them says how to add one.

// gUnit picks a prefix for grams of CO2e so that a magnitude reads 1-999.
func gUnit(a float64) (scale float64, name string) { return prefixed(a, 1e-12, "gCO2e") }

// zeroG is the magnitude under which grams are rounding residue: the
// carbon of zeroJ at the dirtiest grid is above it.
const zeroG = 1e-15

// fmtG is grams of CO2e with a prefix and three significant digits:
// "2.31 µgCO2e".
func fmtG(f energy.Float) string {
	if !f.OK() {
		return "–"
	}
	v := float64(f)
	if math.Abs(v) < zeroG {
		return "0 gCO2e"
	}
	k, u := gUnit(v)
	return sig(v*k) + " " + u
}

var gramsUnit = unit{scale: gUnit, zero: zeroG, zeroS: "0 gCO2e", one: fmtG}

// fmtGInterval is "2.31 µgCO2e [2.10, 2.52]", or "below resolution".
func fmtGInterval(iv energy.Interval) string {
	v, b := intervalPartsIn(iv, gramsUnit)
	if b == "" {
		return v
	}
	return v + " " + b
}

// fmtGInterval2 is fmtGInterval on two lines for a table cell.
func fmtGInterval2(iv energy.Interval) template.HTML {
	v, b := intervalPartsIn(iv, gramsUnit)
	if b == "" {
		return template.HTML(template.HTMLEscapeString(v))
	}
	return template.HTML(template.HTMLEscapeString(v) + `<br><small>` + template.HTMLEscapeString(b) + `</small>`)
}

// fmtIntensity is an intensity or its range over the windows:
// "400 gCO2e/kWh", "mean 312 (250–400) gCO2e/kWh".
func fmtIntensity(c *energy.Carbon) string {
	if !c.IntensityGPerKWh.OK() {
		return "–"
	}
	if c.IntensityMin == c.IntensityMax {
		return sig(float64(c.IntensityGPerKWh)) + " gCO2e/kWh"
	}
	return fmt.Sprintf("mean %s (%s–%s) gCO2e/kWh", sig(float64(c.IntensityGPerKWh)), sig(float64(c.IntensityMin)), sig(float64(c.IntensityMax)))
}

// NoCarbon is what every output says of a run without a carbon: block.
const NoCarbon = "No carbon figures: the scenario has no carbon: block, and no default can know your grid. Add carbon: {intensity: G} with your grid's carbon intensity in gCO2e/kWh (or intensity_file: FILE.csv, a time series of timestamp,gCO2e/kWh) and, for the hardware's share, embodied: {total_kg, lifetime_years}; see the README, section Carbon."

// carbonTable is one meter's carbon figures.
type carbonTable struct {
	ID    string
	Meter energy.MeterSummary
	Rows  []carbonRow
}

type carbonRow struct {
	Target, Mode, Phase string
	C                   *energy.Carbon
	Mark                mark
}

func carbonTables(sum *energy.Summary, v validity) []carbonTable {
	if sum.Carbon == nil {
		return nil
	}
	var out []carbonTable
	for i, m := range sum.Meters {
		ct := carbonTable{ID: "carbon-table", Meter: m}
		if i > 0 {
			ct.ID += "-" + slug(m.Name)
		}
		for _, t := range sum.Targets {
			for j := range t.Phases {
				if e := t.Phases[j].Meter(m.Name); e != nil && e.Carbon != nil {
					ct.Rows = append(ct.Rows, carbonRow{t.Name, t.Mode, t.Phases[j].Phase, e.Carbon, v.Mark(t.Name, t.Phases[j].Phase, 0)})
				}
			}
		}
		if len(ct.Rows) > 0 {
			out = append(out, ct)
		}
	}
	return out
}

// printCarbon writes the console's carbon lines: one per target, phase
// and meter, SCI per request first, then its parts; or how to get them.
func printCarbon(w io.Writer, s *energy.Summary) {
	if s.Carbon == nil {
		fmt.Fprintln(w, NoCarbon)
		return
	}
	fmt.Fprintf(w, "\nCarbon per request (SCI, ISO/IEC 21031:2024), grid %s:\n", s.Carbon.Intensity)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tphase\tmeter\tSCI/request (95% CI)\tper 1,000 requests\tE x I\tM\tSCI from total energy")
	for _, t := range s.Targets {
		for _, p := range t.Phases {
			for _, e := range p.Energy {
				c := e.Carbon
				if c == nil {
					continue
				}
				label := e.Label
				if c.Estimate && !strings.Contains(label, "estimate") {
					label += " (estimate)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, p.Phase, label,
					fmtGInterval(c.SCIPerRequest), fmtGInterval(c.SCIPer1000Requests),
					fmtGInterval(c.OperationalPerRequest), embodiedText(c), fmtGInterval(c.TotalSCIPerRequest))
			}
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "E is the dynamic energy (above idle); the last column takes the whole device's. The report states the method.")
}

// embodiedText is M per request, or why it is not counted.
func embodiedText(c *energy.Carbon) string {
	if !c.EmbodiedCounted {
		return "not given"
	}
	return fmtGInterval(c.EmbodiedPerRequest)
}

// CarbonCSVHeader are the carbon columns at the end of the summary CSV,
// in gCO2e per request; NaN where the run has no carbon: block or the
// figure is below the meter's resolution (sci_below_resolution).
var CarbonCSVHeader = []string{
	"carbon_intensity_g_per_kwh", "pue",
	"sci_g_per_request", "sci_g_per_request_lo", "sci_g_per_request_hi", "sci_g_per_1000_requests",
	"operational_g_per_request", "embodied_g_per_request",
	"total_sci_g_per_request", "total_sci_g_per_request_lo", "total_sci_g_per_request_hi",
	"sci_below_resolution",
}

// carbonCSV is the carbon columns of one row.
func carbonCSV(c *energy.Carbon) []string {
	f := func(v energy.Float) string { return strconv.FormatFloat(float64(v), 'g', -1, 64) }
	if c == nil {
		out := make([]string, len(CarbonCSVHeader))
		for i := range out {
			out[i] = "NaN"
		}
		out[len(out)-1] = "false"
		return out
	}
	sci, tot := resolved(c.SCIPerRequest), resolved(c.TotalSCIPerRequest)
	emb := c.EmbodiedPerRequest.Value
	if !c.EmbodiedCounted {
		emb = energy.Float(math.NaN())
	}
	return []string{
		f(c.IntensityGPerKWh), f(c.PUE),
		f(sci.Value), f(sci.Lo), f(sci.Hi), f(resolved(c.SCIPer1000Requests).Value),
		f(resolved(c.OperationalPerRequest).Value), f(emb),
		f(tot.Value), f(tot.Lo), f(tot.Hi),
		strconv.FormatBool(c.SCIPerRequest.BelowResolution),
	}
}

// carbonKey is what a run's carbon figures rest on, for compare: two
// runs whose grid, PUE or hardware figures differ do not compare
// platforms alone. An intensity series counts by its file's content, so
// that the same grid data at two times is the same setting.
func carbonKey(c *runstore.Carbon) string {
	if c == nil {
		return "none"
	}
	var parts []string
	if c.IntensityGPerKWh != nil {
		parts = append(parts, num(c.IntensityGPerKWh.Value)+" gCO2e/kWh")
	}
	if f := c.IntensityFile; f != nil {
		parts = append(parts, "series "+f.Path+" (sha256 "+shortHash(f.SHA256)+")")
	}
	parts = append(parts, "PUE "+num(c.PUE.Value))
	if e := c.Embodied; e != nil {
		parts = append(parts, fmt.Sprintf("embodied %s kg over %s years, share %s", num(e.TotalKg.Value), num(e.LifetimeYears.Value), num(e.Share.Value)))
	} else {
		parts = append(parts, "no embodied")
	}
	return strings.Join(parts, ", ")
}

func num(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// carbonSide is a side's per-repetition SCI per request on one meter.
func carbonSide(a *Analysed, target, phase string, e *energy.Energy) Side {
	s := baseSide(a, target, phase)
	for _, r := range e.Carbon.Reps {
		if r.SCIPerRequest.OK() {
			s.Values = append(s.Values, float64(r.SCIPerRequest))
		}
	}
	s.BelowResolution = e.Carbon.SCIPerRequest.BelowResolution
	s.Value, s.Lo, s.Hi = energy.TInterval(s.Values, 0.95)
	s.Carbon = e.Carbon
	return s
}

// carbonParts is a carbon side's parts: "E x I 1.2 µgCO2e + M 0.3
// µgCO2e; 1.5 mgCO2e per 1,000 requests".
func carbonParts(c *energy.Carbon) string {
	return fmt.Sprintf("E x I %s + M %s; %s per 1,000 requests", gShort(c.OperationalPerRequest), embodiedShort(c), gShort(c.SCIPer1000Requests))
}

// gShort is a figure's value without its interval, or "below resolution".
func gShort(iv energy.Interval) string {
	if iv.BelowResolution {
		return belowResolution
	}
	return fmtG(iv.Value)
}

func embodiedShort(c *energy.Carbon) string {
	if !c.EmbodiedCounted {
		return "not given"
	}
	return fmtG(c.EmbodiedPerRequest.Value)
}
