// Command memes is the Academemes function: given {"id": N} (or ?id=N) it
// answers one academic meme as JSON, or as a small HTML page when the client
// accepts text/html. The input and output bytes are specified in
// functions/README.md; the Node.js build must produce the same bytes.
package main

//go:generate go run ../internal/memegen

import (
	"slices"
	"strconv"
	"strings"

	"github.com/academemes/harness/functions/internal/fnio"
)

// meme is one entry of the collection (data.go, generated).
type meme struct {
	id           int
	caption, alt string
	svg          string
}

const badInput = `input must be JSON like {"id": 7} with id an integer`

// maxSafe is JavaScript's Number.MAX_SAFE_INTEGER: ids beyond it cannot be
// printed the same way by every build, so they are bad input.
const maxSafe = 1<<53 - 1

func init() { fnio.Register(handle) }

func main() { fnio.Main() }

func handle(req fnio.Request) fnio.Response {
	id := int64(1) // a person browsing /fn/memes starts at the first meme
	if !fnio.Blank(req.Body) || req.Param("id") != "" {
		v, ok := fnio.Int(req, "id", -maxSafe, maxSafe)
		if !ok {
			return fnio.Error(400, badInput)
		}
		id = v
	}
	if id < 1 || id > int64(len(collection)) {
		return fnio.Error(404, "no meme with id "+strconv.FormatInt(id, 10))
	}
	m := collection[id-1]
	if strings.Contains(req.Accept, "text/html") {
		return fnio.Response{Status: 200, ContentType: "text/html; charset=utf-8", Body: []byte(page(m))}
	}
	answer = appendAnswerJSON(answer[:0], m)
	return fnio.JSON(200, answer)
}

// answer is reused from request to request: fnio writes a response out
// before it calls the handler again, and in the warm (reactor) build one
// instance serves many requests, where each allocation costs about a
// microsecond.
var answer []byte

// answerJSON is the JSON answer.
func answerJSON(m meme) []byte { return appendAnswerJSON(nil, m) }

// appendAnswerJSON appends the JSON answer to out. memegen refuses
// a caption, alt text or drawing with '"', '\\' or a control character, so
// each quotes as itself (fnio.QuoteASCII would copy it unchanged; the
// tests check that): a byte-by-byte quoting loop was a fifth of a warm
// call in the Wasm build.
func appendAnswerJSON(out []byte, m meme) []byte {
	const (
		a = `{"id":`
		b = `,"caption":"`
		c = `","alt":"`
		d = `","svg":"`
		e = "\"}\n"
	)
	out = slices.Grow(out, len(a)+20+len(b)+len(m.caption)+len(c)+len(m.alt)+len(d)+len(m.svg)+len(e))
	out = append(out, a...)
	out = strconv.AppendInt(out, int64(m.id), 10)
	out = append(out, b...)
	out = append(out, m.caption...)
	out = append(out, c...)
	out = append(out, m.alt...)
	out = append(out, d...)
	out = append(out, m.svg...)
	return append(out, e...)
}

// page is the HTML view; its exact bytes are specified in functions/README.md.
func page(m meme) string {
	n := len(collection)
	prev := (m.id+n-2)%n + 1
	next := m.id%n + 1
	return `<!doctype html>` + "\n" +
		`<html lang="en"><head><meta charset="utf-8"><title>Academemes #` + strconv.Itoa(m.id) + `</title>` +
		`<style>body{font-family:sans-serif;max-width:40rem;margin:2rem auto;text-align:center}nav a{margin:0 1rem}</style></head>` + "\n" +
		`<body><h1>Academemes</h1><figure>` + m.svg + `<figcaption>` + escapeHTML(m.caption) + `</figcaption></figure>` + "\n" +
		`<nav><a href="?id=` + strconv.Itoa(prev) + `">previous</a><a href="?id=` + strconv.Itoa(next) + `">next</a></nav></body></html>` + "\n"
}

// escapeHTML escapes as Go's html.EscapeString does.
func escapeHTML(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&#39;", "<", "&lt;", ">", "&gt;", `"`, "&#34;").Replace(s)
}
