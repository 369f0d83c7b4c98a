package option

import (
	"errors"
	"math"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// settings is a kind's typed options, as a test stand-in.
type settings struct {
	Name    string
	On      bool
	N       int
	Pages   uint32
	CPUs    float64
	Timeout time.Duration
	Idle    myDuration
	Memory  int64
	Source  source
	Remote  *url.URL
	Env     map[string]string
}

type (
	myDuration int64
	source     string
)

func (s *settings) fields() List {
	return List{
		String(&s.Name, "name", "a name"),
		Bool(&s.On, "on", "a switch"),
		Int(&s.N, "n", 1, math.MaxInt, "a count"),
		Int(&s.Pages, "pages", 1, 65536, "pages"),
		Float(&s.CPUs, "cpus", 0, math.Inf(1), "CPUs"),
		Duration(&s.Timeout, "timeout", time.Millisecond, "a timeout"),
		Duration(&s.Idle, "idle", math.MinInt64, "any duration"),
		Size(&s.Memory, "memory", "a size"),
		Enum(&s.Source, "source", []source{"auto", "local"}, "a choice"),
		URL(&s.Remote, "remote", "a URL"),
		StringMap(&s.Env, "env", "variables"),
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want func(s settings) bool
	}{
		{"nothing keeps the defaults", nil, func(s settings) bool { return s.N == 7 && s.Timeout == time.Second }},
		{"every kind of value", map[string]any{"name": " x ", "on": true, "n": 3, "pages": 65536, "cpus": 0.5,
			"timeout": "250ms", "idle": "-1s", "memory": "256m", "source": "local", "remote": "http://127.0.0.1:8080/",
			"env": map[string]any{"A": 1, "B": "b", "C": true}},
			func(s settings) bool {
				return s.Name == "x" && s.On && s.N == 3 && s.Pages == 65536 && s.CPUs == 0.5 && s.Timeout == 250*time.Millisecond &&
					s.Idle == myDuration(-time.Second) && s.Memory == 256<<20 && s.Source == "local" &&
					s.Remote.String() == "http://127.0.0.1:8080" && reflect.DeepEqual(s.Env, map[string]string{"A": "1", "B": "b", "C": "true"})
			}},
		{"a whole number as a string", map[string]any{"name": 12, "n": "4", "cpus": 1}, func(s settings) bool {
			return s.Name == "12" && s.N == 4 && s.CPUs == 1
		}},
		{"sizes", map[string]any{"memory": "512MiB"}, func(s settings) bool { return s.Memory == 512<<20 }},
		{"a size in bytes", map[string]any{"memory": 1000}, func(s settings) bool { return s.Memory == 1000 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := settings{N: 7, Timeout: time.Second}
			if err := s.fields().Decode(tc.in); err != nil {
				t.Fatal(err)
			}
			if !tc.want(s) {
				t.Errorf("Decode(%v) = %+v", tc.in, s)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		key  string
		v    any
		want string
	}{
		{"a word for a number", "n", "lots", `want a whole number of at least 1, got "lots"`},
		{"a number out of range", "pages", 0, "want a whole number from 1 to 65536, got 0"},
		{"a fraction for a count", "n", 1.5, "want a whole number of at least 1, got 1.5"},
		{"a negative number", "cpus", -1, "want a number of at least 0, got -1"},
		{"a bare number for a duration", "timeout", 5, "want a duration like 30s, got 5"},
		{"a number as a string for a duration", "timeout", "5", `want a duration like 30s, got "5"`},
		{"a duration too short", "timeout", "0s", "want a duration of at least 1ms, got 0s"},
		{"a bad size", "memory", "lots", `want a size like 256m or a number of bytes, got "lots"`},
		{"a negative size", "memory", "-5m", `want a size like 256m or a number of bytes, got "-5m"`},
		{"a word not allowed", "source", "hub", `want one of auto, local, got "hub"`},
		{"a string for a bool", "on", "yes", `want true or false, got "yes"`},
		{"a list for a string", "name", []any{1}, "want a string, got a list"},
		{"a URL without scheme", "remote", "127.0.0.1:80", `want a URL like http://HOST:PORT, got "127.0.0.1:80"`},
		{"a list for a map", "env", []any{1}, "want a mapping of names to values, got a list"},
		{"a nested map", "env", map[string]any{"A": map[string]any{}}, "A: want a value, got a mapping"},
		{"an unknown key", "colour", "red", "unknown option; known: cpus, env, idle, memory, n, name, on, pages, remote, source, timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s settings
			err := s.fields().Decode(map[string]any{tc.key: tc.v})
			errs := Errors(err)
			if len(errs) != 1 {
				t.Fatalf("Decode: %v; want one error", err)
			}
			var oe *Error
			if !errors.As(errs[0], &oe) || oe.Key != tc.key || oe.Err.Error() != tc.want {
				t.Errorf("Decode error = %#v (%v); want key %s, %q", errs[0], errs[0], tc.key, tc.want)
			}
			if got, want := err.Error(), "option "+tc.key+": "+tc.want; got != want {
				t.Errorf("message %q, want %q", got, want)
			}
		})
	}
}

// TestDecodeOrder: every problem is reported, in key order, whatever
// order the map gives.
func TestDecodeOrder(t *testing.T) {
	in := map[string]any{"timeout": 5, "n": "lots", "colour": "red", "cpus": -1, "pages": 0, "on": "yes"}
	want := []string{"colour", "cpus", "n", "on", "pages", "timeout"}
	for range 20 {
		var s settings
		var keys []string
		for _, e := range Errors(s.fields().Decode(in)) {
			var oe *Error
			if !errors.As(e, &oe) {
				t.Fatalf("not an *Error: %v", e)
			}
			keys = append(keys, oe.Key)
		}
		if !reflect.DeepEqual(keys, want) {
			t.Fatalf("keys %v, want %v", keys, want)
		}
	}
	var s settings
	err := s.fields().Decode(map[string]any{"colour": 1})
	if !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown key: %v does not wrap ErrUnknown", err)
	}
}

func TestDocs(t *testing.T) {
	var s settings
	docs := s.fields().Docs()
	if len(docs) != 11 || docs["timeout"] != "a timeout" {
		t.Errorf("Docs = %v", docs)
	}
}

func TestErrorsFlattens(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	got := Errors(errors.Join(a, errors.Join(b, c)))
	if !reflect.DeepEqual(got, []error{a, b, c}) {
		t.Errorf("Errors = %v", got)
	}
	if Errors(nil) != nil {
		t.Error("Errors(nil) not empty")
	}
	if !strings.Contains(Errorf("k", "bad %d", 1).Error(), "option k: bad 1") {
		t.Error("Errorf")
	}
}
