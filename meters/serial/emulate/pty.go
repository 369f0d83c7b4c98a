// Package emulate emulates the serial power meters byte for byte behind a
// pseudo-terminal, for tests and for `harness meters emulate`.
//
// Each device model (PowerSensor3, PMDUSB) serves an io.ReadWriter: the
// pty's master side. The driver under test opens the pty's slave side
// through go.bug.st/serial exactly as it opens a real device. A stable
// symbolic link names the slave, so that a device that "vanishes" (the pty
// is closed) and "returns" (a new pty) keeps its path, as a udev symlink
// such as /dev/serial/by-id/... does for real hardware.
package emulate

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Pty is one pseudo-terminal, its slave reachable at Link.
type Pty struct {
	Master *os.File
	tty    *os.File
	Link   string
}

// OpenPty opens a pty and points link at its slave (link "" names the
// slave directly). The slave is put in raw mode and kept open here, so the
// master never reads EIO while no driver has the slave open.
func OpenPty(link string) (*Pty, error) {
	m, t, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("emulate: open pseudo-terminal: %w", err)
	}
	if m, err = pollable(m); err != nil {
		t.Close()
		return nil, fmt.Errorf("emulate: pseudo-terminal master: %w", err)
	}
	if _, err := term.MakeRaw(int(t.Fd())); err != nil {
		m.Close()
		t.Close()
		return nil, fmt.Errorf("emulate: raw mode on %s: %w", t.Name(), err)
	}
	p := &Pty{Master: m, tty: t, Link: t.Name()}
	if link != "" {
		_ = os.Remove(link)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			p.Close()
			return nil, fmt.Errorf("emulate: link directory: %w", err)
		}
		if err := os.Symlink(t.Name(), link); err != nil {
			p.Close()
			return nil, fmt.Errorf("emulate: link %s -> %s: %w", link, t.Name(), err)
		}
		p.Link = link
	}
	return p, nil
}

// Close closes both sides and removes the link: to a driver holding the
// slave open, the device is gone (its reads fail with EIO).
func (p *Pty) Close() error {
	if p.Link != p.tty.Name() {
		_ = os.Remove(p.Link)
	}
	err := p.Master.Close()
	p.tty.Close()
	return err
}

// pollable returns f's descriptor as a File in the runtime's poller, and
// closes f. pty.Open took the master's descriptor to ask for its slave,
// which left it in blocking mode; there a write to a host that stopped
// reading blocks for good, and closing the master does not end it, so an
// emulator streaming when its host went away (a test's driver stopped
// under load, its stop not yet seen) could not be stopped and its test
// hung. In the poller, Close ends the write.
func pollable(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
