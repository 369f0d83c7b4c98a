//go:build !linux

package machine

import "errors"

func readClock() (ClockState, error) {
	return ClockState{}, errors.New("adjtimex is Linux only")
}
