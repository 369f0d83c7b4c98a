// Package fnio is the Go side of the Purify function ABI (functions/README.md):
// it reads a request from the CGI-like environment and stdin, and writes a
// response as a CGI header block followed by the body on stdout.
//
// A function registers one Handler from init and calls Main from main. The
// command build (GOOS=wasip1, the default build) runs Main once per
// instance; the reactor build (-buildmode=c-shared -tags purify_reactor)
// exports purify_handle (see reactor_wasip1.go) so that one instance serves many requests.
//
// The package also builds and runs on the host (linux), so the functions
// can be tested natively and compared byte for byte with their Wasm builds.
package fnio

import (
	"io"
	"os"
	"strconv"
)

// Request is what a function sees of one HTTP request.
type Request struct {
	Method      string // REQUEST_METHOD
	Query       string // QUERY_STRING, undecoded
	ContentType string // CONTENT_TYPE
	Accept      string // HTTP_ACCEPT
	Body        []byte // stdin
}

// Param returns the query parameter name, or "" if absent.
func (r Request) Param(name string) string {
	v, _ := Param(r.Query, name)
	return v
}

// Response is a function's answer.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Handler answers one request. fnio writes the response out before it
// calls the handler again, so a handler may return a buffer that it
// reuses on the next call (the reactor build serves many requests from
// one instance). The request, its strings and its body belong to the
// handler: fnio does not reuse them.
type Handler func(Request) Response

var handler Handler

// Register sets the function's handler. Call it from init so that the
// reactor build, which never runs main, has it too.
func Register(h Handler) { handler = h }

// Main serves one request from the process environment and stdin and
// writes the response to stdout.
func Main() {
	body, _ := io.ReadAll(os.Stdin)
	req := Request{
		Method:      os.Getenv("REQUEST_METHOD"),
		Query:       os.Getenv("QUERY_STRING"),
		ContentType: os.Getenv("CONTENT_TYPE"),
		Accept:      os.Getenv("HTTP_ACCEPT"),
		Body:        body,
	}
	os.Stdout.Write(Encode(handler(req)))
}

// Encode renders a response in the ABI's stdout form: a CGI header block
// ("Status: 200 OK", "Content-Type: ...", each line ended by "\r\n", then an
// empty line) followed by the body.
func Encode(r Response) []byte {
	b := appendHeader(make([]byte, 0, len(r.Body)+64+len(r.ContentType)), r)
	return append(b, r.Body...)
}

// appendHeader appends r's header block (everything before the body).
func appendHeader(b []byte, r Response) []byte {
	b = append(b, "Status: "...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, ' ')
	b = append(b, statusText(r.Status)...)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, r.ContentType...)
	return append(b, "\r\n\r\n"...)
}

// statusText avoids net/http, which would more than double the module.
func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	}
	return "Status"
}

// JSON returns a JSON response with the given status; body must already be
// encoded and end with "\n".
func JSON(status int, body []byte) Response {
	return Response{Status: status, ContentType: "application/json", Body: body}
}

// Error returns the ABI's error body: {"error":"MSG"}\n, with msg quoted as
// JSON.stringify would (msg must be printable ASCII).
func Error(status int, msg string) Response {
	return JSON(status, []byte(`{"error":`+QuoteASCII(msg)+"}\n"))
}

// QuoteASCII quotes printable ASCII as a JSON string exactly as both Go
// (with HTML escaping off) and JavaScript's JSON.stringify do: only '"' and
// '\\' are escaped.
func QuoteASCII(s string) string {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return string(append(b, '"'))
}

// FormatNumber formats a finite float64 as JavaScript's Number#toString
// (and so JSON.stringify) does: the shortest digits that read back to the
// same value, in plain notation for 1e-6 <= |v| < 1e21 and in exponent
// notation ("1e+21", "1.5e-7") outside it. encoding/json formats floats by
// the same rule.
func FormatNumber(v float64) string {
	if v == 0 {
		return "0"
	}
	abs := v
	if abs < 0 {
		abs = -abs
	}
	if abs < 1e-6 || abs >= 1e21 {
		s := strconv.FormatFloat(v, 'e', -1, 64)
		// Go writes e-07 and e+07 where JavaScript writes e-7 and e+7.
		if n := len(s); n >= 4 && s[n-4] == 'e' && s[n-2] == '0' {
			s = s[:n-2] + s[n-1:]
		}
		return s
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
