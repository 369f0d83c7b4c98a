package powersensor3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/academemes/harness/meters/serial"
)

// Single-byte commands (firmware v1.6.1, PowerSensor.ino serialEvent).
const (
	cmdReadConfig = 'R'
	cmdAck        = 's' // any byte acknowledges a config record; the host library sends 's'
	cmdStart      = 'S'
	cmdStopQuiet  = 'T'
	cmdStopMarker = 'X'
	cmdMarker     = 'M'
	cmdVersion    = 'V'
	replyDone     = 'D'
)

// ErrTimeout means the device did not answer in time.
var ErrTimeout = errors.New("powersensor3: device did not answer in time")

func newLink(rw io.ReadWriter, sleep func(time.Duration)) serial.Link {
	return serial.Link{RW: rw, Sleep: sleep, Name: "powersensor3", ErrTimeout: ErrTimeout}
}

// DeviceInfo is what the handshake learns.
type DeviceInfo struct {
	Version string // "F411-1.6.1"
	Config  Config
}

// Handshake brings the device to a known idle state and reads what it
// stores. Bytes on the wire, in order:
//
//	host 'T'            stop silently, in case an earlier session left it streaming
//	(150 ms, then flush input: frames already in flight are discarded)
//	host 'V'            device "F411-1.6.1\r\n"
//	host 'R'            device 41-byte record, host 's', ... 8 times, device 'D'
//
// The order differs from the host library's (which reads the config first
// and the version only in psinfo) so that a firmware older than v1.3.0,
// whose records are 25 bytes, is refused before its records are misread.
func Handshake(rw io.ReadWriter, sleep func(time.Duration)) (DeviceInfo, error) {
	if sleep == nil {
		sleep = time.Sleep
	}
	l := newLink(rw, sleep)
	var info DeviceInfo
	if err := l.Write("stop", cmdStopQuiet); err != nil {
		return info, err
	}
	l.Sleep(150 * time.Millisecond)
	l.Flush()

	if err := l.Write("version request", cmdVersion); err != nil {
		return info, err
	}
	var line []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(line, []byte("\n")) {
		if len(line) > 64 {
			return info, fmt.Errorf("powersensor3: version reply %q has no line end: not a PowerSensor3?", line)
		}
		if err := l.ReadFull("version", one, time.Second); err != nil {
			return info, fmt.Errorf("%w (not a PowerSensor3, or it is busy?)", err)
		}
		line = append(line, one[0])
	}
	info.Version = strings.TrimPrefix(strings.TrimRight(string(line), "\r\n"), "Firmware version: ")
	if err := checkVersion(info.Version); err != nil {
		return info, err
	}

	if err := l.Write("config request", cmdReadConfig); err != nil {
		return info, err
	}
	rec := make([]byte, RecordSize)
	for i := 0; i < Sensors; i++ {
		if err := l.ReadFull(fmt.Sprintf("sensor %d config", i), rec, 2*time.Second); err != nil {
			return info, err
		}
		s, _ := ParseSensor(rec)
		info.Config[i] = s
		if err := l.Write("config ack", cmdAck); err != nil {
			return info, err
		}
	}
	if err := l.ReadFull("config end", one, time.Second); err != nil {
		return info, err
	}
	if one[0] != replyDone {
		return info, fmt.Errorf("powersensor3: config read ended with %#02x, want 'D'", one[0])
	}
	return info, nil
}

// checkVersion accepts "F411-1.6.1"-style strings of v1.3.0 or later, the
// first with 41-byte records.
func checkVersion(v string) error {
	_, num, ok := strings.Cut(v, "-")
	if !ok || !strings.HasPrefix(v, "F4") {
		return fmt.Errorf("powersensor3: version reply %q is not a PowerSensor3 firmware version", v)
	}
	parts := strings.SplitN(num, ".", 3)
	if len(parts) < 2 {
		return fmt.Errorf("powersensor3: cannot read firmware version %q", v)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("powersensor3: cannot read firmware version %q", v)
	}
	if major < 1 || (major == 1 && minor < 3) {
		return fmt.Errorf("powersensor3: firmware %s predates v1.3.0 (25-byte sensor records); update the device firmware", v)
	}
	return nil
}
