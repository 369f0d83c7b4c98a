package wasm

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// WASI errno values (preview 1) that the overrides below return.
const (
	errnoSuccess    = 0
	errnoBadf       = 8
	errnoFault      = 21
	errnoInval      = 28
	errnoIO         = 29
	errnoNotsup     = 58
	errnoNotcapable = 76
)

// callKey finds the *call of the request being served in the context that
// wazero passes to host functions.
type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// instantiateWASI instantiates wasi_snapshot_preview1 in r with wazero's
// implementation, except for the functions that make a request a request
// and keep a function pure. They take the request from the context of the
// guest call rather than from the module's configuration, so that one
// instance made ahead of time (prewarmed) or kept (warm) serves whichever
// request comes:
//
//   - environ_sizes_get, environ_get: the request's CGI-like environment;
//   - fd_read on 0, fd_write on 1 and 2: the request body and the response
//     (bounded); other descriptors do not exist (EBADF);
//   - random_get: bytes from a generator seeded from the request, so pure
//     functions stay deterministic;
//   - path_open and sock_*: refused with ENOTCAPABLE, and the attempt is
//     recorded so that the request fails with a clear error;
//   - poll_oneoff: the one host call that blocks (a sleep). It waits
//     through the sleeper in the context, which returns when the request's
//     deadline passes or the platform cancels it, so that a function
//     asleep is stopped at its timeout like one that computes.
func instantiateWASI(ctx context.Context, r wazero.Runtime) error {
	return instantiateHost(ctx, r, false)
}

