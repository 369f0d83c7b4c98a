package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/meters/agent"
)

// cmdAgent serves this machine's meters to a harness on another machine:
// the machine under test runs the agent, the load comes from elsewhere.
func cmdAgent(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runAgent(ctx, args, stdout, stderr, nil)
}

// specList is a repeatable flag.
type specList []string

func (s *specList) String() string     { return strings.Join(*s, " ") }
func (s *specList) Set(v string) error { *s = append(*s, v); return nil }

// runAgent is cmdAgent with a context and, for tests, a channel that
// receives the bound address once the agent listens.
func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) int {
	fs := flag.NewFlagSet("harness agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := envFlags(fs)
	listen := fs.String("listen", "127.0.0.1:9190", "`ADDR` to serve on; off loopback a token is required")
	token := fs.String("token", "", "bearer `TOKEN` every request must carry; also read from $"+agent.TokenEnv+" (which keeps it out of the process list)")
	var specs specList
	fs.Var(&specs, "meter", "meter `SPEC` to serve (repeatable; default auto)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: harness agent --listen ADDR --token T [--meter SPEC]... [--path.sysfs DIR] [--path.procfs DIR] [--fixture]")
		fmt.Fprintln(stderr, "\nServes this machine's meters over HTTP to a harness on another machine, which reads them with the")
		fmt.Fprintln(stderr, "meter spec agent:HOST:PORT[?meter=NAME] (README: \"Measuring another machine\").\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	if *token == "" {
		*token = os.Getenv(agent.TokenEnv)
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		fmt.Fprintf(stderr, "harness agent: --listen %q: want HOST:PORT (%v)\n", *listen, err)
		return exitUsage
	}
	if *token == "" && !agent.IsLoopback(*listen) {
		fmt.Fprintf(stderr, "harness agent: --listen %s is reachable from other machines: give a token (--token T or $%s), and the same to the harness as agent:HOST:PORT?token=T or in its $%s\n", *listen, agent.TokenEnv, agent.TokenEnv)
		return exitUsage
	}
	logger := log.New(stderr, "", log.LstdFlags|log.Lmicroseconds)
	e := env()
	e.Log = stderr
	srv, err := agent.NewServer(agent.Config{Specs: specs, Env: e, Token: *token, Version: version(), Logf: logger.Printf})
	if err != nil {
		fmt.Fprintf(stderr, "harness agent: %v\n", err)
		if errors.Is(err, meters.ErrSpec) {
			return exitUsage
		}
		return exitFail
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "harness agent: %v\n", err)
		return exitFail
	}
	d := srv.Describe()
	for _, m := range d.Meters {
		fmt.Fprintf(stdout, "meter %s: %s: %s\n", m.Name, m.Info.Label(), m.Info.Description)
		for _, n := range m.Notes {
			fmt.Fprintf(stdout, "  %s\n", n)
		}
	}
	auth := "requests need the token"
	if *token == "" {
		auth = "no token: loopback only"
	}
	reach := ln.Addr().String()
	if host, port, _ := net.SplitHostPort(reach); net.ParseIP(host).IsUnspecified() {
		reach = net.JoinHostPort(d.Hostname, port)
	}
	fmt.Fprintf(stdout, "agent on %s listening on http://%s (%s); read it with --meter agent:%s\n", d.Hostname, ln.Addr(), auth, reach)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		// Streams last as long as their recordings: stop those first.
		srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		return exitOK
	case err := <-errc:
		fmt.Fprintf(stderr, "harness agent: %v\n", err)
		return exitFail
	}
}
