package runstore

import "testing"

// Rewrite is rewrite for the external tests.
func Rewrite(t *testing.T, src string) string { return rewrite(t, src, nil) }
