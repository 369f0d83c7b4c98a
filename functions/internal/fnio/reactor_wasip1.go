//go:build wasip1 && purify_reactor

package fnio

import (
	"runtime"
	"unsafe"
)

// The warm-mode ABI (functions/README.md, "Warm mode"): the platform calls
// purify_handle once per request, after pointing stdin, stdout and the
// environment at that request. The Go runtime reads the environment only
// when it starts, so the handler asks WASI for it again on every call.
//
// Every guest instruction counts here: Go code compiled to Wasm runs about
// a nanosecond per instruction even without the platform's interrupt
// checks, an allocation costs about a microsecond, and with the checks on
// each function call and loop iteration costs tens of nanoseconds more
// (wazero leaves the guest to check whether the call was cancelled). So
// the glue calls WASI directly instead of going through os.File (whose
// poll.FD locking, error wrapping and io.ReadAll growth were a third of
// a call), finds the four variables it needs through environ_get's
// offsets instead of splitting the block into a map, and writes the
// header and the body in one fd_write.

//go:wasmimport wasi_snapshot_preview1 environ_sizes_get
func environSizesGet(count, size unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 environ_get
func environGet(offsets, buf unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 fd_read
func fdRead(fd int32, iovs unsafe.Pointer, iovsLen int32, nread unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 fd_write
func fdWrite(fd int32, iovs unsafe.Pointer, iovsLen int32, nwritten unsafe.Pointer) uint32

// iovec is WASI's (buf, len) pair; pointers are 32 bits on wasm32.
type iovec struct {
	buf, len uint32
}

// Buffers kept from call to call (the instance serves one call at a time).
// The WASI results and iovecs live here too: a local whose address goes to
// a wasmimport escapes, and each would be an allocation per call.
var (
	envOffsets []uint32
	envBuf     []byte
	header     []byte
	sys        struct {
		count, size, n uint32
		iovs           [2]iovec
		probe          [1]byte
	}
)

// requestFromEnv fills the request's fields from the current environment
// and returns CONTENT_LENGTH (-1 when absent or not a small decimal). The
// variables are copied into one string, so the request owns its strings
// and the buffer can be reused by the next call.
func requestFromEnv(req *Request) (contentLength int) {
	contentLength = -1
	if environSizesGet(unsafe.Pointer(&sys.count), unsafe.Pointer(&sys.size)) != 0 || sys.count == 0 || sys.size == 0 {
		return
	}
	count, size := sys.count, sys.size
	if uint32(cap(envOffsets)) < count {
		envOffsets = make([]uint32, count)
	}
	if uint32(cap(envBuf)) < size {
		envBuf = make([]byte, size)
	}
	offsets, buf := envOffsets[:count], envBuf[:size]
	if environGet(unsafe.Pointer(&offsets[0]), unsafe.Pointer(&buf[0])) != 0 {
		return
	}
	base := uint32(uintptr(unsafe.Pointer(&buf[0])))
	all := string(buf)
	for i, off := range offsets {
		start := off - base
		end := size
		if i+1 < len(offsets) {
			end = offsets[i+1] - base
		}
		if start >= end || end > size {
			continue // not laid out one after another: ignore the entry
		}
		kv := all[start : end-1] // without the NUL
		// The first byte picks the one candidate name, so an entry is
		// compared at most once.
		var key string
		var field *string
		switch kv[0] {
		case 'R':
			key, field = "REQUEST_METHOD=", &req.Method
		case 'Q':
			key, field = "QUERY_STRING=", &req.Query
		case 'C':
			if len(kv) > len("CONTENT_LENGTH=") && kv[:len("CONTENT_LENGTH=")] == "CONTENT_LENGTH=" {
				contentLength = smallDecimal(kv[len("CONTENT_LENGTH="):])
				continue
			}
			key, field = "CONTENT_TYPE=", &req.ContentType
		case 'H':
			key, field = "HTTP_ACCEPT=", &req.Accept
		default:
			continue
		}
		if len(kv) >= len(key) && kv[:len(key)] == key {
			*field = kv[len(key):] // the last one wins, as in a map
		}
	}
	return contentLength
}

// smallDecimal parses s as a decimal below 1<<30, or returns -1.
func smallDecimal(s string) int {
	if len(s) == 0 || len(s) > 9 {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// readStdin returns all of stdin in a new slice, read straight from WASI.
// The slice is sized by the announced length (a hint: stdin is read to its
// end either way), so a request usually costs one small allocation.
func readStdin(hint int) []byte {
	if hint < 0 {
		hint = 512
	}
	b := make([]byte, 0, hint)
	for {
		if len(b) == cap(b) {
			// Full: look for more before growing, which is the usual
			// case when the hint was right.
			sys.iovs[0] = iovec{uint32(uintptr(unsafe.Pointer(&sys.probe[0]))), 1}
			if fdRead(0, unsafe.Pointer(&sys.iovs[0]), 1, unsafe.Pointer(&sys.n)) != 0 || sys.n == 0 {
				return b
			}
			b = append(b, sys.probe[0])
			if len(b) < cap(b) {
				continue
			}
			b = append(b, 0)[:len(b)]
		}
		sys.iovs[0] = iovec{uint32(uintptr(unsafe.Pointer(&b[:cap(b)][len(b)]))), uint32(cap(b) - len(b))}
		errno := fdRead(0, unsafe.Pointer(&sys.iovs[0]), 1, unsafe.Pointer(&sys.n))
		runtime.KeepAlive(b)
		if errno != 0 || sys.n == 0 {
			return b
		}
		b = b[:len(b)+int(sys.n)]
	}
}

// writeStdout writes head and then body to stdout, as one fd_write when
// the host takes it all, as the platform does.
func writeStdout(head, body []byte) {
	for len(head)+len(body) > 0 {
		n := int32(0)
		for _, p := range [2][]byte{head, body} {
			if len(p) > 0 {
				sys.iovs[n] = iovec{uint32(uintptr(unsafe.Pointer(&p[0]))), uint32(len(p))}
				n++
			}
		}
		errno := fdWrite(1, unsafe.Pointer(&sys.iovs[0]), n, unsafe.Pointer(&sys.n))
		runtime.KeepAlive(head)
		runtime.KeepAlive(body)
		written := sys.n
		if errno != 0 || written == 0 || int(written) > len(head)+len(body) {
			return // as before, a failed write is the platform's to report
		}
		k := min(int(written), len(head))
		head, body = head[k:], body[int(written)-k:]
	}
}

//go:wasmexport purify_handle
func purifyHandle() {
	var req Request
	req.Body = readStdin(requestFromEnv(&req))
	resp := handler(req)
	header = appendHeader(header[:0], resp)
	writeStdout(header, resp.Body)
}
