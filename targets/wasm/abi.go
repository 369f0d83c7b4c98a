package wasm

import (
	"bytes"
	"hash/fnv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// call is one request as a function instance sees it: the CGI-like
// environment, stdin, and what it writes. Host functions find it in the
// context of the guest call (see wasi.go).
type call struct {
	env      [][]byte // "KEY=value"
	envSize  uint32   // bytes of env with a NUL after each
	stdin    []byte
	stdinPos int

	stdout, stderr []byte
	maxOut         int  // response bound in bytes
	stdoutOver     bool // the function wrote more than maxOut
	violation      string
	rand           splitmix64
	// ioAt is when the guest first read its input or wrote output: a
	// command module's own start (a language runtime's init inside
	// _start) ends there.
	ioAt time.Time
	now  func() time.Time // the platform's clock; nil: no start to time

	// snapshotting: no request, but a module's _initialize while its
	// snapshot is taken (snapshot.go); frozen lists what it read.
	snapshotting bool
	frozen       []string
	// fileTable: the guest asked to change wazero's file table (close or
	// re-flag stdio), which a reset cannot undo: its instance is not kept.
	fileTable bool
}

// freeze notes, while a snapshot is taken, that the module read what.
func (c *call) freeze(what string) {
	if c.snapshotting && !slices.Contains(c.frozen, what) {
		c.frozen = append(c.frozen, what)
	}
}

// markIO notes the guest's first read of its input or first write.
func (c *call) markIO() {
	if c.ioAt.IsZero() && c.now != nil {
		c.ioAt = c.now()
	}
}

// maxStderr bounds what is kept of a function's stderr for the log.
const maxStderr = 4 << 10

func (c *call) writeStdout(b []byte) {
	if len(c.stdout)+len(b) > c.maxOut {
		c.stdoutOver = true
		b = b[:max(0, c.maxOut-len(c.stdout))]
	}
	c.stdout = append(c.stdout, b...)
}

func (c *call) writeStderr(b []byte) {
	if room := maxStderr - len(c.stderr); room > 0 {
		c.stderr = append(c.stderr, b[:min(room, len(b))]...)
	}
}

// newCall builds the environment of functions/README.md ("ABI") for r,
// whose body has already been read.
func newCall(name string, r *http.Request, body []byte, maxOut int) *call {
	c := &call{stdin: body, maxOut: maxOut}
	add := func(k, v string) {
		kv := make([]byte, 0, len(k)+1+len(v))
		kv = append(append(append(kv, k...), '='), v...)
		c.env = append(c.env, kv)
		c.envSize += uint32(len(kv)) + 1
	}
	script := "/fn/" + name
	add("GATEWAY_INTERFACE", "CGI/1.1")
	add("REQUEST_METHOD", r.Method)
	add("SCRIPT_NAME", script)
	add("PATH_INFO", strings.TrimPrefix(r.URL.Path, script))
	add("QUERY_STRING", r.URL.RawQuery)
	add("CONTENT_TYPE", r.Header.Get("Content-Type"))
	add("CONTENT_LENGTH", strconv.Itoa(len(body)))
	add("SERVER_PROTOCOL", r.Proto)
	if a := r.Header.Get("Accept"); a != "" {
		add("HTTP_ACCEPT", a)
	}
	add("PURIFY_FUNCTION", name)
	seed := inputSeed(r.Method, r.URL.RawQuery, body)
	add("PURIFY_SEED", strconv.FormatUint(seed, 10))
	c.rand.s = seed
	return c
}

// inputSeed derives the seed of a request's randomness from its input, so a
// pure function answers the same input with the same bytes.
func inputSeed(method, query string, body []byte) uint64 {
	h := fnv.New64a()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(query))
	h.Write([]byte{0})
	h.Write(body)
	return h.Sum64()
}

// response is a function's answer after parsing its stdout.
type response struct {
	status int
	header http.Header
	body   []byte
}

// parseOutput splits stdout into a CGI header block and the body
// (functions/README.md, "Response"). Output that does not begin with a
// header line ("Name: value") is all body, answered 200 with
// application/octet-stream.
func parseOutput(out []byte) (response, error) {
	resp := response{status: http.StatusOK, header: http.Header{}}
	if !startsWithHeader(out) {
		resp.header.Set("Content-Type", "application/octet-stream")
		resp.body = out
		return resp, nil
	}
	rest := out
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return resp, errMalformedHeader("the header block has no empty line after it")
		}
		line := bytes.TrimSuffix(rest[:i], []byte{'\r'})
		rest = rest[i+1:]
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok || !token(k) {
			return resp, errMalformedHeader("bad header line " + strconv.Quote(string(line)))
		}
		key := http.CanonicalHeaderKey(string(k))
		val := string(bytes.TrimSpace(v))
		switch key {
		case "Status":
			code, _, _ := strings.Cut(val, " ")
			n, err := strconv.Atoi(code)
			if err != nil || n < 100 || n > 599 {
				return resp, errMalformedHeader("bad Status " + strconv.Quote(val))
			}
			resp.status = n
		case "X-Cold-Start", "X-Start-Ns", "Content-Length", "Connection", "Transfer-Encoding":
			// The platform's to set.
		default:
			resp.header.Add(key, val)
		}
	}
	if resp.header.Get("Content-Type") == "" {
		resp.header.Set("Content-Type", "application/octet-stream")
	}
	resp.body = rest
	return resp, nil
}

type errMalformedHeader string

func (e errMalformedHeader) Error() string { return "malformed response header: " + string(e) }

// startsWithHeader reports whether out begins with "token:".
func startsWithHeader(out []byte) bool {
	i := bytes.IndexByte(out, ':')
	if i <= 0 || i > 64 {
		return false
	}
	return token(out[:i])
}

func token(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
