package scenario

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Limits of what a scenario holds. Every number is read with its range
// (durationIn, intIn, rateIn), and every file it names is a regular file of
// bounded size inside the scenario's directory (checkFile), so that
// `harness run --check` refuses what the run would choke on: a repeat count
// that plans more slots than memory holds, a rate whose interval overflows
// time.Duration, a body read from /dev/zero.
const (
	MaxRepeat = 1000
	// MaxPhase bounds idle, warmup, cooldown, a stage and a sequential
	// run's duration.
	MaxPhase = 24 * time.Hour
	MaxPause = time.Hour
	// MinTimeout and MaxTimeout bound load.timeout, the time one request
	// may take.
	MinTimeout = time.Millisecond
	MaxTimeout = time.Hour
	// MinRate is one request an hour, MaxRate a million a second: far
	// beyond what one load generator sends, well within what the pacer
	// computes exactly.
	MinRate = 1.0 / 3600
	MaxRate = 1e6
	// MaxRequests bounds sequential.requests.
	MaxRequests = 10_000_000
	// MaxWorkers bounds load.workers, vegeta's initial goroutines.
	MaxWorkers = 100_000
	// MaxBodyBytes bounds a request body read from body_file: the body is
	// held in memory and sent with every request.
	MaxBodyBytes = 16 << 20
	// MaxFileBytes bounds the scenario file itself.
	MaxFileBytes = 1 << 20
)

// describe shows a node's value in a message: a scalar quoted, a list or
// a mapping by what it is (its Value is empty).
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	return strconv.Quote(n.Value)
}

// goDuration matches what looks like a Go duration, so that one that
// time.ParseDuration refuses is out of range, not misspelt.
var goDuration = regexp.MustCompile(`^[-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$`)

// durationIn reads a duration ("30s", "1m30s", "250ms"; a bare number is
// seconds) from lo to hi.
func (p *parser) durationIn(n *yaml.Node, path string, lo, hi time.Duration) (time.Duration, bool) {
	if n == nil {
		return 0, false
	}
	outside := func() (time.Duration, bool) {
		p.add(n, path, "must be a duration from %v to %v, got %s", lo, hi, describe(n))
		return 0, false
	}
	if n.Kind == yaml.ScalarNode {
		s := strings.TrimSpace(n.Value)
		if d, err := time.ParseDuration(s); err == nil {
			if d < lo || d > hi {
				return outside()
			}
			return d, true
		}
		if goDuration.MatchString(s) {
			return outside() // beyond what time.Duration holds
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			// Compared in float before converting: 1e300 seconds
			// converted first came out negative.
			ns := f * float64(time.Second)
			if ns < float64(lo) || ns > float64(hi) || ns >= math.MaxInt64 {
				return outside()
			}
			return time.Duration(ns), true
		}
	}
	p.add(n, path, "must be a duration such as 30s, 1m30s or 250ms, got %s", describe(n))
	return 0, false
}

// intIn reads a whole number from lo to hi.
func (p *parser) intIn(n *yaml.Node, path string, lo, hi int) (int, bool) {
	if n == nil {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode {
		s := strings.TrimSpace(n.Value)
		if v, err := strconv.Atoi(s); err == nil && v >= lo && v <= hi {
			return v, true
		}
		// A number, but not a whole one in range (9223372036854775808
		// does not even fit an int).
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) {
			p.add(n, path, "must be a whole number from %d to %d, got %s", lo, hi, describe(n))
			return 0, false
		}
	}
	p.add(n, path, "must be a whole number, got %s", describe(n))
	return 0, false
}

// rateIn reads a rate (see rate) from lo to hi requests per second.
func (p *parser) rateIn(n *yaml.Node, path string, lo, hi float64) (float64, bool) {
	r, ok := p.rate(n, path)
	if !ok {
		return 0, false
	}
	if !(r >= lo && r <= hi) {
		p.add(n, path, "must be a positive number of requests per second from %s to %s, got %s",
			strconv.FormatFloat(lo, 'g', 3, 64), strconv.FormatFloat(hi, 'f', -1, 64), describe(n))
		return 0, false
	}
	return r, true
}

// ErrNotReadable is what checkFile and ReadFile wrap when a path is not a
// file the scenario may read.
var ErrNotReadable = errors.New("not a file the scenario may read")

// checkFile resolves name against the scenario's directory dir and checks
// that it is a regular file of at most max bytes inside dir (symbolic
// links followed): a scenario reads only the files beside it, never a
// device (/dev/zero grew a run to 3 GB), a directory or a file elsewhere
// on the machine. It returns the resolved path.
func checkFile(dir, name string, max int64) (string, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return path, fmt.Errorf("%w: the scenario's directory %s: %v", ErrNotReadable, dir, unwrapPath(err))
	}
	abs, err := filepath.Abs(path)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return path, fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	if rel, err := filepath.Rel(root, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path, fmt.Errorf("%w: %s is outside the scenario's directory %s; a scenario reads only files beside it or below", ErrNotReadable, path, root)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return path, fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	if err := regularUpTo(path, fi, max); err != nil {
		return path, err
	}
	return path, nil
}

// regularUpTo says what is wrong with fi, the file at path, for a file of
// at most max bytes.
func regularUpTo(path string, fi fs.FileInfo, max int64) error {
	switch {
	case fi.IsDir():
		return fmt.Errorf("%w: %s is a directory", ErrNotReadable, path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file (%v)", ErrNotReadable, path, fi.Mode().Type())
	case fi.Size() > max:
		return fmt.Errorf("%w: %s has %d bytes, more than the %d allowed", ErrNotReadable, path, fi.Size(), max)
	}
	return nil
}

// ReadBounded reads the regular file at path, refusing anything else and
// anything over max bytes, however the file changes while it is read.
func ReadBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := regularUpTo(path, fi, max); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: %s grew past the %d bytes allowed while it was read", ErrNotReadable, path, max)
	}
	return b, nil
}

// ReadBody reads a body_file that validation resolved: at most
// MaxBodyBytes of a regular file. The runner calls it before it makes the
// run directory.
func ReadBody(path string) ([]byte, error) { return ReadBounded(path, MaxBodyBytes) }

// checkRequestPath says what is wrong with a request path, which is
// appended to a target's URL: a path with an optional ?query, nothing
// that would name another host.
func checkRequestPath(s string) error {
	if s == "" {
		return nil
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return errors.New("holds a control character")
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("is not a URL path: %v", err)
	}
	if u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(s, "//") {
		return errors.New("names a host; give only the path (and ?query) that follows the target's URL")
	}
	if u.Fragment != "" {
		return errors.New("holds a #fragment, which is never sent")
	}
	return nil
}

// checkHeader says what is wrong with one request header: its name must
// be an HTTP token (RFC 9110 5.6.2) and its value hold no control
// character but tab.
func checkHeader(name, value string) error {
	if name == "" {
		return errors.New("a header needs a name")
	}
	for _, r := range name {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return fmt.Errorf("header name %q: use letters, digits and !#$%%&'*+-.^_`|~", name)
		}
	}
	if strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return fmt.Errorf("header %s: the value holds a control character", name)
	}
	return nil
}
