package fnio

import (
	"math"
	"strconv"
	"unsafe"
)

// Number returns the input field name as a float64 and whether it was
// there and numeric, by the rules in functions/README.md (section "Input"):
//
//   - a body that is not only JSON whitespace must be one JSON value as
//     JSON.parse accepts it, and an object; its member name (exact after
//     escapes are decoded, the last one wins when repeated) must be a
//     number;
//   - an empty body takes the query parameter name, which must be an
//     optional '-' followed by decimal digits.
//
// These are the rules JSON.parse and a /^-?[0-9]+$/ test give in
// JavaScript, so the Node builds answer every input the same way. The
// parser is hand-written because encoding/json (with reflect and fmt)
// doubles the size of a Go Wasm module and its start-up time.
func Number(req Request, name string) (float64, bool) {
	if !blank(req.Body) {
		raw, ok := member(req.Body, name)
		if !ok || len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
			return 0, false
		}
		// raw is not changed while ParseFloat runs, and strconv copies
		// the text into any error it returns, so no copy is needed here
		// (an allocation costs about a microsecond in a Go Wasm guest).
		v, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(raw), len(raw)), 64)
		if err != nil && !math.IsInf(v, 0) {
			return 0, false
		}
		return v, true
	}
	s, _ := Param(req.Query, name)
	if !decimal(s) {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// Int returns the input field name when it is an integer in [min, max].
func Int(req Request, name string, min, max int64) (int64, bool) {
	v, ok := Number(req, name)
	if !ok || v != math.Trunc(v) || v < float64(min) || v > float64(max) {
		return 0, false
	}
	return int64(v), true
}

// Blank reports whether b holds only JSON whitespace.
func Blank(b []byte) bool { return blank(b) }

func blank(b []byte) bool {
	for _, c := range b {
		if !isSpace(c) {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func decimal(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// member parses doc as one JSON value and, if it is an object, returns the
// raw text of the last member called name.
func member(doc []byte, name string) ([]byte, bool) {
	p := parser{b: doc}
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return nil, false
	}
	var found []byte
	ok := false
	p.i++
	p.space()
	if p.peek() == '}' {
		p.i++
	} else {
		for {
			p.space()
			key, kok := p.str()
			if !kok {
				return nil, false
			}
			p.space()
			if p.peek() != ':' {
				return nil, false
			}
			p.i++
			p.space()
			start := p.i
			if !p.value(0) {
				return nil, false
			}
			if string(key) == name {
				found, ok = p.b[start:p.i], true
			}
			p.space()
			c := p.peek()
			p.i++
			if c == '}' {
				break
			}
			if c != ',' {
				return nil, false
			}
		}
	}
	p.space()
	if p.i != len(p.b) {
		return nil, false
	}
	return found, ok
}

type parser struct {
	b []byte
	i int
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) space() {
	for p.i < len(p.b) && isSpace(p.b[p.i]) {
		p.i++
	}
}

// maxDepth bounds recursion on hostile input.
const maxDepth = 512

func (p *parser) value(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch c := p.peek(); {
	case c == '{':
		p.i++
		return p.elements('}', func() bool {
			if _, ok := p.str(); !ok {
				return false
			}
			p.space()
			if p.peek() != ':' {
				return false
			}
			p.i++
			p.space()
			return p.value(depth + 1)
		})
	case c == '[':
		p.i++
		return p.elements(']', func() bool { return p.value(depth + 1) })
	case c == '"':
		_, ok := p.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	}
	return false
}

// elements reads the comma-separated members of an object or elements of
// an array, the opening byte already read, through the closing byte end;
// elem reads one.
func (p *parser) elements(end byte, elem func() bool) bool {
	p.space()
	if p.peek() == end {
		p.i++
		return true
	}
	for {
		p.space()
		if !elem() {
			return false
		}
		p.space()
		c := p.peek()
		p.i++
		if c == end {
			return true
		}
		if c != ',' {
			return false
		}
	}
}

func (p *parser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

func (p *parser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

func (p *parser) number() bool {
	if p.peek() == '-' {
		p.i++
	}
	if p.peek() == '0' {
		p.i++
	} else if p.digits() == 0 {
		return false
	}
	if p.peek() == '.' {
		p.i++
		if p.digits() == 0 {
			return false
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if p.digits() == 0 {
			return false
		}
	}
	return true
}

// str parses a string and returns it with escapes decoded (surrogates
// are kept as the escape's code units encoded one by one; only equality
// with plain ASCII names matters here). A string without escapes is
// returned as a slice of the input, so the common case allocates nothing
// (an allocation costs about a microsecond in a Go Wasm guest).
func (p *parser) str() ([]byte, bool) {
	if p.peek() != '"' {
		return nil, false
	}
	p.i++
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			p.i++
			return p.b[start : p.i-1], true
		}
		if c < 0x20 || c == '\\' {
			break
		}
		p.i++
	}
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch {
		case c == '"':
			return out, true
		case c < 0x20:
			return nil, false
		case c == '\\':
			e := p.peek()
			p.i++
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				if len(p.b)-p.i < 4 {
					return nil, false
				}
				v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 16)
				if err != nil {
					return nil, false
				}
				p.i += 4
				if v < 0x80 {
					out = append(out, byte(v))
				} else {
					// Not ASCII: cannot equal a field name; keep it distinct.
					out = append(out, 0xff, byte(v>>8), byte(v))
				}
			default:
				return nil, false
			}
		default:
			out = append(out, c)
		}
	}
	return nil, false
}

// Param returns the first value of the query parameter name, decoded as
// application/x-www-form-urlencoded, and whether it was present.
func Param(query, name string) (string, bool) {
	for query != "" {
		var kv string
		kv, query, _ = cut(query, '&')
		k, v, _ := cut(kv, '=')
		if unescape(k) == name {
			return unescape(v), true
		}
	}
	return "", false
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// unescape decodes '+' and %XX; a malformed escape is kept as it is.
func unescape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(s) && unhex(s[i+1]) >= 0 && unhex(s[i+2]) >= 0:
			c = byte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		}
		b = append(b, c)
	}
	return string(b)
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
