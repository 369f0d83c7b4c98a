// Command memegen writes the Academemes collection that the memes function
// serves: functions/memes/memes.json (read by the Node.js build),
// functions/memes/data.go (compiled into the Go build),
// functions/memes/small/memes_data.h (the small C build) and
// functions/memes/rust/memes_data.rs (the Rust build). The captions and the
// drawings are the project's own. Run it from functions/memes with
// `go generate`.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/format"
	"html"
	"os"
	"strings"
)

// meme is one entry as written here; the rendered form is in render.
type meme struct {
	top, bottom string
	motif       string
	alt         string
}

// The collection. Keep every string printable ASCII without '<', '>', '&',
// '"' or '\\', so that JSON and HTML escaping stay trivial and identical in
// Go, C and JavaScript (memegen checks; the drawings use single quotes).
var memes = []meme{
	{"Reviewer 1: accept", "Reviewer 2: have you considered writing a different paper?", "reviewer", "Two reviewer cards: a green tick from reviewer 1 and a red number 2 stamped over the other."},
	{"p = 0.051", "Time to recruit three more participants", "pvalue", "A bell curve with a tiny tail shaded just outside the significance line."},
	{"The deadline is in six hours", "Perfect time to reformat every figure", "clock", "A clock whose hands point at a few minutes to midnight."},
	{"Me: this will take one afternoon", "The appendix, 47 pages later", "paper", "A stack of paper pages with lines of text."},
	{"Future work", "Everything I could not get to work", "paper", "A single page with a heading and faded lines."},
	{"Statistically significant", "After the eleventh way of looking at it", "pvalue", "A bell curve with the rejection region shaded."},
	{"The code from the paper", "Available upon reasonable request", "code", "A code editor window with angle brackets."},
	{"Supervisor: just a small revision", "Rewrite chapters two to five", "paper", "A stack of paper pages with lines of text."},
	{"Reviewer 2 wants more experiments", "Reviewer 3 wants a shorter paper", "reviewer", "Two reviewer cards pulling in opposite directions."},
	{"Submitted at 23:59:58", "Anywhere on Earth, so technically early", "clock", "A clock whose hands point at a few minutes to midnight."},
	{"n = 12", "The results generalise to all of humanity", "chart", "A bar chart with three bars and no error bars."},
	{"Error bars", "Decorative, please do not ask", "chart", "A bar chart with enormous error bars."},
	{"Coffee", "The only peer-reviewed part of my method", "coffee", "A steaming coffee cup."},
	{"It worked on my laptop", "Reproducibility section: see my laptop", "code", "A code editor window with angle brackets."},
	{"Literature review", "237 open tabs and counting", "paper", "A stack of paper pages with lines of text."},
	{"Camera-ready version", "Now with slightly different fonts", "paper", "A single page with a heading and faded lines."},
	{"The grant says novel", "The method says we added a layer", "chart", "A bar chart where the last bar is a little taller."},
	{"Office hours", "The one hour nobody ever comes", "clock", "A clock on an empty office wall."},
	{"Conference talk: 15 minutes", "Slide count: 64", "paper", "A stack of slides."},
	{"Correlation is not causation", "But it does make a good press release", "chart", "A rising bar chart."},
	{"Data cleaning", "Ninety percent of the work, one page of the thesis", "code", "A code editor window with angle brackets."},
	{"We thank the anonymous reviewers", "Through gritted teeth", "reviewer", "Two reviewer cards with a red number 2."},
	{"Accepted with minor revisions", "Minor revision: redo the study", "reviewer", "A reviewer card with a green tick and a long list."},
	{"Abstract: we solve the problem", "Limitations: we do not solve the problem", "paper", "A single page with a heading and faded lines."},
	{"The hypothesis", "Written after the results came in", "pvalue", "A bell curve with the rejection region shaded."},
	{"Supervisor reply time", "Between four minutes and one geological era", "clock", "A clock with blurred hands."},
	{"Lab meeting", "Where ideas go to be assigned to me", "coffee", "A steaming coffee cup on a meeting table."},
	{"The dataset is public", "Please email us for the password", "code", "A code editor window with angle brackets."},
	{"Our baseline", "Carefully chosen to lose", "chart", "A bar chart where one bar is tiny."},
	{"Thesis 90 percent done", "The remaining 90 percent begins", "chart", "A progress bar stuck near the end."},
	{"Cited by 1", "It was me", "paper", "A single page with a heading and faded lines."},
	{"Ethics approval", "Arrives the week after the study ends", "clock", "A clock whose hands point at a few minutes to midnight."},
	{"Benchmark results", "On a machine nobody else owns", "chart", "A bar chart with a suspiciously tall bar."},
	{"Reviewer 2 found a typo", "Major revision", "reviewer", "Two reviewer cards with a red number 2."},
	{"Defence day", "The committee asks about the one slide I skipped", "paper", "A stack of slides."},
	{"Let me just rerun it", "Same code, different results", "code", "A code editor window with angle brackets."},
	{"Postdoc salary", "Paid in citations and free pizza", "coffee", "A steaming coffee cup."},
	{"p is less than 0.05", "A sacred threshold chosen by tradition", "pvalue", "A bell curve with the rejection region shaded."},
	{"Serverless", "There are still servers, we just pay per meme", "code", "A code editor window with angle brackets."},
	{"Cold start: 300 ms", "WebAssembly: we do not do that here", "clock", "A clock with a lightning bolt."},
	{"Proof left as an exercise", "For the reviewer", "paper", "A single page with a heading and faded lines."},
	{"Email subject: quick question", "A twelve-part question with attachments", "coffee", "A steaming coffee cup next to an inbox."},
	{"Peer review", "Three strangers decide my next year", "reviewer", "Three reviewer cards."},
	{"Joules per request", "Finally a metric my laptop fan agrees with", "chart", "A bar chart with one tall and one tiny bar."},
}

