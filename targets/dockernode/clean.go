package dockernode

import (
	"context"
	"errors"
	"fmt"

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
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return out, fmt.Errorf("listing the harness's containers: %w", err)
	}
	for _, c := range cs.Items {
		o := Object{ID: c.ID, Run: c.Labels[LabelRun], Target: c.Labels[LabelTarget]}
		if len(c.Names) > 0 {
			o.Name = c.Names[0]
		}
		if !opts.DryRun {
			if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("removing container %.12s: %w", c.ID, err))
				continue
			}
		}
		out.Containers = append(out.Containers, o)
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
