package pmdusb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/academemes/harness/meters/serial"
)

// Commands (first byte of every host message).
const (
	cmdWelcome   = 0x00
	cmdReadID    = 0x01
	cmdReadCfg   = 0x04
	cmdReadADC   = 0x06
	cmdContTX    = 0x07
	cmdUART      = 0x08
	welcome      = "ElmorLabs PMD-USB"
	vendorElmor  = 0xEE
	productPMD   = 0x0A
	defaultBaud  = 115200
	replyTimeout = 500 * time.Millisecond
)

// ErrTimeout means the device did not answer in time.
var ErrTimeout = errors.New("pmd-usb: device did not answer in time")

// DeviceInfo is what the handshake learns.
type DeviceInfo struct {
	Firmware  byte
	AdcOffset [AdcChannels]int8 // from the stored config, 12-bit LSB
	Config    []byte            // 26 or 34 bytes as read
}

func newLink(rw io.ReadWriter, sleep func(time.Duration)) serial.Link {
	return serial.Link{RW: rw, Sleep: sleep, Name: "pmd-usb", ErrTimeout: ErrTimeout}
}

// stopStream sends 07 00 00 00 (continuous transmit off), waits for the
// line to drain, and discards what arrived.
func stopStream(l serial.Link, settle time.Duration) error {
	if err := l.Write("stream off", cmdContTX, 0, 0, 0); err != nil {
		return err
	}
	l.Sleep(settle)
	l.Flush()
	return nil
}

// Handshake brings the device to a known idle state and identifies it.
// Bytes on the wire, in order:
//
//	host 07 00 00 00   continuous transmit off (a previous session may have left it on)
//	(settle, then flush input)
//	host 00            device "ElmorLabs PMD-USB" (17 bytes, no terminator)
//	host 01            device EE 0A fw
//	host 04            device config: 26 bytes (fw < 6) or 34 bytes (fw >= 6)
func Handshake(rw io.ReadWriter, sleep func(time.Duration), settle time.Duration) (DeviceInfo, error) {
	if sleep == nil {
		sleep = time.Sleep
	}
	l := newLink(rw, sleep)
	var info DeviceInfo
	if err := stopStream(l, settle); err != nil {
		return info, err
	}
	if err := l.Write("welcome request", cmdWelcome); err != nil {
		return info, err
	}
	w := make([]byte, len(welcome))
	if err := l.ReadFull("welcome", w, replyTimeout); err != nil {
		return info, fmt.Errorf("%w (not a PMD-USB, or at another baud rate?)", err)
	}
	if string(w) != welcome {
		return info, fmt.Errorf("pmd-usb: welcome reply %q, want %q (wrong baud rate, or another device)", w, welcome)
	}
	if err := l.Write("id request", cmdReadID); err != nil {
		return info, err
	}
	id := make([]byte, 3)
	if err := l.ReadFull("id", id, replyTimeout); err != nil {
		return info, err
	}
	if id[0] != vendorElmor || id[1] != productPMD {
		return info, fmt.Errorf("pmd-usb: id reply % X, want EE 0A fw", id)
	}
	info.Firmware = id[2]
	if err := l.Write("config request", cmdReadCfg); err != nil {
		return info, err
	}
	n := 34
	if info.Firmware < 6 {
		n = 26
	}
	info.Config = make([]byte, n)
	if err := l.ReadFull("config", info.Config, replyTimeout); err != nil {
		return info, err
	}
	for i := range info.AdcOffset {
		info.AdcOffset[i] = int8(info.Config[4+i])
	}
	return info, nil
}

// UARTCommand is 08 followed by {baud, parity 2 = none, 8 data bits = 0,
// 1 stop bit = 0}, four u32 LE.
func UARTCommand(baud int) []byte {
	b := []byte{cmdUART}
	b = binary.LittleEndian.AppendUint32(b, uint32(baud))
	b = binary.LittleEndian.AppendUint32(b, 2)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	return b
}

// Convert turns a raw code of ADC channel ch into volts (even channels) or
// amperes (odd), adding the stored offset first, as the vendor's fast
// example and the Rust logger do: (raw12 + AdcOffset[ch]) * LSB.
func Convert(ch int, raw int16, off [AdcChannels]int8) float64 {
	v := float64(int(raw) + int(off[ch]))
	if ch%2 == 0 {
		return v * VoltLSB
	}
	return v * AmpLSB
}