// Record is one meme as served (field order is the JSON order).
type Record struct {
	ID      int    `json:"id"`
	Caption string `json:"caption"`
	Alt     string `json:"alt"`
	SVG     string `json:"svg"`
}

func main() {
	recs := make([]Record, len(memes))
	for i, m := range memes {
		if strings.Contains(m.alt, "'") {
			fmt.Fprintf(os.Stderr, "memegen: meme %d: no apostrophe in alt (it goes into a single-quoted attribute)\n", i+1)
			os.Exit(1)
		}
		for _, s := range []string{m.top, m.bottom, m.alt} {
			if err := checkText(s); err != nil {
				fmt.Fprintf(os.Stderr, "memegen: meme %d: %v\n", i+1, err)
				os.Exit(1)
			}
		}
		recs[i] = Record{ID: i + 1, Caption: m.top + " / " + m.bottom, Alt: m.alt, SVG: render(m)}
		if err := checkText(recs[i].SVG); err != nil && !strings.Contains(err.Error(), "character '<'") && !strings.Contains(err.Error(), "character '>'") && !strings.Contains(err.Error(), "character '&'") {
			fmt.Fprintf(os.Stderr, "memegen: meme %d svg: %v\n", i+1, err)
			os.Exit(1)
		}
		if strings.ContainsAny(recs[i].SVG, "\"\\") {
			fmt.Fprintf(os.Stderr, "memegen: meme %d: the svg must use single quotes and no backslash, so that JSON needs no escaping\n", i+1)
			os.Exit(1)
		}
	}
	var js bytes.Buffer
	js.WriteString("[\n")
	for i, r := range recs {
		var line bytes.Buffer
		enc := json.NewEncoder(&line)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			panic(err)
		}
		js.Write(bytes.TrimSuffix(line.Bytes(), []byte("\n")))
		if i < len(recs)-1 {
			js.WriteByte(',')
		}
		js.WriteByte('\n')
	}
	js.WriteString("]\n")
	must(os.WriteFile("memes.json", js.Bytes(), 0o644))

	var src bytes.Buffer
	src.WriteString("// Code generated by functions/internal/memegen; DO NOT EDIT.\n\npackage main\n\n")
	src.WriteString("// collection holds the memes in id order (id = index + 1).\nvar collection = []meme{\n")
	for _, r := range recs {
		fmt.Fprintf(&src, "\t{%d, %q, %q, %q},\n", r.ID, r.Caption, r.Alt, r.SVG)
	}
	src.WriteString("}\n")
	out, err := format.Source(src.Bytes())
	must(err)
	must(os.WriteFile("data.go", out, 0o644))

	var c bytes.Buffer
	c.WriteString("/* Code generated by functions/internal/memegen; DO NOT EDIT. */\n")
	c.WriteString("/* Strings come with their lengths and need no JSON escaping (memegen\n")
	c.WriteString(" * checks), so the module copies blocks instead of looping over characters\n")
	c.WriteString(" * (loops are what wazero's interruptible mode slows down). */\n")
	fmt.Fprintf(&c, "#define N_MEMES %d\n", len(recs))
	c.WriteString("typedef struct { const char *s; uint32_t n; } str_t;\n#define S(x) { x, sizeof(x) - 1 }\n")
	c.WriteString("static const struct { str_t caption_html, caption, alt, svg; } collection[N_MEMES] = {\n")
	for _, r := range recs {
		fmt.Fprintf(&c, "\t{S(%s),\n\t S(%s),\n\t S(%s),\n\t S(%s)},\n",
			cquote(html.EscapeString(r.Caption)), cquote(r.Caption), cquote(r.Alt), cquote(r.SVG))
	}
	c.WriteString("};\n")
	must(os.WriteFile("small/memes_data.h", c.Bytes(), 0o644))

	var rs bytes.Buffer
	rs.WriteString("// Code generated by functions/internal/memegen; DO NOT EDIT.\n")
	rs.WriteString("// The strings need no JSON escaping (memegen checks), so the module\n")
	rs.WriteString("// copies them as they are.\n\n")
	rs.WriteString("/// Meme is one entry of the collection; caption_html is the caption\n")
	rs.WriteString("/// escaped as Go's html.EscapeString does.\n")
	rs.WriteString("pub struct Meme {\n    pub caption_html: &'static str,\n    pub caption: &'static str,\n    pub alt: &'static str,\n    pub svg: &'static str,\n}\n\n")
	fmt.Fprintf(&rs, "/// COLLECTION holds the memes in id order (id = index + 1).\npub static COLLECTION: [Meme; %d] = [\n", len(recs))
	for _, r := range recs {
		fmt.Fprintf(&rs, "    Meme {\n        caption_html: %s,\n        caption: %s,\n        alt: %s,\n        svg: %s,\n    },\n",
			rustQuote(html.EscapeString(r.Caption)), rustQuote(r.Caption), rustQuote(r.Alt), rustQuote(r.SVG))
	}
	rs.WriteString("];\n")
	must(os.WriteFile("rust/memes_data.rs", rs.Bytes(), 0o644))
}

