package openfaas

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/academemes/harness/targets"
	"github.com/academemes/harness/targets/internal/nodeimage"
)

// Clean deletes every function on the configured gateway that carries the
// harness label (of run opts.RunID, or of any run), for `harness clean`
// after a crash, but for those opts.Keep keeps (a run still going); with
// opts.DryRun it only lists them. The gateway and
// credentials come from the environment as for the target (OPENFAAS_URL,
// ...). With no gateway configured it does nothing and returns no error.
// It is the kind's targets.Kind.Clean.
func Clean(ctx context.Context, opts targets.CleanOptions) ([]targets.Leftover, error) {
	o, err := ParseOptions(nil, os.Getenv)
	if err != nil {
		return nil, err
	}
	if o.Gateway == nil {
		return nil, nil
	}
	c := &Client{Gateway: o.Gateway, User: o.Username, Password: o.Password, Namespace: o.Namespace}
	fns, err := c.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("clean OpenFaaS functions: %w", err)
	}
	var out []targets.Leftover
	var errs []error
	for _, fn := range fns {
		if fn.Labels == nil {
			continue
		}
		l := *fn.Labels
		if l[nodeimage.LabelHarness] != "1" || opts.RunID != "" && l[nodeimage.LabelRun] != opts.RunID {
			continue
		}
		left := targets.Leftover{What: "OpenFaaS function", ID: fn.Name, Name: fn.Name, Run: l[nodeimage.LabelRun], Target: l[nodeimage.LabelTarget], Owner: targets.OwnerFromLabels(l)}
		if left.Kept = opts.Keep(left); left.Kept == "" && !opts.DryRun {
			if err := c.Delete(ctx, fn.Name); err != nil && !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
				continue
			}
		}
		out = append(out, left)
	}
	return out, errors.Join(errs...)
}
