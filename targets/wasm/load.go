package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"

	"github.com/academemes/harness/functions"
)

// LoadFS deploys every function of a functions tree (package functions'
// layout): for each directory NAME, the function NAME from NAME/NAME.wasm
// (NAME/NAME.reactor.wasm, if there, when its config says warm) configured
// by NAME/purify.json (functions.ConfigFile) if present, and for each other
// variant V (functions.Variants but the reactor) the function NAME-V with
// the same config, as a wasm target with option variant V deploys it. A
// function that fails is logged and skipped; the error lists every failure.
func (p *Platform) LoadFS(ctx context.Context, fsys fs.FS) error {
	names, err := functions.Names(fsys)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		cfg, err := p.loadConfig(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			p.opts.Logf("purify: skipping %s and its variants: %v", name, err)
			continue
		}
		deploy := func(fname, variant string) {
			mod, err := functions.Module(fsys, name, variant)
			if err == nil {
				err = p.Deploy(ctx, fname, mod, cfg)
			}
			if err != nil {
				errs = append(errs, err)
				p.opts.Logf("purify: skipping %s: %v", fname, err)
			}
		}
		variants, err := functions.Variants(fsys, name)
		if err != nil {
			errs = append(errs, err)
			p.opts.Logf("purify: skipping %s: %v", name, err)
			continue
		}
		main := "" // without the reactor the module itself must export purify_handle
		if usesReactor(cfg.Mode) && slices.Contains(variants, functions.Reactor) {
			main = functions.Reactor
		}
		deploy(name, main)
		for _, v := range variants {
			if v != functions.Reactor {
				deploy(name+"-"+v, v)
			}
		}
	}
	return errors.Join(errs...)
}

// loadConfig reads function name's config from fsys: the zero config when
// it has none.
func (p *Platform) loadConfig(fsys fs.FS, name string) (FunctionConfig, error) {
	b, err := fs.ReadFile(fsys, path.Join(name, functions.ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		p.noteOldConfig(fsys, name)
		return FunctionConfig{}, nil
	}
	if err != nil {
		return FunctionConfig{}, err
	}
	return ParseFunctionConfig(b)
}

// noteOldConfig logs a NAME/NAME.json that reads as a function config:
// configs were read from there once, and a directory made then would
// otherwise lose its config without a word. Function data (memes.json, a
// list) is not a config and is not mentioned.
func (p *Platform) noteOldConfig(fsys fs.FS, name string) {
	old := path.Join(name, name+".json")
	b, err := fs.ReadFile(fsys, old)
	if err != nil || !json.Valid(b) {
		return
	}
	if cfg, err := ParseFunctionConfig(b); err == nil && cfg != (FunctionConfig{}) {
		p.opts.Logf("purify: %s: %s looks like a function config, which is read from %s now: rename it (this one is not used)",
			name, old, path.Join(name, functions.ConfigFile))
	}
}
