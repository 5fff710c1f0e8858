package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/security"
)

// Environment variables of a client's credentials.
const (
	EnvCA        = "CLUSTERKEEP_CA"         // file of the cluster's authority certificate
	EnvToken     = "CLUSTERKEEP_TOKEN"      // an API token
	EnvTokenFile = "CLUSTERKEEP_TOKEN_FILE" // a file holding one
)

// Errors of credentials.
var (
	ErrNoCA            = errors.New("no cluster authority given to check nodes by (--ca FILE or " + EnvCA + "; a node keeps it in DATA_DIR/tls/ca.pem)")
	ErrUnauthenticated = errors.New("not authenticated")
	ErrForbidden       = errors.New("not permitted")
	// ErrUntrusted: the node's certificate is not of the authority given.
	ErrUntrusted = security.ErrUntrusted
)

// Credentials are what a client trusts and proves.
type Credentials struct {
	// CA is the cluster's authority: nodes must present a certificate of it.
	CA *x509.Certificate
	// Token is the API token sent as "Authorization: Bearer".
	Token string
	// JoinSecret, sent when there is no token, proves a joining node may
	// have a certificate.
	JoinSecret string
	// TLS, when set, gives the TLS configuration instead of CA (a node
	// calling another presents its own certificate).
	TLS func() (*tls.Config, error)
}

// LoadCA reads an authority certificate file.
func LoadCA(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster authority: %w", err)
	}
	c, err := security.ParseCertPEM(b)
	if err != nil {
		return nil, fmt.Errorf("read cluster authority %s: %w", path, err)
	}
	return c, nil
}

// ReadTokenFile reads a token from a file (its first line).
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// CredentialsFromEnv reads CLUSTERKEEP_CA, CLUSTERKEEP_TOKEN and
// CLUSTERKEEP_TOKEN_FILE; what is not set stays empty.
func CredentialsFromEnv() (Credentials, error) {
	var c Credentials
	var err error
	if f := os.Getenv(EnvCA); f != "" {
		if c.CA, err = LoadCA(f); err != nil {
			return c, err
		}
	}
	c.Token = os.Getenv(EnvToken)
	if f := os.Getenv(EnvTokenFile); f != "" && c.Token == "" {
		if c.Token, err = ReadTokenFile(f); err != nil {
			return c, err
		}
	}
	return c, nil
}

var defaults struct {
	sync.Mutex
	set bool
	cr  Credentials
}

// SetDefaultCredentials sets the credentials of handles opened without
// WithCredentials (a command line tool resolves its flags once).
func SetDefaultCredentials(cr Credentials) {
	defaults.Lock()
	defer defaults.Unlock()
	defaults.set, defaults.cr = true, cr
}

// DefaultCredentials are those SetDefaultCredentials set, or else the
// environment's.
func DefaultCredentials() (Credentials, error) {
	defaults.Lock()
	defer defaults.Unlock()
	if defaults.set {
		return defaults.cr, nil
	}
	return CredentialsFromEnv()
}

// WithCredentials sets what the handle trusts and proves (default: from
// DefaultCredentials).
func WithCredentials(cr Credentials) Option {
	return func(c *Cluster) { c.creds, c.credsSet = cr, true }
}

func (cr Credentials) tlsConfig() (*tls.Config, error) {
	if cr.TLS != nil {
		return cr.TLS()
	}
	if cr.CA == nil {
		return nil, ErrNoCA
	}
	return security.ClientConfig(cr.CA, nil), nil
}

// SocketFile is the name of a node's local API socket in its data
// directory.
const SocketFile = "api.sock"

// unixPrefix marks the address of a node's local socket ("unix:PATH").
const unixPrefix = "unix:"

// unixClient talks HTTP over a node's local socket at path.
func unixClient(path string) *http.Client {
	d := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: false, MaxIdleConnsPerHost: 4,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "unix", path) }}}
}
