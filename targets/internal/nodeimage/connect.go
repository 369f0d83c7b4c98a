package nodeimage

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/client"

	"github.com/academemes/harness/targets"
)

// Connect opens a client to the Docker Engine named by the environment
// (DOCKER_HOST, DOCKER_API_VERSION, ...; the local socket by default) and
// pings it. An engine that cannot be reached gives an error that wraps
// targets.ErrUnavailable and says why. Close the client when done.
func Connect(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("%w: docker client: %w", targets.ErrUnavailable, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w: docker engine at %s: %w", targets.ErrUnavailable, cli.DaemonHost(), err)
	}
	return cli, nil
}
