//go:build !unix

package wasm

// reservedMemory is not available here: linear memory lives in slices.
type reservedMemory = sliceMemory

func newReservedMemory(*memBudget, uint64) *reservedMemory { return nil }
