// Package option decodes a target kind's options, as a scenario gives them
// (YAML values: strings, numbers, bools, maps), into the kind's typed
// settings.
//
// A kind lists its options once, as fields bound to the variables they set,
// the way package flag binds flags:
//
//	func (o *Options) fields() option.List {
//		return option.List{
//			option.Duration(&o.ReadyTimeout, "ready_timeout", time.Millisecond, "how long ... (default 30s)"),
//			option.Int(&o.MaxContainers, "max_containers", 1, math.MaxInt, "containers alive at once (default 8)"),
//		}
//	}
//
// The same list decodes (List.Decode) and documents (List.Docs, which
// becomes targets.Kind.Options: the keys the scenario validator allows and
// the help shown with an unknown key). Decode goes through the keys in
// sorted order, so the same mistakes give the same errors in the same
// order, and each error is an *Error naming its key, from which the
// scenario validator finds the option's file:line:col.
package option

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Error is a problem with the value of one option.
type Error struct {
	Key string
	Err error
}

// Error formats the problem as "option KEY: reason".
func (e *Error) Error() string { return "option " + e.Key + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an *Error for key, for the checks a kind makes across
// options after Decode.
func Errorf(key, format string, args ...any) error {
	return &Error{Key: key, Err: fmt.Errorf(format, args...)}
}

// ErrUnknown is the reason of an *Error for a key that the list does not
// have.
var ErrUnknown = errors.New("unknown option")

// Errors flattens err, as Decode and a kind's Check return it (errors.Join
// of *Error and others, possibly nested), into its single errors.
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	return []error{err}
}

// Field is one option: its key, one line of doc, and how a value sets the
// variable it is bound to.
type Field struct {
	Name string
	Doc  string
	set  func(v any) error
}

// List is a kind's options.
type List []Field

// Docs returns each key's doc line (for targets.Kind.Options).
func (l List) Docs() map[string]string {
	m := make(map[string]string, len(l))
	for _, f := range l {
		m[f.Name] = f.Doc
	}
	return m
}

// Keys returns the option keys, sorted.
func (l List) Keys() []string {
	keys := make([]string, 0, len(l))
	for _, f := range l {
		keys = append(keys, f.Name)
	}
	slices.Sort(keys)
	return keys
}

// Decode sets the variable of each option that m names, in sorted key
// order, and returns every problem at once: errors.Join of one *Error per
// bad key (an unknown key wraps ErrUnknown). Options m leaves out keep the
// values the variables had, which are the defaults.
func (l List) Decode(m map[string]any) error {
	byName := make(map[string]Field, len(l))
	for _, f := range l {
		byName[f.Name] = f
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		f, ok := byName[k]
		if !ok {
			errs = append(errs, &Error{Key: k, Err: fmt.Errorf("%w; known: %s", ErrUnknown, strings.Join(l.Keys(), ", "))})
			continue
		}
		if err := f.set(m[k]); err != nil {
			errs = append(errs, &Error{Key: k, Err: err})
		}
	}
	return errors.Join(errs...)
}

// show writes a value as a scenario would: strings quoted, so that "5"
// and 5 read differently.
func show(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case nil:
		return "nothing"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprint(v)
}

// String binds a string option. A whole number is taken as its decimal
// text (cpuset: 1, a numeric token).
func String(p *string, name, doc string) Field {
	return Field{Name: name, Doc: doc, set: func(v any) error {
		switch x := v.(type) {
		case string:
			*p = strings.TrimSpace(x)
		case int, int64, uint64:
			*p = fmt.Sprint(x)
		default:
			return fmt.Errorf("want a string, got %s", show(v))
		}
		return nil
	}}
}

// Bool binds a true/false option.
func Bool(p *bool, name, doc string) Field {
	return Field{Name: name, Doc: doc, set: func(v any) error {
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("want true or false, got %s", show(v))
		}
		*p = b
		return nil
	}}
}

// Integer is the integer types an Int option can set.
type Integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// Int binds a whole-number option in [lo, hi].
func Int[T Integer](p *T, name string, lo, hi T, doc string) Field {
	return Field{Name: name, Doc: doc, set: func(v any) error {
		f, ok := number(v)
		if !ok || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
			return fmt.Errorf("want a whole number%s, got %s", between(float64(lo), float64(hi)), show(v))
		}
		*p = T(f)
		return nil
	}}
}

