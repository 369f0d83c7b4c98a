package dockernode

import (
	"math"
	"time"

	"github.com/academemes/harness/targets/internal/nodeimage"
	"github.com/academemes/harness/targets/option"
)

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
	// ColdStartMethod is how cold mode runs a request in a fresh
	// container: ColdHTTP or ColdStdin.
	ColdStartMethod ColdStartMethod
}

// ColdStartMethod is how cold mode runs one request in a fresh container.
type ColdStartMethod string

// Cold-start methods.
const (
	// ColdHTTP creates and starts a container running the function's HTTP
	// server, waits until its health path answers, and forwards the
	// request to it: start-up is create to ready.
	ColdHTTP ColdStartMethod = "http"
	// ColdStdin is the original study's `docker run --rm -i`: a container
	// runs the function once, the request on its stdin and the answer on
	// its stdout, attached through the Engine API; start-up is create to
	// the function loaded (stdin.js's ready line).
	ColdStdin ColdStartMethod = "stdin"
)

// ColdStartMethods are the methods a scenario may choose.
var ColdStartMethods = []ColdStartMethod{ColdHTTP, ColdStdin}

// fields lists the option keys of a scenario's docker-node target, bound
// to o: the one place that names, documents and decodes them.
func (o *Options) fields() option.List {
	return option.List{
		option.Float(&o.CPUs, "cpus", 0, math.Inf(1), "CPU limit per container, in CPUs (docker run --cpus), e.g. 1 or 0.5; 0 or absent: no limit"),
		option.String(&o.Cpuset, "cpuset", "CPUs a container may run on (docker run --cpuset-cpus), e.g. \"1\" or \"0-1\""),
		option.Size(&o.Memory, "memory", "memory limit per container: bytes or a size with k/m/g (binary, as docker), e.g. 256m, 512MiB"),
		option.Enum(&o.ImageSource, "image_source", nodeimage.Sources,
			"how to make the image: auto (default: registry when reachable, else local-node), registry (Dockerfile FROM node:20-slim), local-node (the local node binary and its libraries)"),
		option.Duration(&o.ReadyTimeout, "ready_timeout", time.Millisecond, "how long a new container may take to answer its health path (default 30s)"),
		option.Int(&o.MaxContainers, "max_containers", 1, math.MaxInt, "cold mode: containers alive at once; further requests wait (default 8)"),
		option.Bool(&o.KeepImage, "keep_image", "keep the image after Stop as a cache (default true; `harness clean` removes it)"),
		option.String(&o.Node, "node", "local-node source: the node binary to assemble the image from (default: node on PATH)"),
		option.Enum(&o.ColdStartMethod, "cold_start_method", ColdStartMethods,
			"cold mode: http (default: a container per request serving HTTP, health-checked, the request forwarded) or stdin (docker run --rm -i: the request on the container's stdin, the answer on its stdout, as the original study ran it)"),
	}
}

// DefaultOptions are the settings when a scenario gives none.
func DefaultOptions() Options {
	return Options{ImageSource: nodeimage.SourceAuto, ReadyTimeout: 30 * time.Second, MaxContainers: 8, KeepImage: true, ColdStartMethod: ColdHTTP}
}

// ParseOptions decodes scenario options (YAML values) over the defaults and
// reports every problem at once, one *option.Error per key in key order.
func ParseOptions(m map[string]any) (Options, error) {
	o := DefaultOptions()
	err := o.fields().Decode(m)
	return o, err
}
