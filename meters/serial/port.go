package serial

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	goserial "go.bug.st/serial"

	"github.com/academemes/harness/meters"
)

// Port is what a driver needs from an open serial port. *goserial.Port
// values satisfy it through portAdapter; tests pass a pty or a script.
type Port interface {
	io.ReadWriteCloser
	// SetReadTimeout bounds each Read: a Read that times out returns 0, nil.
	SetReadTimeout(d time.Duration) error
	// ResetInputBuffer discards bytes received but not yet read (tcflush).
	ResetInputBuffer() error
	// SetBaud changes the line speed; 8N1 stays.
	SetBaud(baud int) error
}

// Opener opens a port by path at a baud rate. Drivers take one so that
// tests can substitute it; OpenPort is the real one.
type Opener func(path string, baud int) (Port, error)

type portAdapter struct {
	goserial.Port
}

func (p portAdapter) SetBaud(baud int) error {
	return p.SetMode(&goserial.Mode{BaudRate: baud, DataBits: 8, Parity: goserial.NoParity, StopBits: goserial.OneStopBit})
}

// OpenPort opens path at baud, 8N1, in full raw mode (go.bug.st/serial
// does the cfmakeraw equivalent), with no flow control. DTR and RTS are
// raised as the vendors' hosts do, but only as a best effort: on a
// pseudo-terminal the modem-line ioctls fail with "inappropriate ioctl",
// so Mode.InitialStatusBits stays nil and failures here are ignored.
//
// A missing port wraps meters.ErrUnavailable; a refusal wraps
// meters.ErrPermission with how to grant access.
func OpenPort(path string, baud int) (Port, error) {
	mode := &goserial.Mode{BaudRate: baud, DataBits: 8, Parity: goserial.NoParity, StopBits: goserial.OneStopBit}
	p, err := goserial.Open(path, mode)
	if err != nil {
		return nil, ClassifyOpenError(path, err)
	}
	_ = p.SetDTR(true) // optional: fails on a pty
	_ = p.SetRTS(true)
	return portAdapter{p}, nil
}

// ClassifyOpenError turns an error from opening path into one that wraps
// the meters sentinel a caller branches on.
func ClassifyOpenError(path string, err error) error {
	var pe *goserial.PortError
	if errors.As(err, &pe) {
		switch pe.Code() {
		case goserial.PermissionDenied:
			return fmt.Errorf("%w: open %s: %s", meters.ErrPermission, path, PermissionHint(path))
		case goserial.PortNotFound:
			return fmt.Errorf("%w: open %s: %v", meters.ErrUnavailable, path, err)
		case goserial.PortBusy:
			return fmt.Errorf("%w: open %s: port busy (another program has it open): %v", meters.ErrUnavailable, path, err)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: open %s: no such serial port", meters.ErrUnavailable, path)
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: open %s: %s", meters.ErrPermission, path, PermissionHint(path))
	}
	return fmt.Errorf("open serial port %s: %w", path, err)
}
