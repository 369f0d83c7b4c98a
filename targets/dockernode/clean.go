package dockernode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/internal/nodeimage"
)

// Clean removes every container and then every image that carries the
// harness labels (all of them, or one run's): what a crash or a killed
// harness left behind. Containers go first, since an image in use cannot
// be removed. What opts.Keep keeps (a run still going) stays, and so do
// the images its containers use. It connects to the engine named by the
// environment; an unreachable engine gives an error wrapping
// targets.ErrUnavailable. It goes on past a failed removal and reports
// every failure. It is the kind's targets.Kind.Clean.
func Clean(ctx context.Context, opts targets.CleanOptions) ([]targets.Leftover, error) {
	cli, err := nodeimage.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	var out []targets.Leftover
	var errs []error
	filter := nodeimage.HarnessFilter(opts.RunID)
	// A killed harness may have create requests in flight that the engine
	// completes after the listing; so list again, after a short settle,
	// until a pass finds nothing new (a few passes at most).
	removed := map[string]bool{}
	// inUse are the images of containers kept: a live run's image stays
	// with them, whoever built it.
	inUse := map[string]bool{}
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
			o := targets.Leftover{What: "container", ID: c.ID, Run: c.Labels[LabelRun], Target: c.Labels[LabelTarget], Owner: targets.OwnerFromLabels(c.Labels)}
			if len(c.Names) > 0 {
				o.Name = c.Names[0]
			}
			if o.Kept = opts.Keep(o); o.Kept != "" {
				inUse[c.ImageID] = true
				fresh-- // not removed: no reason to list again
				out = append(out, o)
				continue
			}
			if !opts.DryRun {
				if err := removeContainer(ctx, cli, c.ID); err != nil {
					errs = append(errs, fmt.Errorf("removing container %.12s: %w", c.ID, err))
					continue
				}
			}
			out = append(out, o)
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
		o := targets.Leftover{What: "image", ID: im.ID, Run: im.Labels[LabelRun], Owner: targets.OwnerFromLabels(im.Labels)}
		if len(im.RepoTags) > 0 {
			o.Name = im.RepoTags[0]
		}
		if o.Kept = opts.Keep(o); o.Kept == "" && inUse[im.ID] {
			o.Kept = "in use by a container kept above"
		}
		if o.Kept != "" {
			out = append(out, o)
			continue
		}
		if !opts.DryRun {
			if _, err := cli.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("removing image %s: %w", o.Name, err))
				continue
			}
		}
		out = append(out, o)
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
	case err == nil || cerrdefs.IsNotFound(err):
		return nil
	case !strings.Contains(err.Error(), "already in progress"):
		return err
	}
	for {
		if _, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); cerrdefs.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the engine's removal: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
