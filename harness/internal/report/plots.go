package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/academemes/harness/harness/internal/energy"
	"github.com/academemes/harness/harness/internal/runstore"
)

func init() {
	// Plots name Liberation Sans, which the page embeds once as a web
	// font, so text renders the same in every browser.
	plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
	plotter.DefaultFont = plot.DefaultFont
}

// palette is colour-blind safe (Okabe-Ito).
var palette = []color.RGBA{
	{0, 114, 178, 255}, {213, 94, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
	{230, 159, 0, 255}, {86, 180, 233, 255}, {240, 228, 66, 255}, {0, 0, 0, 255},
}

func colour(i int) color.RGBA { return palette[i%len(palette)] }

func fade(c color.RGBA, a uint8) color.RGBA {
	// premultiplied alpha, as image/color expects
	return color.RGBA{uint8(uint16(c.R) * uint16(a) / 255), uint8(uint16(c.G) * uint16(a) / 255), uint8(uint16(c.B) * uint16(a) / 255), a}
}

// Figure is one plot in a page: an inline SVG and what it shows.
type Figure struct {
	ID      string
	Title   string
	Caption string
	SVG     template.HTML
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

// svg renders p as an inline SVG element.
func svg(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	c := vgsvg.NewWith(vgsvg.UseWH(w, h))
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", fmt.Errorf("report: render plot %q: %w", p.Title.Text, err)
	}
	s := b.String()
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	// A viewBox makes the SVG scale with the page.
	s = strings.Replace(s, "<svg ", fmt.Sprintf(`<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" `, w.Points(), h.Points(), template.HTMLEscapeString(p.Title.Text)), 1)
	return template.HTML(s), nil
}

// powerPlot is power over time per meter with the phases shaded and the
// request rate overlaid on the power scale.
func powerPlot(run *runstore.Run, sum *energy.Summary, det *energy.Detail) (*plot.Plot, error) {
	p := newPlot("Power over time", "seconds since start", "W")
	t0 := run.Meta.Started.UnixNano()
	if len(run.Meta.Phases) > 0 {
		t0 = run.Meta.Phases[0].StartNs
	}
	sec := func(ns int64) float64 { return float64(ns-t0) / 1e9 }
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, ps := range det.Power {
		for _, w := range ps.W {
			lo, hi = math.Min(lo, w), math.Max(hi, w)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	pad := (hi - lo) * 0.05
	lo, hi = math.Max(0, lo-pad), hi+pad
	// Shade phases: idle grey, measured in the target's colour.
	tcol := map[string]int{}
	for i, t := range sum.Targets {
		tcol[t.Name] = i
	}
	legend := map[string]bool{}
	for _, ph := range run.Meta.Phases {
		var c color.RGBA
		switch {
		case ph.Name == runstore.PhaseIdle:
			c = fade(color.RGBA{120, 120, 120, 255}, 40)
		case measured(ph.Name):
			c = fade(colour(tcol[ph.Target]), 50)
		default:
			c = fade(colour(tcol[ph.Target]), 18)
		}
		poly, err := plotter.NewPolygon(plotter.XYs{{X: sec(ph.StartNs), Y: lo}, {X: sec(ph.EndNs), Y: lo}, {X: sec(ph.EndNs), Y: hi}, {X: sec(ph.StartNs), Y: hi}})
		if err != nil {
			return nil, err
		}
		poly.Color = c
		poly.LineStyle.Width = 0
		p.Add(poly)
		if key := "load " + ph.Target; measured(ph.Name) && !legend[key] {
			legend[key] = true
			p.Legend.Add(ph.Target+" load", poly)
		}
	}
	for i, ps := range det.Power {
		if len(ps.T) == 0 {
			continue
		}
		xy := make(plotter.XYs, len(ps.T))
		for k := range ps.T {
			xy[k] = plotter.XY{X: sec(ps.T[k]), Y: ps.W[k]}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, err
		}
		l.Color = color.RGBA{40 + uint8(60*i), 40, 40, 255}
		l.Width = vg.Points(1)
		if ps.Estimate {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		p.Add(l)
		p.Legend.Add(ps.Label, l)
	}
	// Request rate in 1-s bins, scaled onto the power axis.
	if len(run.Requests) > 0 && len(run.Meta.Phases) > 0 {
		end := run.Meta.Phases[len(run.Meta.Phases)-1].EndNs
		n := int(sec(end)) + 1
		bins := make([]float64, max(n, 1))
		for _, r := range run.Requests {
			if k := int(sec(r.StartNs)); k >= 0 && k < len(bins) {
				bins[k]++
			}
		}
		peak := slices.Max(bins)
		if peak > 0 {
			xy := make(plotter.XYs, len(bins))
			for k, v := range bins {
				xy[k] = plotter.XY{X: float64(k) + 0.5, Y: lo + (hi-lo)*0.9*v/peak}
			}
			l, err := plotter.NewLine(xy)
			if err != nil {
				return nil, err
			}
			l.Color = color.RGBA{0, 158, 115, 255}
			l.Width = vg.Points(0.8)
			p.Add(l)
			p.Legend.Add(fmt.Sprintf("requests/s (scaled: top = %.0f/s)", peak/0.9), l)
		}
	}
	p.Y.Min, p.Y.Max = lo, hi
	return p, nil
}

// xyer adapts slices to plotter.XYer and YErrorer.
type pointErr struct {
	xy     plotter.XYs
	lo, hi []float64
}

func (p pointErr) Len() int                        { return len(p.xy) }
func (p pointErr) XY(i int) (float64, float64)     { return p.xy[i].X, p.xy[i].Y }
func (p pointErr) YError(i int) (float64, float64) { return p.lo[i], p.hi[i] }

// jprPlot is joules per request per target and phase with intervals, on a
// log scale (targets differ by orders of magnitude).
func jprPlot(sum *energy.Summary, meter string, dynamic bool) (*plot.Plot, error) {
	title := "Energy per request"
	if dynamic {
		title = "Dynamic energy per request"
	}
	p := newPlot(title+" ("+meterLabel(sum, meter)+")", "", "J per request (log scale)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var names []string
	var pe pointErr
	for _, t := range sum.Targets {
		for _, ph := range t.Phases {
			e := ph.Meter(meter)
			if e == nil {
				continue
			}
			iv := e.JPerRequest
			if dynamic {
				iv = e.DynamicJPerRequest
			}
			if !iv.Value.OK() || iv.Value <= 0 {
				continue
			}
			x := float64(len(names))
			names = append(names, t.Name+" "+ph.Phase)
			v := float64(iv.Value)
			lo, hi := 0.0, 0.0
			if iv.Lo.OK() && iv.Hi.OK() && iv.Lo > 0 {
				lo, hi = v-float64(iv.Lo), float64(iv.Hi)-v
			}
			pe.xy = append(pe.xy, plotter.XY{X: x, Y: v})
			pe.lo = append(pe.lo, lo)
			pe.hi = append(pe.hi, hi)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	sc, err := plotter.NewScatter(pe)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyle.Shape = draw.CircleGlyph{}
	sc.GlyphStyle.Radius = vg.Points(4)
	sc.GlyphStyle.Color = colour(0)
	eb, err := plotter.NewYErrorBars(pe)
	if err != nil {
		return nil, err
	}
	eb.LineStyle.Width = vg.Points(1.5)
	eb.Color = colour(0)
	p.Add(sc, eb)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for i := range pe.xy {
		ymin = math.Min(ymin, pe.xy[i].Y-pe.lo[i])
		ymax = math.Max(ymax, pe.xy[i].Y+pe.hi[i])
	}
	p.Y.Min, p.Y.Max = ymin/2, ymax*2
	p.Legend.Top = false
	return p, nil
}

func meterLabel(sum *energy.Summary, name string) string {
	for _, m := range sum.Meters {
		if m.Name == name {
			return m.Label
		}
	}
	return name
}

// histPlot is a histogram of values.
func histPlot(title, x string, values []float64, c color.RGBA) (*plot.Plot, error) {
	if len(values) < 2 {
		return nil, nil
	}
	p := newPlot(title, x, "requests")
	bins := min(40, max(5, len(values)/10))
	h, err := plotter.NewHist(plotter.Values(values), bins)
	if err != nil {
		return nil, err
	}
	h.FillColor = fade(c, 160)
	h.LineStyle.Width = vg.Points(0.5)
	p.Add(h)
	return p, nil
}

// latencyPlot is latency percentiles per target and phase.
func latencyPlot(sum *energy.Summary) (*plot.Plot, error) {
	p := newPlot("Latency percentiles", "", "ms (log scale)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	type q struct {
		name string
		get  func(energy.Latency) energy.Float
	}
	qs := []q{{"p50", func(l energy.Latency) energy.Float { return l.P50 }}, {"p90", func(l energy.Latency) energy.Float { return l.P90 }}, {"p99", func(l energy.Latency) energy.Float { return l.P99 }}, {"max", func(l energy.Latency) energy.Float { return l.Max }}}
	var names []string
	var lats []energy.Latency
	for _, t := range sum.Targets {
		for _, ph := range t.Phases {
			if ph.LatencyMs.P50.OK() && ph.LatencyMs.P50 > 0 {
				names = append(names, t.Name+" "+ph.Phase)
				lats = append(lats, ph.LatencyMs)
			}
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for k, qq := range qs {
		var xy plotter.XYs
		for i, l := range lats {
			v := float64(qq.get(l))
			if v > 0 {
				xy = append(xy, plotter.XY{X: float64(i) + (float64(k)-1.5)*0.12, Y: v})
				ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
			}
		}
		sc, err := plotter.NewScatter(xy)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Color = colour(k)
		sc.GlyphStyle.Radius = vg.Points(3.5)
		sc.GlyphStyle.Shape = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{}}[k]
		p.Add(sc)
		p.Legend.Add(qq.name, sc)
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	p.Y.Min, p.Y.Max = ymin/2, ymax*2
	return p, nil
}

// throughputPlot is power against request rate over sub-windows, one
// colour per target, with the marginal fit.
func throughputPlot(sum *energy.Summary, det *energy.Detail, meter string) (*plot.Plot, error) {
	p := newPlot("Power against request rate ("+meterLabel(sum, meter)+")", "requests/s in 1-s windows", "mean power, W")
	any := false
	for i, t := range sum.Targets {
		for _, ph := range t.Phases {
			g := det.Groups[energy.GroupKey{Target: t.Name, Phase: ph.Phase, Meter: meter}]
			if g == nil || len(g.Rate) == 0 {
				continue
			}
			xy := make(plotter.XYs, len(g.Rate))
			for k := range g.Rate {
				xy[k] = plotter.XY{X: g.Rate[k], Y: g.Power[k]}
			}
			sc, err := plotter.NewScatter(xy)
			if err != nil {
				return nil, err
			}
			sc.GlyphStyle.Color = colour(i)
			sc.GlyphStyle.Radius = vg.Points(2)
			p.Add(sc)
			p.Legend.Add(t.Name+" "+ph.Phase, sc)
			if e := ph.Meter(meter); e != nil && e.Marginal != nil {
				m := e.Marginal
				f := plotter.NewFunction(func(x float64) float64 { return float64(m.InterceptW) + float64(m.JPerRequest)*x })
				f.XMin, f.XMax = 0, slices.Max(g.Rate)
				f.Color = colour(i)
				f.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
				p.Add(f)
			}
			any = true
		}
	}
	if !any {
		return nil, nil
	}
	return p, nil
}

func measured(phase string) bool {
	return phase == runstore.PhaseLoad || strings.HasPrefix(phase, runstore.PhaseLoad+"/")
}
