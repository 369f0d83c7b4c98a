package machine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/academemes/harness/targets/dockernode"
)

// Engine is the part of the Docker Engine API the checks use;
// *client.Client implements it.
type Engine interface {
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
}

var _ Engine = (*client.Client)(nil)

// ConnectEngine opens the Docker Engine named by the environment and pings
// it; an engine that does not answer within two seconds is none (nil, and
// the reason).
func ConnectEngine(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker engine at %s: %w", cli.DaemonHost(), err)
	}
	return cli, nil
}

// RunContainers returns a Classifier.Container for the run runID: a
// container is the run's own when it carries the run's label. Answers are
// cached per container. A container the engine cannot tell about (one
// removed between reading /proc and asking, as cold containers are) gives
// an error, so that it is asked again rather than judged for good.
func RunContainers(eng Engine, runID string) func(id string) (bool, error) {
	var mu sync.Mutex
	cache := map[string]bool{}
	return func(id string) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if v, ok := cache[id]; ok {
			return v, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, err := eng.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return false, err
		}
		own := false
		if c := res.Container.Config; c != nil {
			own = runID != "" && c.Labels[dockernode.LabelRun] == runID
		}
		cache[id] = own
		return own, nil
	}
}

// otherContainers lists the running containers that are not the run's
// own: those left by other harness runs, and the rest.
func otherContainers(ctx context.Context, eng Engine, runID string) (foreign, leftovers []string, err error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := eng.ContainerList(lctx, client.ContainerListOptions{})
	if err != nil {
		return nil, nil, err
	}
	for _, c := range res.Items {
		name := c.ID
		if len(name) > 12 {
			name = name[:12]
		}
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		switch {
		case runID != "" && c.Labels[dockernode.LabelRun] == runID:
		case c.Labels[dockernode.LabelHarness] != "":
			leftovers = append(leftovers, name)
		default:
			foreign = append(foreign, name)
		}
	}
	return foreign, leftovers, nil
}
