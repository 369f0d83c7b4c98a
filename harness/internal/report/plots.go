package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"slices"
	"strconv"
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
	// Legend is drawn by the page above the plot, so that it never
	// covers data however the data fall.
	Legend []LegendItem
}

// LegendItem is one entry of a figure's legend: a swatch and its label.
type LegendItem struct {
	Label string
	// Colour is a CSS colour; Shape is "line", "dash", "box", "dot",
	// "square", "triangle" or "cross".
	Colour, Shape string
}

func css(c color.RGBA) string {
	if c.A == 0 {
		return "transparent"
	}
	// Un-premultiply: fade() stores premultiplied channels.
	un := func(v uint8) int { return min(255, int(v)*255/int(c.A)) }
	return fmt.Sprintf("rgba(%d,%d,%d,%.2f)", un(c.R), un(c.G), un(c.B), float64(c.A)/255)
}

// legended is a plot with its HTML legend, and optionally a second plot
// drawn below it on the same x axis with its own y axis.
type legended struct {
	*plot.Plot
	legend []LegendItem
	below  *plot.Plot
}

func (l *legended) add(label string, c color.RGBA, shape string) {
	l.legend = append(l.legend, LegendItem{Label: label, Colour: css(c), Shape: shape})
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.X.Tick.Marker = linTicks{}
	p.Y.Tick.Marker = linTicks{}
	p.Add(plotter.NewGrid())
	return p
}

// linTicks puts major ticks on a nice step (1, 2 or 5 times a power of
// ten, about five of them) with labels to that step's precision, so a
// narrow range never reads "7 7 7" and no label carries a decimal the
// others lack ("2.5 5.0 7.5" would), and a minor tick half-way. Integer
// is set for axes of counts, which have no ticks between whole numbers.
type linTicks struct{ Integer bool }

// Ticks implements plot.Ticker.
func (lt linTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return []plot.Tick{{Value: lo, Label: sig(lo)}}
	}
	step, dec := niceStep((hi - lo) / 5)
	// 1-2-5 steps leave some ranges (0.1 to 1.3: 0.5, 1.0) only two
	// labels: a step down gives them at least three.
	if math.Floor(hi/step+1e-9)-math.Ceil(lo/step-1e-9) < 2 {
		step, dec = niceStep(step / 2.6) // the next smaller of 1, 2, 5
	}
	if lt.Integer && step < 1 {
		step, dec = 1, 0
	}
	minor := !lt.Integer || step >= 2
	var ts []plot.Tick
	for k := math.Ceil(lo / step * 2); k/2*step <= hi+step*1e-9; k++ {
		v := k / 2 * step
		if math.Mod(k, 2) == 0 {
			ts = append(ts, plot.Tick{Value: v, Label: fixed(v, dec)})
		} else if minor {
			ts = append(ts, plot.Tick{Value: v})
		}
	}
	return ts
}

// unlabelled keeps a ticker's ticks and drops their labels, for an axis
// that another panel labels.
type unlabelled struct{ plot.Ticker }

// Ticks implements plot.Ticker.
func (u unlabelled) Ticks(lo, hi float64) []plot.Tick {
	ts := u.Ticker.Ticks(lo, hi)
	for i := range ts {
		ts[i].Label = ""
	}
	return ts
}

// niceStep is the smallest of 1, 2, 5 x 10^k at least raw, and the
// decimals its multiples need.
func niceStep(raw float64) (step float64, decimals int) {
	e := math.Floor(math.Log10(raw))
	mag := math.Pow(10, e)
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw*(1-1e-9) {
			step = m * mag
			break
		}
	}
	decimals = max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	return step, decimals
}

// logTicks labels every power of ten, and 2 and 5 times it when the range
// spans fewer than three decades, so a log axis always has labels.
type logTicks struct{ scale float64 }

