// Package dockertest holds what the tests of the container targets share:
// a Docker Engine client, or a clear skip where a user's machine lacks what
// they need. Under CI=true a missing requirement fails the test instead,
// so that CI never passes by skipping.
package dockertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/academemes/harness/targets/internal/nodeimage"
)

// Engine returns a client of the Docker Engine named by the environment.
// It skips the test (fails under CI=true) when no engine answers, or when
// there is no local node binary, from which function images are assembled
// where no registry is reachable.
func Engine(t testing.TB) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := nodeimage.Connect(ctx)
	if err != nil {
		Missing(t, "no Docker Engine reachable: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	if _, err := exec.LookPath("node"); err != nil {
		Missing(t, "no local node binary to assemble function images from (install Node.js): %v", err)
	}
	return cli
}

// Missing skips the test with the reason, or fails it under CI=true.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true needs this: "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}
