package dockernode

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/academemes/harness/targets/internal/nodeimage"
)

// Option keys of the docker-node kind in a scenario's target entry.
const (
	OptCPUs          = "cpus"
	OptCpuset        = "cpuset"
	OptMemory        = "memory"
	OptImageSource   = "image_source"
	OptReadyTimeout  = "ready_timeout"
	OptMaxContainers = "max_containers"
	OptKeepImage     = "keep_image"
	OptNode          = "node"
)

// optionDocs documents the option keys (targets.Kind.Options).
var optionDocs = map[string]string{
	OptCPUs:          "CPU limit per container, in CPUs (docker run --cpus), e.g. 1 or 0.5; 0 or absent: no limit",
	OptCpuset:        "CPUs a container may run on (docker run --cpuset-cpus), e.g. \"1\" or \"0-1\"",
	OptMemory:        "memory limit per container: bytes or a size with k/m/g (binary, as docker), e.g. 256m, 512MiB",
	OptImageSource:   "how to make the image: auto (default: registry when reachable, else local-node), registry (Dockerfile FROM node:20-slim), local-node (the local node binary and its libraries)",
	OptReadyTimeout:  "how long a new container may take to answer its health path (default 30s)",
	OptMaxContainers: "cold mode: containers alive at once; further requests wait (default 8)",
	OptKeepImage:     "keep the image after Stop as a cache (default true; `harness clean` removes it)",
	OptNode:          "local-node source: the node binary to assemble the image from (default: node on PATH)",
}

// Options are the docker-node settings, decoded from a scenario.
type Options struct {
	// CPUs limits each container's CPU time (NanoCPUs); 0 is no limit.
	CPUs float64
	// Cpuset pins containers to CPUs ("" is no pinning).
	Cpuset string
	// Memory limits each container, in bytes; 0 is no limit.
	Memory int64
	// ImageSource picks how the image is made.
	ImageSource nodeimage.Source
	// ReadyTimeout bounds create-to-ready of one container.
	ReadyTimeout time.Duration
	// MaxContainers bounds the containers alive at once in cold mode.
	MaxContainers int
	// KeepImage keeps a freshly built image after Stop.
	KeepImage bool
	// Node is the local node binary ("" looks it up on PATH).
	Node string
}

// DefaultOptions are the settings when a scenario gives none.
func DefaultOptions() Options {
	return Options{ImageSource: nodeimage.SourceAuto, ReadyTimeout: 30 * time.Second, MaxContainers: 8, KeepImage: true}
}

// ParseOptions decodes scenario options (YAML values) over the defaults and
// reports every problem at once.
func ParseOptions(m map[string]any) (Options, error) {
	o := DefaultOptions()
	var errs []error
	bad := func(key string, err error) { errs = append(errs, fmt.Errorf("option %s: %w", key, err)) }
	for key, v := range m {
		switch key {
		case OptCPUs:
			f, err := number(v)
			if err == nil && (f < 0 || math.IsNaN(f) || math.IsInf(f, 0)) {
				err = fmt.Errorf("%v is not a CPU count >= 0", v)
			}
			if err != nil {
				bad(key, err)
			}
			o.CPUs = f
		case OptCpuset:
			switch x := v.(type) {
			case string:
				o.Cpuset = strings.TrimSpace(x)
			case int, int64, uint64:
				o.Cpuset = fmt.Sprint(x)
			default:
				bad(key, fmt.Errorf("want a CPU list like \"0-1\", got %v", v))
			}
		case OptMemory:
			n, err := ParseBytes(v)
			if err != nil {
				bad(key, err)
			}
			o.Memory = n
		case OptImageSource:
			s, _ := v.(string)
			src, err := nodeimage.ParseSource(s)
			if err != nil {
				bad(key, err)
			}
			o.ImageSource = src
		case OptReadyTimeout:
			s, _ := v.(string)
			d, err := time.ParseDuration(s)
			if err == nil && d <= 0 {
				err = errors.New("must be positive")
			}
			if err != nil {
				bad(key, fmt.Errorf("want a duration like 30s: %w", err))
			}
			o.ReadyTimeout = d
		case OptMaxContainers:
			f, err := number(v)
			if err == nil && (f < 1 || f != math.Trunc(f)) {
				err = fmt.Errorf("%v is not a whole number >= 1", v)
			}
			if err != nil {
				bad(key, err)
			}
			o.MaxContainers = int(f)
		case OptKeepImage:
			b, ok := v.(bool)
			if !ok {
				bad(key, fmt.Errorf("want true or false, got %v", v))
			}
			o.KeepImage = b
		case OptNode:
			s, ok := v.(string)
			if !ok {
				bad(key, fmt.Errorf("want a path, got %v", v))
			}
			o.Node = s
		default:
			bad(key, errors.New("unknown option for docker-node"))
		}
	}
	return o, errors.Join(errs...)
}

// number reads a YAML number (or a numeric string).
func number(v any) (float64, error) {
	switch x := v.(type) {
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", x)
		}
		return f, nil
	}
	return 0, fmt.Errorf("%v is not a number", v)
}

// ParseBytes reads a memory size: a number of bytes, or a number with a
// unit b, k, m, g (binary multiples, as docker --memory), optionally
// followed by "b" or "ib" ("512m", "512MB", "512MiB" are the same).
func ParseBytes(v any) (int64, error) {
	if s, ok := v.(string); ok {
		s = strings.ToLower(strings.TrimSpace(s))
		s = strings.TrimSuffix(strings.TrimSuffix(s, "ib"), "b")
		mult := int64(1)
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
		if err != nil || f < 0 {
			return 0, fmt.Errorf("%q is not a size like 256m", v)
		}
		return int64(f * float64(mult)), nil
	}
	f, err := number(v)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%v is not a size like 256m", v)
	}
	return int64(f), nil
}