// Ticks implements plot.Ticker.
func (t logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) {
		return linTicks{}.Ticks(lo, hi)
	}
	few := math.Log10(hi/lo) < 3
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		mag := math.Pow(10, e)
		for m := 1.0; m < 10; m++ {
			v := m * mag
			if v < lo || v > hi {
				continue
			}
			tk := plot.Tick{Value: v}
			if m == 1 || few && (m == 2 || m == 5) {
				// Shortest form of the rounded value: "20", "0.005".
				r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
				tk.Label = strconv.FormatFloat(r, 'f', -1, 64)
			}
			ts = append(ts, tk)
		}
	}
	labelled := 0
	for _, tk := range ts {
		if tk.Label != "" {
			labelled++
		}
	}
	if labelled < 2 {
		// A narrow range holds no round multiple: linear steps label it.
		return linTicks{}.Ticks(lo, hi)
	}
	return ts
}

// padRange widens [lo, hi] to at least minSpan around its middle and then
// by 5% each side, so that a nearly constant series is not stretched over
// the whole axis.
func padRange(lo, hi, minSpan float64) (float64, float64) {
	if hi-lo < minSpan {
		mid := (lo + hi) / 2
		lo, hi = mid-minSpan/2, mid+minSpan/2
	}
	pad := (hi - lo) * 0.05
	return lo - pad, hi + pad
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

// svgStack renders top over bottom as one inline SVG, top taking most of
// the height, their data areas aligned so that one x reads the same on
// both.
func svgStack(top, bottom *plot.Plot, w, h vg.Length) (template.HTML, error) {
	c := vgsvg.NewWith(vgsvg.UseWH(w, h))
	dc := draw.New(c)
	split := h * 0.34
	cb := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{Min: dc.Min, Max: vg.Point{X: dc.Max.X, Y: dc.Min.Y + split}}}
	ct := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{Min: vg.Point{X: dc.Min.X, Y: dc.Min.Y + split}, Max: dc.Max}}
	// Align the data areas: each canvas is narrowed by what the other's
	// axis labels take beyond its own.
	dt, db := top.DataCanvas(ct), bottom.DataCanvas(cb)
	left := max(dt.Min.X-ct.Min.X, db.Min.X-cb.Min.X)
	right := max(ct.Max.X-dt.Max.X, cb.Max.X-db.Max.X)
	ct.Min.X += left - (dt.Min.X - ct.Min.X)
	cb.Min.X += left - (db.Min.X - cb.Min.X)
	ct.Max.X -= right - (ct.Max.X - dt.Max.X)
	cb.Max.X -= right - (cb.Max.X - db.Max.X)
	top.Draw(ct)
	bottom.Draw(cb)
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", fmt.Errorf("report: render plot %q: %w", top.Title.Text, err)
	}
	s := b.String()
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	s = strings.Replace(s, "<svg ", fmt.Sprintf(`<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" `, w.Points(), h.Points(), template.HTMLEscapeString(top.Title.Text)), 1)
	return template.HTML(s), nil
}

