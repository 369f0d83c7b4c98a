//go:build !linux

package wasm

import "errors"

// memImage is a snapshot's memory mapped copy-on-write: Linux only (a
// memfd); elsewhere snapshot mode restores with RestoreSegments.
type memImage struct{}

func newMemImage(string, []byte) (*memImage, error) {
	return nil, errors.New("copy-on-write restore needs Linux (memfd)")
}

func (*memImage) newMemory(*memBudget, uint64) linearMemory { return refusedMemory{} }

func (*memImage) close() {}

func (*memImage) resettable() string { return "resetting in place needs Linux" }

func (*memImage) reset(_, entries []byte) (int, []byte, error) {
	return 0, entries, errors.New("resetting in place needs Linux")
}
