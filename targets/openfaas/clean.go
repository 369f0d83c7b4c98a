package openfaas

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/academemes/harness/targets/internal/nodeimage"
)

// Clean deletes every function on the configured gateway that carries the
// harness label (of run runID, or of any run when runID is ""), for
// `harness clean` after a crash. The gateway and credentials come from the
// environment as for the target (OPENFAAS_URL, ...). With no gateway
// configured it does nothing and returns no error.
func Clean(ctx context.Context, runID string) (removed []string, err error) {
	opts, err := ParseOptions(nil, os.Getenv)
	if err != nil {
		return nil, err
	}
	if opts.Gateway == nil {
		return nil, nil
	}
	c := &Client{Gateway: opts.Gateway, User: opts.Username, Password: opts.Password, Namespace: opts.Namespace}
	fns, err := c.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("clean OpenFaaS functions: %w", err)
	}
	var errs []error
	for _, fn := range fns {
		if fn.Labels == nil {
			continue
		}
		l := *fn.Labels
		if l[nodeimage.LabelHarness] != "1" || runID != "" && l[nodeimage.LabelRun] != runID {
			continue
		}
		if err := c.Delete(ctx, fn.Name); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, fn.Name)
	}
	return removed, errors.Join(errs...)
}
