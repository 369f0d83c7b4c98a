// Package all registers every target kind of the harness. Import it for its
// side effects.
package all

import (
	// One line per kind; each registers itself from init.
	_ "github.com/academemes/harness/targets/dockernode"
	_ "github.com/academemes/harness/targets/null"
	_ "github.com/academemes/harness/targets/openfaas"
	_ "github.com/academemes/harness/targets/wasm"
)