// Float binds a number option in [lo, hi] (math.Inf(1) for no bound).
func Float(p *float64, name string, lo, hi float64, doc string) Field {
	return Field{Name: name, Doc: doc, set: func(v any) error {
		f, ok := number(v)
		if !ok || f < lo || f > hi {
			return fmt.Errorf("want a number%s, got %s", between(lo, hi), show(v))
		}
		*p = f
		return nil
	}}
}

// between says what range a number must be in; "" for none.
func between(lo, hi float64) string {
	g := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	switch {
	case lo <= -math.MaxInt64 && hi >= math.MaxInt64:
		return ""
	case hi >= math.MaxInt64:
		return " of at least " + g(lo)
	case lo <= -math.MaxInt64:
		return " of at most " + g(hi)
	}
	return " from " + g(lo) + " to " + g(hi)
}

// number reads a YAML number, or a string that holds one. NaN and the
// infinities are not numbers here.
func number(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	case float64:
		f = x
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// Duration binds a duration option written as Go writes durations ("30s",
// "1m30s", "250ms") of at least lo. A bare number is refused rather than
// guessed at: it could mean seconds or nanoseconds.
func Duration[T ~int64](p *T, name string, lo T, doc string) Field {
	return Field{Name: name, Doc: doc, set: func(v any) error {
		s, ok := v.(string)
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if !ok || err != nil {
			return fmt.Errorf("want a duration like 30s, got %s", show(v))
		}
		if T(d) < lo {
			return fmt.Errorf("want a duration of at least %s, got %s", time.Duration(lo), d)
		}
		*p = T(d)
		return nil
	}}
}

// Size binds a size in bytes: a whole number of bytes, or a number with a
// unit k, m, g (binary multiples, as docker --memory), optionally followed
// by "b" or "ib": 256m, 512MB and 512MiB are all 512 × 2^20 bytes.
func Size[T ~int64](p *T, name, doc string) Field {
	return Field{Name: name, Doc: doc, set: func(v any) error {
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		*p = T(n)
		return nil
	}}
}

// ParseSize reads a size as Size does.
func ParseSize(v any) (int64, error) {
	bad := fmt.Errorf("want a size like 256m or a number of bytes, got %s", show(v))
	s, isString := v.(string)
	if !isString {
		f, ok := number(v)
		if !ok || f < 0 || f != math.Trunc(f) {
			return 0, bad
		}
		return int64(f), nil
	}
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "ib"), "b")
	mult := 1.0
	if s != "" {
		switch s[len(s)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		}
		if mult != 1 {
			s = s[:len(s)-1]
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*mult > math.MaxInt64 {
		return 0, bad
	}
	return int64(f * mult), nil
}

// Enum binds an option that takes one of the allowed words.
func Enum[T ~string](p *T, name string, allowed []T, doc string) Field {
	return Field{Name: name, Doc: doc, set: func(v any) error {
		s, _ := v.(string)
		if i := slices.Index(allowed, T(strings.TrimSpace(s))); i >= 0 {
			*p = allowed[i]
			return nil
		}
		words := make([]string, len(allowed))
		for i, a := range allowed {
			words[i] = string(a)
		}
		return fmt.Errorf("want one of %s, got %s", strings.Join(words, ", "), show(v))
	}}
}

// URL binds an http:// or https:// base URL with a host; a trailing slash
// is dropped.
func URL(p **url.URL, name, doc string) Field {
	return Field{Name: name, Doc: doc, set: func(v any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a URL like http://HOST:PORT, got %s", show(v))
		}
		u, err := ParseURL(s)
		if err != nil {
			return err
		}
		*p = u
		return nil
	}}
}

// ParseURL reads a base URL as URL does.
func ParseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSpace(s), "/"))
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("want a URL like http://HOST:PORT, got %q", s)
	}
	return u, nil
}

// StringMap binds a mapping of names to scalar values (environment
// variables); numbers and bools are taken as their text.
func StringMap(p *map[string]string, name, doc string) Field {
	return Field{Name: name, Doc: doc, set: func(v any) error {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a mapping of names to values, got %s", show(v))
		}
		out := make(map[string]string, len(m))
		var errs []string
		for k, val := range m {
			switch val.(type) {
			case map[string]any, []any, nil:
				errs = append(errs, fmt.Sprintf("%s: want a value, got %s", k, show(val)))
			default:
				out[k] = fmt.Sprint(val)
			}
		}
		if len(errs) > 0 {
			slices.Sort(errs)
			return errors.New(strings.Join(errs, "; "))
		}
		*p = out
		return nil
	}}
}
