package serial

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// PermissionHint explains, for a serial device at path that this user may
// not open, how to get access. Serial devices on Debian, Ubuntu and Fedora
// belong to group "dialout" (Arch: "uucp") with mode 0660.
func PermissionHint(path string) string {
	group := "dialout"
	if fi, err := os.Stat(path); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			gid := strconv.FormatUint(uint64(st.Gid), 10)
			if g, err := user.LookupGroupId(gid); err == nil {
				group = g.Name
			} else {
				group = "gid " + gid
			}
		}
	}
	who := "your user"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	return fmt.Sprintf("permission denied; %s must be in group %q: run `sudo usermod -aG %s %s` and log in again "+
		"(or add a udev rule giving the device MODE=\"0666\", or run as root)", who, group, group, who)
}
