package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxSocketPath is what a unix socket address holds on Linux (108 with
// the terminating zero).
const maxSocketPath = 107

func (c Config) socket() string {
	if c.Socket != "" {
		return c.Socket
	}
	return filepath.Join(c.DataDir, SocketFile)
}

// listenSocket opens the local API socket, readable and writable by its
// owner only. A socket left by a crashed agent is replaced: the data
// directory's service lock, held by now, proves no other agent uses it.
func listenSocket(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("local API socket: path %s is longer than the %d bytes a unix socket address holds", path, maxSocketPath)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	// The mode is set a moment after the socket appears: the peer's
	// credentials are checked as well, so nobody slips in meanwhile.
	return ownerOnly{ln.(*net.UnixListener)}, nil
}

// ownerOnly accepts connections from the agent's own user and root only.
type ownerOnly struct{ *net.UnixListener }

func (l ownerOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		if uid, err := peerUID(c); err == nil && (uid == 0 || uid == uint32(os.Getuid())) {
			return c, nil
		}
		c.Close()
	}
}

func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}
