package security

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// userTimeout makes the kernel drop a connection whose sent data stays
// unacknowledged this long (TCP_USER_TIMEOUT): a request sent to a node cut
// off the network fails instead of waiting for the caller's deadline.
func userTimeout(c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(deadPeerAfter.Milliseconds()))
	})
	if err != nil {
		return err
	}
	return serr
}
