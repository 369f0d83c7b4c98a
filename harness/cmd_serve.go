package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets/option"
	"github.com/academemes/harness/targets/wasm"
)

// cmdServe runs the Purify platform on its own, so that the machine under
// test can differ from the machine that drives the load.
func cmdServe(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, args, stdout, stderr, nil)
}

// serve is cmdServe with a context and, for tests, a channel that receives
// the bound address once the server listens.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) int {
	fs := flag.NewFlagSet("harness serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "`ADDR` to listen on; off loopback needs --token")
	dir := fs.String("functions", "", "functions `DIR` to load at start (package functions layout); empty: the functions built into harness")
	token := fs.String("token", "", "bearer `TOKEN` required on the deploy API (/functions...); also read from $PURIFY_TOKEN")
	cacheDir := fs.String("cache-dir", wasm.DefaultCacheDir(), "`DIR` for compiled code kept across restarts (empty: memory only)")
	invokeToken := fs.String("invoke-token", "", "bearer `TOKEN` required to invoke functions (/fn/...), otherwise open; also read from $PURIFY_INVOKE_TOKEN")
	maxMemory := fs.String("max-memory", "", "`SIZE` of linear memory all instances together may commit, e.g. 8g (default: half the machine's memory)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: harness serve --listen ADDR --functions DIR [--token T] [--cache-dir DIR]")
		fmt.Fprintln(stderr, "\nRuns Purify, the Wasm function platform: invoke at /fn/NAME, deploy at /functions/NAME")
		fmt.Fprintln(stderr, "(see functions/README.md).\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	if *token == "" {
		*token = os.Getenv("PURIFY_TOKEN")
	}
	if *invokeToken == "" {
		*invokeToken = os.Getenv("PURIFY_INVOKE_TOKEN")
	}
	var maxMemoryBytes int64
	if *maxMemory != "" {
		n, err := option.ParseSize(*maxMemory)
		if err != nil || n <= 0 {
			fmt.Fprintf(stderr, "harness serve: --max-memory %s: want a size like 8g\n", *maxMemory)
			return exitUsage
		}
		maxMemoryBytes = n
	}
	if err := wasm.CheckListen(*listen, *token); err != nil {
		fmt.Fprintln(stderr, "harness serve:", err)
		return exitUsage
	}
	if *dir != "" {
		if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
			fmt.Fprintf(stderr, "harness serve: --functions %s: not a directory\n", *dir)
			return exitUsage
		}
	}
	logger := log.New(stderr, "", log.LstdFlags|log.Lmicroseconds)
	p, err := wasm.NewPlatform(wasm.Options{CacheDir: *cacheDir, Logf: logger.Printf, MaxMemoryBytes: maxMemoryBytes})
	if err != nil {
		fmt.Fprintln(stderr, "harness serve:", err)
		return exitFail
	}
	defer p.Close()
	if err := p.LoadFS(ctx, functions.Open(*dir)); err != nil {
		logger.Printf("purify: some functions were not loaded (the others are served): %v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(stderr, "harness serve:", err)
		return exitFail
	}
	srv := wasm.NewServer(p.Handler(wasm.HandlerOptions{Token: *token, InvokeToken: *invokeToken}))
	for _, f := range p.Functions() {
		fmt.Fprintf(stdout, "serving %s (%s) at http://%s/fn/%s\n", f.Name, f.Config.Mode, ln.Addr(), f.Name)
	}
	fmt.Fprintf(stdout, "purify listening on http://%s (deploy API %s; invocation %s; instances may commit %d MiB)\n", ln.Addr(),
		map[bool]string{true: "needs the bearer token", false: "open on loopback"}[*token != ""],
		map[bool]string{true: "needs the invoke token", false: "open"}[*invokeToken != ""], p.Memory().LimitBytes>>20)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return exitOK
	case err := <-errc:
		fmt.Fprintln(stderr, "harness serve:", err)
		return exitFail
	}
}
