package wasm

import "fmt"

var sprintf = fmt.Sprintf
