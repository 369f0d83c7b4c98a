package runner

import (
	"net"
	"os"
	"strings"

	"github.com/academemes/harness/harness/internal/runstore"
	"github.com/academemes/harness/harness/internal/scenario"
	"github.com/academemes/harness/targets"
)

// hostName is how run.json names a machine: runstore.HostLocal for the
// one the harness runs on, whatever it was called (nothing, localhost, a
// loopback address, one of its own addresses, its host name), so that a
// target and a meter on it compare equal; any other name as written, in
// lower case.
func hostName(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	switch h {
	case "", runstore.HostLocal, "localhost":
		return runstore.HostLocal
	}
	if ip := net.ParseIP(h); ip != nil && (ip.IsLoopback() || ownAddress(ip)) {
		return runstore.HostLocal
	}
	if name, err := os.Hostname(); err == nil && strings.EqualFold(name, h) {
		return runstore.HostLocal
	}
	return h
}

// ownAddress reports whether ip is one of this machine's addresses.
func ownAddress(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// targetHost is the machine that serves a target: the scenario's host:,
// else what its kind says of its options, else this one.
func targetHost(ts scenario.Target, spec targets.Spec) string {
	h := ts.Host
	if k, ok := targets.Lookup(ts.Kind); ok && h == "" && k.Host != nil {
		h = k.Host(spec)
	}
	return hostName(h)
}
