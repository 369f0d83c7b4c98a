//go:build wasip1 && purify_reactor

package fnio

import (
	"io"
	"os"
	"strings"
	"unsafe"
)

// The warm-mode ABI (functions/README.md, "Warm mode"): the platform calls
// purify_handle once per request, after pointing stdin, stdout and the
// environment at that request. The Go runtime reads the environment only
// when it starts, so the handler asks WASI for it again on every call.

//go:wasmimport wasi_snapshot_preview1 environ_sizes_get
func environSizesGet(count, size unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 environ_get
func environGet(offsets, buf unsafe.Pointer) uint32

// requestEnv reads the current request's environment.
func requestEnv() map[string]string {
	var count, size uint32
	if environSizesGet(unsafe.Pointer(&count), unsafe.Pointer(&size)) != 0 || count == 0 {
		return nil
	}
	offsets := make([]uint32, count)
	buf := make([]byte, size)
	if environGet(unsafe.Pointer(&offsets[0]), unsafe.Pointer(&buf[0])) != 0 {
		return nil
	}
	env := make(map[string]string, count)
	for _, kv := range strings.Split(strings.TrimSuffix(string(buf), "\x00"), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

//go:wasmexport purify_handle
func purifyHandle() {
	env := requestEnv()
	body, _ := io.ReadAll(os.Stdin)
	req := Request{
		Method:      env["REQUEST_METHOD"],
		Query:       env["QUERY_STRING"],
		ContentType: env["CONTENT_TYPE"],
		Accept:      env["HTTP_ACCEPT"],
		Body:        body,
	}
	os.Stdout.Write(Encode(handler(req)))
}
