package meters

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Spec is a parsed meter spec string.
//
// Grammar:
//
//	spec    = driver [ ":" rest ]
//	rest    = arg [ "?" options ] | options
//	options = key "=" value { ("&" | ",") key "=" value }
//
// arg is the driver's main argument (a device path, HOST:PORT); options are
// keyed settings. When rest has no "?" but its first element holds "=", the
// whole rest is options: "rapl:sysfs=/tmp/sys,rate=1000". Values may be
// URL-escaped. Examples:
//
//	auto
//	rapl
//	rapl:sysfs=/tmp/fixture/sys&rate=1000
//	estimate:idle=2W,max=15W
//	powersensor3:/dev/ttyACM0
//	pmd-usb:/dev/ttyUSB0?baud=460800
//	modbus:192.0.2.7:502?unit=1&outlet=2&map=gude-1105&rate=2
type Spec struct {
	Raw     string
	Driver  string
	Arg     string
	Options map[string]string
}

// driverName is what a driver's name may hold.
var driverName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// ParseSpec parses s per the grammar on Spec.
func ParseSpec(s string) (Spec, error) {
	sp := Spec{Raw: s, Options: map[string]string{}}
	s = strings.TrimSpace(s)
	if s == "" {
		return sp, fmt.Errorf("%w: empty spec", ErrSpec)
	}
	// The driver's name ends at ':' or, for a spec with options only and
	// no ':', at '?' ("auto?x=1" is auto with an option, which auto then
	// refuses, not a driver named "auto?x=1").
	end := strings.IndexAny(s, ":?")
	if end < 0 {
		end = len(s)
	}
	driver, rest := s[:end], strings.TrimPrefix(s[end:], ":")
	sp.Driver = strings.ToLower(driver)
	if sp.Driver == "" {
		return sp, fmt.Errorf("%w %q: no driver name before ':'", ErrSpec, s)
	}
	if !driverName.MatchString(sp.Driver) {
		return sp, fmt.Errorf("%w %q: %q is not a driver name (letters, digits, '-' and '_')", ErrSpec, s, driver)
	}
	arg, opts, hasQuery := strings.Cut(rest, "?")
	if !hasQuery {
		first, _, _ := strings.Cut(strings.ReplaceAll(rest, ",", "&"), "&")
		if strings.Contains(first, "=") {
			arg, opts = "", rest
		}
	}
	sp.Arg = arg
	if opts != "" {
		for _, kv := range strings.FieldsFunc(opts, func(r rune) bool { return r == '&' || r == ',' }) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return sp, fmt.Errorf("%w %q: option %q is not key=value", ErrSpec, s, kv)
			}
			uk, err1 := url.QueryUnescape(k)
			uv, err2 := url.QueryUnescape(v)
			if err1 != nil || err2 != nil {
				return sp, fmt.Errorf("%w %q: option %q is badly escaped", ErrSpec, s, kv)
			}
			if _, dup := sp.Options[uk]; dup {
				return sp, fmt.Errorf("%w %q: option %q given twice", ErrSpec, s, uk)
			}
			sp.Options[uk] = uv
		}
	}
	return sp, nil
}

// Unknown returns an error naming the options of sp that are not in
// allowed, or nil. Drivers call it so that a typo is an error, not ignored.
func (sp Spec) Unknown(allowed ...string) error {
	var bad []string
	for k := range sp.Options {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("%w %q: unknown option(s) %s; allowed: %s", ErrSpec, sp.Raw,
		strings.Join(bad, ", "), strings.Join(allowed, ", "))
}

// CheckAuto finds what is wrong with an "auto" spec: auto chooses the
// meter, so it takes no argument and no options (a setting belongs to the
// driver it would pick, which must then be named).
func (sp Spec) CheckAuto() error {
	if sp.Arg != "" || len(sp.Options) > 0 {
		return fmt.Errorf("%w %q: auto takes no argument or options; to set some, name the driver, e.g. rapl:rate=100 or estimate:idle=5W", ErrSpec, sp.Raw)
	}
	return nil
}

// secretOption matches the options of a spec that hold a secret.
var secretOption = regexp.MustCompile(`(?i)((?:^|[?&,:])(?:token|password)=)[^&,]*`)

// Redact is spec with the values of its secret options (token=,
// password=) replaced by ***, for messages and files: a spec may carry
// an agent's token, and run.json and logs must not.
func Redact(spec string) string {
	return secretOption.ReplaceAllString(spec, "${1}***")
}