// rustQuote writes printable ASCII as a Rust string literal.
func rustQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// cquote writes printable ASCII as a C string literal.
func cquote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '?':
			b.WriteString("\\?") // no trigraphs
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "memegen:", err)
		os.Exit(1)
	}
}

func checkText(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '<' || c == '>' || c == '&' || c == '"' || c == '\\' {
			return fmt.Errorf("character %q at %d in %q is not allowed", c, i, s)
		}
	}
	return nil
}

var palette = map[string][2]string{
	"reviewer": {"#fde2e4", "#c1121f"},
	"pvalue":   {"#e2ecfd", "#1d4ed8"},
	"clock":    {"#fff3c4", "#b45309"},
	"paper":    {"#eef2e6", "#3f6212"},
	"code":     {"#e7e5f5", "#5b21b6"},
	"chart":    {"#e0f2f1", "#0f766e"},
	"coffee":   {"#f3e8dc", "#7c4a1e"},
}

// picture is the drawing in the middle band (y 95..205) of a 400x300 card.
func picture(motif, ink string) string {
	switch motif {
	case "reviewer":
		return `<rect x='120' y='105' width='70' height='90' rx='6' fill='#fff' stroke='` + ink + `' stroke-width='3'/>` +
			`<path d='M137 150l12 14 24-28' fill='none' stroke='#15803d' stroke-width='6'/>` +
			`<rect x='210' y='105' width='70' height='90' rx='6' fill='#fff' stroke='` + ink + `' stroke-width='3'/>` +
			`<text x='245' y='170' font-size='54' text-anchor='middle' fill='` + ink + `' font-weight='bold'>2</text>`
	case "pvalue":
		return `<path d='M90 195C150 195 165 105 200 105S250 195 310 195' fill='none' stroke='` + ink + `' stroke-width='4'/>` +
			`<path d='M268 195C280 190 290 193 310 195Z' fill='` + ink + `'/>` +
			`<line x1='265' y1='110' x2='265' y2='200' stroke='#c1121f' stroke-width='3' stroke-dasharray='6 4'/>`
	case "clock":
		return `<circle cx='200' cy='150' r='50' fill='#fff' stroke='` + ink + `' stroke-width='5'/>` +
			`<line x1='200' y1='150' x2='200' y2='112' stroke='` + ink + `' stroke-width='5'/>` +
			`<line x1='200' y1='150' x2='190' y2='122' stroke='` + ink + `' stroke-width='3'/>`
	case "paper":
		return `<rect x='165' y='100' width='70' height='95' fill='#fff' stroke='` + ink + `' stroke-width='3'/>` +
			`<rect x='155' y='108' width='70' height='95' fill='#fff' stroke='` + ink + `' stroke-width='3'/>` +
			`<path d='M165 125h50M165 140h50M165 155h50M165 170h35' stroke='` + ink + `' stroke-width='3'/>`
	case "code":
		return `<rect x='120' y='105' width='160' height='95' rx='8' fill='#1e1b2e'/>` +
			`<text x='200' y='168' font-size='44' text-anchor='middle' fill='#c4b5fd' font-family='monospace'>&lt;/&gt;</text>`
	case "chart":
		return `<path d='M120 200h160M120 200v-95' stroke='` + ink + `' stroke-width='3'/>` +
			`<rect x='140' y='160' width='30' height='40' fill='` + ink + `'/>` +
			`<rect x='185' y='135' width='30' height='65' fill='` + ink + `'/>` +
			`<rect x='230' y='112' width='30' height='88' fill='` + ink + `'/>`
	case "coffee":
		return `<path d='M160 130h70v45a20 20 0 0 1-20 20h-30a20 20 0 0 1-20-20z' fill='#fff' stroke='` + ink + `' stroke-width='4'/>` +
			`<path d='M230 140a14 14 0 0 1 0 28' fill='none' stroke='` + ink + `' stroke-width='4'/>` +
			`<path d='M180 120c-6-8 6-12 0-20M205 120c-6-8 6-12 0-20' fill='none' stroke='` + ink + `' stroke-width='3'/>`
	}
	panic("unknown motif " + motif)
}

// wrap breaks s into lines of at most width characters at spaces.
func wrap(s string, width int) []string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(s) {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = w
			continue
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	return append(lines, cur)
}

func textLines(lines []string, y0, step int) string {
	var b strings.Builder
	for i, l := range lines {
		fmt.Fprintf(&b, `<text x='200' y='%d'>%s</text>`, y0+i*step, l)
	}
	return b.String()
}

func render(m meme) string {
	c := palette[m.motif]
	top := wrap(strings.ToUpper(m.top), 26)
	bottom := wrap(strings.ToUpper(m.bottom), 26)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 400 300' width='400' height='300' role='img' aria-label='%s'>`, m.alt)
	fmt.Fprintf(&b, `<rect width='400' height='300' fill='%s'/>`, c[0])
	b.WriteString(picture(m.motif, c[1]))
	fmt.Fprintf(&b, `<g font-family='Impact,Arial Black,sans-serif' font-size='22' font-weight='bold' text-anchor='middle' fill='#fff' stroke='#111' stroke-width='1.2'>`)
	b.WriteString(textLines(top, 34, 26))
	b.WriteString(textLines(bottom, 282-26*(len(bottom)-1), 26))
	b.WriteString(`</g></svg>`)
	return b.String()
}
