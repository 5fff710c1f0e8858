package security

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// HTTPTransport dials every address over TLS with the configuration cfg
// gives at each dial (a node's certificate can change while it runs). A
// failed handshake is a dial error (nothing was sent), except a
// certificate not of the cluster's authority, which wraps ErrUntrusted.
func HTTPTransport(cfg func() (*tls.Config, error)) *http.Transport {
	d := &net.Dialer{Timeout: 2 * time.Second}
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
