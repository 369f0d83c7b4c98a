package serial

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/academemes/harness/meters"
)

// USBPort is a serial port backed by a USB device.
type USBPort struct {
	Name         string // kernel name: "ttyACM0"
	Path         string // device node under the dev root: "/dev/ttyACM0"
	VID, PID     uint16
	Serial       string
	Manufacturer string
	Product      string
}

// ID is "vvvv:pppp" in lower-case hex, as lsusb prints it.
func (p USBPort) ID() string { return fmt.Sprintf("%04x:%04x", p.VID, p.PID) }

// Enumerator lists the USB serial ports of a machine. SysfsEnumerator is
// the real one; tests give a fixture tree or a fake.
type Enumerator interface {
	Ports() ([]USBPort, error)
}

// SysfsEnumerator reads <SysfsRoot>/class/tty directly, as go.bug.st's
// enumerator does on Linux, but under a root so that it runs on fixtures.
type SysfsEnumerator struct {
	SysfsRoot string // "/sys"
	DevRoot   string // "/dev"
}

// Ports lists every tty whose device has a USB ancestor with idVendor and
// idProduct. Virtual ttys (no "device" link) are skipped.
func (e SysfsEnumerator) Ports() ([]USBPort, error) {
	dir := filepath.Join(e.SysfsRoot, "class", "tty")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list serial ports in %s: %w", dir, err)
	}
	var out []USBPort
	for _, ent := range ents {
		dev, err := filepath.EvalSymlinks(filepath.Join(dir, ent.Name(), "device"))
		if err != nil {
			continue // no device link: a virtual console or pty
		}
		// ttyACM: device is the USB interface, its parent the USB device.
		// ttyUSB: device is the usb-serial port, two levels below it.
		usb := ""
		for d, i := dev, 0; i < 4 && d != "/" && d != "."; d, i = filepath.Dir(d), i+1 {
			if _, err := os.Stat(filepath.Join(d, "idVendor")); err == nil {
				usb = d
				break
			}
		}
		if usb == "" {
			continue // a platform UART, not USB
		}
		vid, err1 := readHex16(filepath.Join(usb, "idVendor"))
		pid, err2 := readHex16(filepath.Join(usb, "idProduct"))
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, USBPort{
			Name:         ent.Name(),
			Path:         filepath.Join(e.DevRoot, ent.Name()),
			VID:          vid,
			PID:          pid,
			Serial:       readTrim(filepath.Join(usb, "serial")),
			Manufacturer: readTrim(filepath.Join(usb, "manufacturer")),
			Product:      readTrim(filepath.Join(usb, "product")),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readHex16(path string) (uint16, error) {
	v, err := strconv.ParseUint(readTrim(path), 16, 16)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return uint16(v), nil
}

// USBID is a USB vendor and product id pair.
type USBID struct{ VID, PID uint16 }

// Match describes the devices a driver looks for.
type Match struct {
	Driver string  // spec prefix: "pmd-usb"
	IDs    []USBID // any of these
	// What is a sentence for `meters list`: "ElmorLabs PMD-USB (CH340 1a86:7523)".
	What string
	// Shared says the ids are generic (a stock bridge or MCU id), so a match
	// is only a possibility until the driver's handshake confirms it.
	Shared bool
}

// Detect lists the ports that e finds matching m, each with whether this
// user can open it and, if not, how to fix that. Enumeration errors give
// no candidates: detection is best effort.
func Detect(e Enumerator, m Match) []meters.Candidate {
	ports, err := e.Ports()
	if err != nil {
		return nil
	}
	var out []meters.Candidate
	for _, p := range ports {
		hit := false
		for _, id := range m.IDs {
			if p.VID == id.VID && p.PID == id.PID {
				hit = true
			}
		}
		if !hit {
			continue
		}
		c := meters.Candidate{
			Spec:        m.Driver + ":" + p.Path,
			Description: fmt.Sprintf("%s at %s (USB %s)", m.What, p.Path, p.ID()),
			Usable:      true,
		}
		if p.Manufacturer != "" || p.Product != "" || p.Serial != "" {
			c.Details = append(c.Details, fmt.Sprintf("usb: %s %s serial %q", p.Manufacturer, p.Product, p.Serial))
		}
		if m.Shared {
			c.Details = append(c.Details, fmt.Sprintf("usb id %s is generic; the handshake on open confirms the device", p.ID()))
		}
		if err := canOpen(p.Path); err != nil {
			c.Usable = false
			c.Reason = err.Error()
		}
		out = append(out, c)
	}
	return out
}

// canOpen checks access without opening: opening a CH340 raises DTR,
// which may reset the microcontroller behind it.
func canOpen(path string) error {
	if _, err := os.Stat(path); err != nil {
		return ClassifyOpenError(path, err)
	}
	if err := syscall.Access(path, 0x6 /* R_OK|W_OK */); err != nil {
		return ClassifyOpenError(path, err)
	}
	return nil
}
