package wasm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/academemes/harness/functions"
	"github.com/academemes/harness/targets"
)

// LoadFS deploys every function of a functions tree (package functions'
// layout): for each directory NAME, the function NAME from NAME/NAME.wasm
// (NAME/NAME.reactor.wasm, if there, when its config says warm) configured by
// NAME/NAME.json if present, and NAME-small from NAME/NAME-small.wasm if
// present. A function that fails is logged and skipped; the error lists
// every failure.
func (p *Platform) LoadFS(ctx context.Context, fsys fs.FS) error {
	names, err := functions.Names(fsys)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		var cfg FunctionConfig
		if b, err := fs.ReadFile(fsys, path.Join(name, name+".json")); err == nil {
			if cfg, err = ParseFunctionConfig(b); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				p.opts.Logf("purify: skipping %s: %v", name, err)
				continue
			}
		}
		variant := ""
		if _, err := functions.Module(fsys, name, "reactor"); err == nil && cfg.Mode == targets.Warm {
			variant = "reactor" // else the module itself must export purify_handle
		}
		deploy := func(fname, variant string, cfg FunctionConfig) {
			mod, err := functions.Module(fsys, name, variant)
			if err == nil {
				err = p.Deploy(ctx, fname, mod, cfg)
			}
			if err != nil {
				errs = append(errs, err)
				p.opts.Logf("purify: skipping %s: %v", fname, err)
			}
		}
		deploy(name, variant, cfg)
		if _, err := fs.Stat(fsys, path.Join(name, name+"-small.wasm")); err == nil {
			deploy(name+"-small", "small", cfg)
		}
	}
	return errors.Join(errs...)
}
