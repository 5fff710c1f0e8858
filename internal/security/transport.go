package security

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"
)

// HTTPTransport dials every address over TLS with the configuration cfg
// gives at each dial (a node's certificate can change while it runs). A
// failed handshake is a dial error (nothing was sent), except a
// certificate not of the cluster's authority, which wraps ErrUntrusted.
func HTTPTransport(cfg func() (*tls.Config, error)) *http.Transport {
	d := Dialer()
	return &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := cfg()
			if err != nil {
				return nil, err
			}
			raw, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			conn := tls.Client(raw, c)
			if err := conn.HandshakeContext(ctx); err != nil {
				raw.Close()
				if errors.Is(err, ErrUntrusted) {
					return nil, fmt.Errorf("node %s: %w", addr, err)
				}
				return nil, &net.OpError{Op: "dial", Net: network, Addr: raw.RemoteAddr(), Err: fmt.Errorf("TLS handshake: %w", err)}
			}
			return conn, nil
		},
	}
}

// deadPeerAfter is how long a connection to a silent peer lives: a node
// cut off the network (no reset, no refusal) is given up after it, whether
// the connection waits to send (TCP_USER_TIMEOUT) or to receive
// (keep-alive probes).
const deadPeerAfter = 8 * time.Second

// Dialer dials a node: a short connect timeout, keep-alive probes that
// find a silent peer within deadPeerAfter, and, on Linux, the same bound
// on unacknowledged data.
func Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 2 * time.Second,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 2 * time.Second, Interval: time.Second, Count: 6},
		Control:         func(_, _ string, c syscall.RawConn) error { return userTimeout(c) }}
}