// powerPlot is power over time per meter with the phases shaded and the
// request rate below it on its own axis: scaled onto the watts it would
// read as a power. Phases the validity checks found a problem in carry a
// red bar along the top.
func powerPlot(run *runstore.Run, sum *energy.Summary, det *energy.Detail, v validity) (*legended, error) {
	p := &legended{Plot: newPlot("Power over time", "", "W")}
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
	// At least 1 W or a tenth of the peak of range: a steady power is
	// drawn as the flat line it is, not stretched into noise.
	nonNeg := lo >= 0
	lo, hi = padRange(lo, hi, math.Max(1, 0.1*math.Abs(hi)))
	if nonNeg {
		lo = math.Max(0, lo)
	}
	// Shade phases: idle grey, measured in the target's colour.
	tcol := map[string]int{}
	for i, t := range sum.Targets {
		tcol[t.Name] = i
	}
	legend := map[string]bool{}
	idleGrey := fade(color.RGBA{120, 120, 120, 255}, 40)
	for _, ph := range run.Meta.Phases {
		var c color.RGBA
		switch {
		case ph.Name == runstore.PhaseIdle:
			c = idleGrey
		case energy.Measured(ph.Name):
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
		if key := "load " + ph.Target; energy.Measured(ph.Name) && !legend[key] {
			legend[key] = true
			p.add(ph.Target+" load", fade(colour(tcol[ph.Target]), 90), "box")
		}
	}
	p.add("idle", fade(color.RGBA{120, 120, 120, 255}, 70), "box")
	red := color.RGBA{200, 30, 30, 255}
	anyInvalid := false
	for _, ph := range run.Meta.Phases {
		if !v.phaseInvalid(ph) {
			continue
		}
		anyInvalid = true
		top := hi - (hi-lo)*0.04
		bar, err := plotter.NewPolygon(plotter.XYs{{X: sec(ph.StartNs), Y: top}, {X: sec(ph.EndNs), Y: top}, {X: sec(ph.EndNs), Y: hi}, {X: sec(ph.StartNs), Y: hi}})
		if err != nil {
			return nil, err
		}
		bar.Color = red
		bar.LineStyle.Width = 0
		p.Add(bar)
	}
	if anyInvalid {
		p.add("invalid phase (see the banner)", red, "box")
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
		c := color.RGBA{40 + uint8(60*i), 40, 40, 255}
		l.Color = c
		l.Width = vg.Points(1)
		shape := "line"
		if ps.Estimate {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
			shape = "dash"
		}
		p.Add(l)
		p.add(ps.Label, c, shape)
	}
	p.Y.Min, p.Y.Max = lo, hi
	// Request rate in 1-s bins, below on its own axis.
	if len(run.Requests) > 0 && len(run.Meta.Phases) > 0 {
		end := run.Meta.Phases[len(run.Meta.Phases)-1].EndNs
		n := int(sec(end)) + 1
		bins := make([]float64, max(n, 1))
		for _, r := range run.Requests {
			if k := int(sec(r.StartNs)); k >= 0 && k < len(bins) {
				bins[k]++
			}
		}
		if peak := slices.Max(bins); peak > 0 {
			xy := make(plotter.XYs, len(bins))
			for k, v := range bins {
				xy[k] = plotter.XY{X: float64(k) + 0.5, Y: v}
			}
			l, err := plotter.NewLine(xy)
			if err != nil {
				return nil, err
			}
			green := color.RGBA{0, 158, 115, 255}
			l.Color = green
			l.Width = vg.Points(0.8)
			rp := newPlot("", "seconds since the first phase", "requests/s")
			rp.Y.Tick.Marker = linTicks{Integer: true}
			rp.Add(l)
			rp.Y.Min, rp.Y.Max = 0, peak*1.1
			// One x range for both panels.
			p.X.Min, p.X.Max = math.Min(p.X.Min, rp.X.Min), math.Max(p.X.Max, rp.X.Max)
			rp.X.Min, rp.X.Max = p.X.Min, p.X.Max
			p.below = rp
			// The lower panel labels the shared time axis.
			p.X.Tick.Marker = unlabelled{linTicks{}}
			p.add("requests sent per second (lower panel)", green, "line")
		}
	}
	if p.below == nil {
		p.X.Label.Text = "seconds since the first phase"
	}
	return p, nil
}

// snapZero treats energies below a nanojoule, rounding residue of a
// subtraction (a constant power minus itself), as the zero the tables
// show, so an axis is never scaled to 1e-13 J.
func snapZero(j float64) float64 {
	if math.Abs(j) < 1e-9 {
		return 0
	}
	return j
}

// rowHeight is the height of one row of a horizontal dot plot; such plots
// grow with their rows so that labels never overlap.
const rowHeight = 0.28 * vg.Inch

// dotHeight is the height of a horizontal dot plot with n rows.
func dotHeight(n int) vg.Length { return max(2.2*vg.Inch, 1.1*vg.Inch+vg.Length(n)*rowHeight) }

// jprPlot is joules per request per target and phase with intervals, a
// horizontal dot plot (one row per target and phase, labels never
// collide). The axis is logarithmic when every value and bound is positive
// and they span more than a factor of 30 (platforms differ by orders of
// magnitude), linear otherwise, with zero marked, so a negative dynamic
// energy is shown as what it is.
func jprPlot(sum *energy.Summary, meter string, dynamic bool, v validity) (*legended, int, error) {
	title := "Energy per request"
	if dynamic {
		title = "Dynamic energy per request (above idle)"
	}
	type row struct {
		name      string
		v, lo, hi float64
		c         int
	}
	var rows []row
	big := 0.0
	for i, t := range sum.Targets {
		for _, ph := range t.Phases {
			e := ph.Meter(meter)
			if e == nil {
				continue
			}
			iv := e.JPerRequest
			if dynamic {
				iv = e.DynamicJPerRequest
			}
			name := t.Name + " " + ph.Phase
			if v.Mark(t.Name, ph.Phase, 0).Invalid {
				name += invalidSuffix
			}
			if iv.BelowResolution {
				// A row without a dot: there is no number to draw.
				rows = append(rows, row{name: name + " (below resolution)", v: math.NaN(), lo: math.NaN(), hi: math.NaN(), c: i})
				continue
			}
			if !iv.Value.OK() {
				continue
			}
			r := row{name: name, v: snapZero(float64(iv.Value)), lo: math.NaN(), hi: math.NaN(), c: i}
			if iv.Lo.OK() && iv.Hi.OK() {
				r.lo, r.hi = snapZero(float64(iv.Lo)), snapZero(float64(iv.Hi))
			}
			for _, x := range []float64{r.v, r.lo, r.hi} {
				if !math.IsNaN(x) {
					big = math.Max(big, math.Abs(x))
				}
			}
			rows = append(rows, r)
		}
	}
	drawn := 0
	for _, r := range rows {
		if !math.IsNaN(r.v) {
			drawn++
		}
	}
	if drawn == 0 {
		return nil, 0, nil
	}
	k, u := jUnit(big)
	p := &legended{Plot: newPlot(title+", "+meterLabel(sum, meter), u+" per request", "")}
	logScale := true
	xmin, xmax := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		for _, x := range []float64{r.v, r.lo, r.hi} {
			if math.IsNaN(x) {
				continue
			}
			logScale = logScale && x > 0
			xmin, xmax = math.Min(xmin, x*k), math.Max(xmax, x*k)
		}
	}
	logScale = logScale && xmax/xmin > 30
	names := make([]string, len(rows))
	for i, r := range rows {
		y := float64(len(rows) - 1 - i) // first row on top
		names[len(rows)-1-i] = r.name
		c := colour(r.c)
		if math.IsNaN(r.v) {
			continue
		}
		if !math.IsNaN(r.lo) {
			l, err := plotter.NewLine(plotter.XYs{{X: r.lo * k, Y: y}, {X: r.hi * k, Y: y}})
			if err != nil {
				return nil, 0, err
			}
			l.Color, l.Width = c, vg.Points(2)
			p.Add(l)
		}
		sc, err := plotter.NewScatter(plotter.XYs{{X: r.v * k, Y: y}})
		if err != nil {
			return nil, 0, err
		}
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		sc.GlyphStyle.Radius = vg.Points(4)
		sc.GlyphStyle.Color = c
		p.Add(sc)
	}
	p.NominalY(names...)
	p.Y.Min, p.Y.Max = -0.6, float64(len(rows))-0.4
	p.Y.Tick.Label.Font.Size = vg.Points(9)
	if logScale {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks{}
		p.X.Label.Text += " (log scale)"
		p.X.Min, p.X.Max = xmin/1.5, xmax*1.5
	} else {
		// Zero is on a linear axis, so lengths compare as ratios.
		xmin, xmax = math.Min(0, xmin), math.Max(0, xmax)
		p.X.Min, p.X.Max = padRange(xmin, xmax, 0)
		if xmin < 0 {
			z, err := plotter.NewLine(plotter.XYs{{X: 0, Y: p.Y.Min}, {X: 0, Y: p.Y.Max}})
			if err != nil {
				return nil, 0, err
			}
			z.Color, z.Width, z.Dashes = color.RGBA{90, 90, 90, 255}, vg.Points(0.8), []vg.Length{vg.Points(3), vg.Points(2)}
			p.Add(z)
		}
	}
	p.add("value", color.RGBA{60, 60, 60, 255}, "dot")
	p.add("95% interval", color.RGBA{60, 60, 60, 255}, "line")
	return p, len(rows), nil
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
	p.Y.Tick.Marker = linTicks{Integer: true}
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

// latencyPlot is latency percentiles per target and phase, a horizontal
// dot plot on a log axis.
func latencyPlot(sum *energy.Summary, v validity) (*legended, int, error) {
	p := &legended{Plot: newPlot("Latency percentiles", "ms (log scale)", "")}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks{}
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
				name := t.Name + " " + ph.Phase
				if v.Mark(t.Name, ph.Phase, 0).Invalid {
					name += invalidSuffix
				}
				names = append(names, name)
				lats = append(lats, ph.LatencyMs)
			}
		}
	}
	if len(names) == 0 {
		return nil, 0, nil
	}
	n := len(names)
	xmin, xmax := math.Inf(1), math.Inf(-1)
	shapes := []string{"dot", "square", "triangle", "cross"}
	for k, qq := range qs {
		var xy plotter.XYs
		for i, l := range lats {
			v := float64(qq.get(l))
			if v > 0 {
				xy = append(xy, plotter.XY{X: v, Y: float64(n-1-i) + (1.5-float64(k))*0.12})
				xmin, xmax = math.Min(xmin, v), math.Max(xmax, v)
			}
		}
		sc, err := plotter.NewScatter(xy)
		if err != nil {
			return nil, 0, err
		}
		sc.GlyphStyle.Color = colour(k)
		sc.GlyphStyle.Radius = vg.Points(3.5)
		sc.GlyphStyle.Shape = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{}}[k]
		p.Add(sc)
		p.add(qq.name, colour(k), shapes[k])
	}
	slices.Reverse(names)
	p.NominalY(names...)
	p.Y.Min, p.Y.Max = -0.6, float64(n)-0.4
	p.Y.Tick.Label.Font.Size = vg.Points(9)
	p.X.Min, p.X.Max = xmin/1.5, xmax*1.5
	return p, n, nil
}

