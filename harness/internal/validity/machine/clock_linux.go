package machine

import "golang.org/x/sys/unix"

// readClock asks the kernel, through adjtimex(2) in read-only mode, whether
// the clock is synchronised: the state TIME_ERROR or the STA_UNSYNC status
// bit say it is not (see adjtimex(2), "RETURN VALUE").
func readClock() (ClockState, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return ClockState{}, err
	}
	return ClockState{
		Synchronised: state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0,
		MaxErrorUs:   int64(tx.Maxerror),
		EstErrorUs:   int64(tx.Esterror),
	}, nil
}