// instantiateHost is instantiateWASI; with keptInstances (snapshot mode,
// whose instances are reset and reused) the calls that would change
// wazero's per-instance file table, which a reset cannot restore, are
// taken over as well: fd_close, fd_renumber, fd_fdstat_set_flags and
// fd_fdstat_set_rights on stdin, stdout or stderr succeed without changing
// anything (the platform's fd_read and fd_write serve those descriptors
// whatever the table says) and make the instance single-use; other
// descriptors do not exist (EBADF).
func instantiateHost(ctx context.Context, r wazero.Runtime, keptInstances bool) error {
	b := r.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	export := func(name string, fn api.GoModuleFunc, params ...api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(fn, params, []api.ValueType{i32}).Export(name)
	}
	export("environ_sizes_get", environSizesGet, i32, i32)
	export("environ_get", environGet, i32, i32)
	export("fd_read", fdRead, i32, i32, i32, i32)
	export("fd_write", fdWrite, i32, i32, i32, i32)
	export("random_get", randomGet, i32, i32)
	export("poll_oneoff", pollOneoff, i32, i32, i32, i32)
	// path_open(fd, dirflags, path, path_len, oflags, rights_base i64,
	// rights_inheriting i64, fdflags, result.opened_fd)
	export("path_open", refusePath, i32, i32, i32, i32, i32, i64, i64, i32, i32)
	export("sock_accept", refuse("accept a connection", "functions get no network"), i32, i32, i32)
	export("sock_recv", refuse("receive from a socket", "functions get no network"), i32, i32, i32, i32, i32, i32)
	export("sock_send", refuse("send to a socket", "functions get no network"), i32, i32, i32, i32, i32)
	export("sock_shutdown", refuse("shut down a socket", "functions get no network"), i32, i32)
	if keptInstances {
		export("fd_close", touchStdio, i32)
		export("fd_renumber", touchStdio, i32, i32)
		export("fd_fdstat_set_flags", touchStdio, i32, i32)
		export("fd_fdstat_set_rights", touchStdio, i32, i64, i64)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// touchStdio is a call that would change the file table (see
// instantiateHost): accepted on stdio, and the instance is not kept.
func touchStdio(ctx context.Context, _ api.Module, stack []uint64) {
	if uint32(stack[0]) > 2 {
		stack[0] = errnoBadf
		return
	}
	if c := callFrom(ctx); c != nil {
		c.fileTable = true
	}
	stack[0] = errnoSuccess
}

func environSizesGet(ctx context.Context, mod api.Module, stack []uint64) {
	c := callFrom(ctx)
	var n, size uint32
	if c != nil {
		n, size = uint32(len(c.env)), c.envSize
		c.freeze("environment")
	}
	mem := mod.Memory()
	if !mem.WriteUint32Le(uint32(stack[0]), n) || !mem.WriteUint32Le(uint32(stack[1]), size) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

func environGet(ctx context.Context, mod api.Module, stack []uint64) {
	c := callFrom(ctx)
	if c == nil {
		stack[0] = errnoSuccess
		return
	}
	offsets, data := uint32(stack[0]), uint32(stack[1])
	mem := mod.Memory()
	obuf, ok1 := mem.Read(offsets, uint32(len(c.env))*4)
	dbuf, ok2 := mem.Read(data, c.envSize)
	if !ok1 || !ok2 {
		stack[0] = errnoFault
		return
	}
	var d uint32
	for i, kv := range c.env {
		binary.LittleEndian.PutUint32(obuf[i*4:], data+d)
		copy(dbuf[d:], kv)
		d += uint32(len(kv))
		dbuf[d] = 0
		d++
	}
	stack[0] = errnoSuccess
}

// iovecs calls fn with each buffer of a WASI iovec array until fn returns
// false; it reports false on a bad address.
func iovecs(mem api.Memory, iovs, n uint32, fn func([]byte) bool) bool {
	for i := uint32(0); i < n; i++ {
		ptr, ok1 := mem.ReadUint32Le(iovs + i*8)
		l, ok2 := mem.ReadUint32Le(iovs + i*8 + 4)
		if !ok1 || !ok2 {
			return false
		}
		buf, ok := mem.Read(ptr, l)
		if !ok {
			return false
		}
		if !fn(buf) {
			break
		}
	}
	return true
}

func fdRead(ctx context.Context, mod api.Module, stack []uint64) {
	fd, iovs, n, result := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	c := callFrom(ctx)
	if fd != 0 || c == nil {
		stack[0] = errnoBadf
		return
	}
	c.markIO()
	c.freeze("stdin")
	total := uint32(0)
	if !iovecs(mod.Memory(), iovs, n, func(buf []byte) bool {
		k := copy(buf, c.stdin[c.stdinPos:])
		c.stdinPos += k
		total += uint32(k)
		return k == len(buf)
	}) || !mod.Memory().WriteUint32Le(result, total) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

func fdWrite(ctx context.Context, mod api.Module, stack []uint64) {
	fd, iovs, n, result := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	c := callFrom(ctx)
	if (fd != 1 && fd != 2) || c == nil {
		stack[0] = errnoBadf
		return
	}
	c.markIO()
	c.freeze("stdin")
	total := uint32(0)
	ok := iovecs(mod.Memory(), iovs, n, func(buf []byte) bool {
		if fd == 1 {
			c.writeStdout(buf)
		} else {
			c.writeStderr(buf)
		}
		total += uint32(len(buf))
		return true
	})
	if !ok || !mod.Memory().WriteUint32Le(result, total) {
		stack[0] = errnoFault
		return
	}
	if c.stdoutOver {
		// Tell the guest, so that it stops producing; the request fails
		// with "response too large" either way.
		stack[0] = errnoIO
		return
	}
	stack[0] = errnoSuccess
}

func randomGet(ctx context.Context, mod api.Module, stack []uint64) {
	buf, ok := mod.Memory().Read(uint32(stack[0]), uint32(stack[1]))
	if !ok {
		stack[0] = errnoFault
		return
	}
	c := callFrom(ctx)
	switch {
	case c == nil || c.snapshotting:
		clear(buf) // as warm mode's _initialize reads it
		if c != nil {
			c.freeze("random")
		}
	default:
		c.rand.fill(buf)
	}
	stack[0] = errnoSuccess
}

// sleepKey finds the sleeper of the function whose guest code runs, in
// the context of an instantiation or a request.
type sleepKey struct{}

// sleeper waits d, or less if ctx is done first.
type sleeper func(ctx context.Context, d time.Duration)

// sleepFor is the sleeper of an impure function: a timer or the context,
// whichever comes first.
func sleepFor(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// pollOneoff implements poll_oneoff for the descriptors a function has:
// stdin is always readable (the body is in memory), stdout and stderr
// always writable, so a subscription to them is answered at once; with
// only clock subscriptions (a sleep; relative timeouts only, as wazero's
// own) it waits for the earliest through the sleeper in ctx, and without
// one (a pure function, whose clock is fake) it does not wait at all.
func pollOneoff(ctx context.Context, mod api.Module, stack []uint64) {
	in, out, n, resultN := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	if n == 0 {
		stack[0] = errnoInval
		return
	}
	mem := mod.Memory()
	if uint64(n)*48 > uint64(mem.Size()) {
		stack[0] = errnoFault
		return
	}
	inBuf, ok1 := mem.Read(in, n*48)
	outBuf, ok2 := mem.Read(out, n*32)
	if !ok1 || !ok2 {
		stack[0] = errnoFault
		return
	}
	// Each subscription is read from guest memory where it lies (nothing
	// sized by the guest's n is allocated): userdata, tag, then the fd or
	// the clock's timeout and flags.
	sub := func(i int) (userdata uint64, tag byte, fd uint32, timeout uint64, flags uint16) {
		b := inBuf[i*48:]
		le := binary.LittleEndian
		return le.Uint64(b), b[8], le.Uint32(b[16:]), le.Uint64(b[24:]), le.Uint16(b[40:])
	}
	wait := uint64(math.MaxUint64)
	clocks := false
	for i := range int(n) {
		switch _, tag, _, timeout, flags := sub(i); tag {
		case 0: // clock
			if flags&1 != 0 { // absolute time
				stack[0] = errnoNotsup
				return
			}
			wait, clocks = min(wait, timeout), true
		case 1, 2: // fd_read, fd_write
		default:
			stack[0] = errnoInval
			return
		}
	}
	c := callFrom(ctx)
	k := 0
	event := func(userdata uint64, tag byte, errno uint16, nbytes uint64) {
		e := outBuf[k*32 : k*32+32]
		clear(e)
		binary.LittleEndian.PutUint64(e, userdata)
		binary.LittleEndian.PutUint16(e[8:], errno)
		e[10] = tag
		binary.LittleEndian.PutUint64(e[16:], nbytes)
		k++
	}
	for i := range int(n) {
		switch userdata, tag, fd, _, _ := sub(i); {
		case tag == 1 && fd == 0 && c != nil:
			event(userdata, tag, errnoSuccess, uint64(len(c.stdin)-c.stdinPos))
		case tag == 2 && (fd == 1 || fd == 2) && c != nil:
			event(userdata, tag, errnoSuccess, 0)
		case tag != 0:
			event(userdata, tag, errnoBadf, 0)
		}
	}
	if k == 0 && clocks {
		if sleep, _ := ctx.Value(sleepKey{}).(sleeper); sleep != nil {
			sleep(ctx, time.Duration(min(wait, math.MaxInt64)))
		}
		// A sleep cut short by the deadline or a cancellation ends the
		// guest here: returning would let it run on and answer as if in
		// time (wazero checks for a closed module only at its own points).
		switch ctx.Err() {
		case context.DeadlineExceeded:
			panic(sys.NewExitError(sys.ExitCodeDeadlineExceeded))
		case context.Canceled:
			panic(sys.NewExitError(sys.ExitCodeContextCanceled))
		}
		for i := range int(n) {
			if userdata, tag, _, timeout, _ := sub(i); tag == 0 && timeout <= wait {
				event(userdata, tag, errnoSuccess, 0)
			}
		}
	}
	if !mem.WriteUint32Le(resultN, uint32(k)) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

// refuse returns a host function that records a purity violation.
func refuse(what, why string) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		if c := callFrom(ctx); c != nil && c.violation == "" {
			c.violation = fmt.Sprintf("the function tried to %s, but %s", what, why)
		}
		stack[0] = errnoNotcapable
	}
}

func refusePath(ctx context.Context, mod api.Module, stack []uint64) {
	if c := callFrom(ctx); c != nil && c.violation == "" {
		name, _ := mod.Memory().Read(uint32(stack[2]), min(uint32(stack[3]), 256))
		c.violation = fmt.Sprintf("the function tried to open the file %q, but functions get no filesystem", name)
	}
	stack[0] = errnoNotcapable
}

// splitmix64 is a small deterministic generator for random_get.
type splitmix64 struct{ s uint64 }

func (g *splitmix64) next() uint64 {
	g.s += 0x9e3779b97f4a7c15
	z := g.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (g *splitmix64) fill(b []byte) {
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, g.next())
		b = b[8:]
	}
	if len(b) > 0 {
		var t [8]byte
		binary.LittleEndian.PutUint64(t[:], g.next())
		copy(b, t[:])
	}
}