// throughputPlot is power against request rate over sub-windows, one
// colour per target, with the marginal fit.
func throughputPlot(sum *energy.Summary, det *energy.Detail, meter string, v validity) (*legended, error) {
	p := &legended{Plot: newPlot("Power against request rate, "+meterLabel(sum, meter), "requests/s in 1-s windows", "mean power, W")}
	any := false
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, t := range sum.Targets {
		shown := false
		for _, ph := range t.Phases {
			g := det.Groups[energy.GroupKey{Target: t.Name, Phase: ph.Phase, Meter: meter}]
			if g == nil || len(g.Rate) == 0 {
				continue
			}
			xy := make(plotter.XYs, len(g.Rate))
			for k := range g.Rate {
				xy[k] = plotter.XY{X: g.Rate[k], Y: g.Power[k]}
				lo, hi = math.Min(lo, g.Power[k]), math.Max(hi, g.Power[k])
			}
			sc, err := plotter.NewScatter(xy)
			if err != nil {
				return nil, err
			}
			sc.GlyphStyle.Color = colour(i)
			sc.GlyphStyle.Radius = vg.Points(2)
			p.Add(sc)
			if !shown {
				name := t.Name
				for _, ph := range t.Phases {
					if v.Mark(t.Name, ph.Phase, 0).Invalid {
						name += invalidSuffix
						break
					}
				}
				p.add(name, colour(i), "dot")
				shown = true
			}
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
	p.add("least-squares line (marginal J/request = slope)", color.RGBA{60, 60, 60, 255}, "dash")
	nonNeg := lo >= 0
	p.Y.Min, p.Y.Max = padRange(lo, hi, math.Max(1, 0.1*math.Abs(hi)))
	if nonNeg {
		p.Y.Min = math.Max(0, p.Y.Min)
	}
	p.X.Min = 0
	return p, nil
}
