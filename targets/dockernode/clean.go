package dockernode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/academemes/harness/targets/internal/nodeimage"
)

// CleanOptions selects what Clean removes.
type CleanOptions struct {
	// RunID limits Clean to the objects of one run; "" is every object
	// that carries the harness label.
	RunID string
	// DryRun lists what would be removed and removes nothing.
	DryRun bool
}

// Cleaned is what Clean found (and, unless DryRun, removed).
type Cleaned struct {
	Containers []Object
	Images     []Object
}

// Object is one container or image.
type Object struct {
	ID     string
	Name   string // container name or first image tag
	Run    string // the LabelRun label
	Target string // the LabelTarget label (containers)
}

// Clean removes every container and then every image that carries the
// harness labels (all of them, or one run's): what a crash or a killed
// harness left behind. Containers go first, since an image in use cannot
// be removed. It connects to the engine named by the environment; an
// unreachable engine gives an error wrapping targets.ErrUnavailable.
// It goes on past a failed removal and reports every failure.
func Clean(ctx context.Context, opts CleanOptions) (Cleaned, error) {
	cli, err := nodeimage.Connect(ctx)
	if err != nil {
		return Cleaned{}, err
	}
	defer cli.Close()
	return clean(ctx, cli, opts)
}

func clean(ctx context.Context, cli *client.Client, opts CleanOptions) (Cleaned, error) {
	var out Cleaned
	var errs []error
	filter := nodeimage.HarnessFilter(opts.RunID)
	// A killed harness may have create requests in flight that the engine
	// completes after the listing; so list again, after a short settle,
	// until a pass finds nothing new (a few passes at most).
	removed := map[string]bool{}
	for pass := 0; pass < 4; pass++ {
		if pass > 0 {
			select {
			case <-ctx.Done():
				return out, errors.Join(append(errs, ctx.Err())...)
			case <-time.After(300 * time.Millisecond):
			}
		}
		cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
		if err != nil {
			return out, errors.Join(append(errs, fmt.Errorf("listing the harness's containers: %w", err))...)
		}
		fresh := 0
		for _, c := range cs.Items {
			if removed[c.ID] {
				continue
			}
			removed[c.ID] = true
			fresh++
			o := Object{ID: c.ID, Run: c.Labels[LabelRun], Target: c.Labels[LabelTarget]}
			if len(c.Names) > 0 {
				o.Name = c.Names[0]
			}
			if !opts.DryRun {
				if err := removeContainer(ctx, cli, c.ID); err != nil {
					errs = append(errs, fmt.Errorf("removing container %.12s: %w", c.ID, err))
					continue
				}
			}
			out.Containers = append(out.Containers, o)
		}
		if fresh == 0 || opts.DryRun {
			break
		}
	}
	ims, err := cli.ImageList(ctx, client.ImageListOptions{All: true, Filters: filter})
	if err != nil {
		return out, errors.Join(append(errs, fmt.Errorf("listing the harness's images: %w", err))...)
	}
	for _, im := range ims.Items {
		o := Object{ID: im.ID, Run: im.Labels[LabelRun]}
		if len(im.RepoTags) > 0 {
			o.Name = im.RepoTags[0]
		}
		if !opts.DryRun {
			if _, err := cli.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("removing image %s: %w", o.Name, err))
				continue
			}
		}
		out.Images = append(out.Images, o)
	}
	return out, errors.Join(errs...)
}

// removeContainer removes a container, and counts as done a container that
// is already gone or that the engine is already removing (a killed run's
// own removal, or an auto-remove, can be under way): it then waits until
// the container has gone, so that its image can be removed after it.
func removeContainer(ctx context.Context, cli *client.Client, id string) error {
	_, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil || isNotFound(err):
		return nil
	case !strings.Contains(err.Error(), "already in progress"):
		return err
	}
	for {
		if _, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); isNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the engine's removal: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
