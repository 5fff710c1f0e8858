package security

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/fsutil"
)

// Files of a node's credentials, under DATA_DIR/tls.
const (
	Dir      = "tls"
	CAFile   = "ca.pem"
	CertFile = "node.pem"
	KeyFile  = "node-key.pem"
)

// ErrUntrusted: the other side's certificate is not of the cluster's
// authority (a node of another cluster, or a client given the wrong one).
var ErrUntrusted = errors.New("certificate not trusted")

// ErrNoCredentials: the node holds no certificate of a cluster yet.
var ErrNoCredentials = errors.New("node holds no cluster certificate yet (it is in no cluster)")

// Store is a node's credentials: its key (made once), and the cluster's
// authority certificate and its own certificate once it is in a cluster.
// The TLS configurations it hands out read the current credentials at every
// handshake, so a node that joins or reissues its certificate needs no
// restart.
type Store struct {
	dir string

	mu   sync.RWMutex
	key  crypto.Signer
	ca   *x509.Certificate
	cert *tls.Certificate
	node string // the node id the certificate names
	// temp serves the API before the node has a certificate: a
	// self-signed one no client trusts, so that a client that tries is
	// told why rather than met with a reset.
	temp *tls.Certificate
}

// OpenStore loads the credentials under dataDir/tls, making the node's key
// on first use.
func OpenStore(dataDir string) (*Store, error) {
	s := &Store{dir: filepath.Join(dataDir, Dir)}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("node credentials: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(s.dir, KeyFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("make node key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		if err := s.write(KeyFile, EncodePEM("PRIVATE KEY", der)); err != nil {
			return nil, fmt.Errorf("write node key: %w", err)
		}
		s.key = k
	case err != nil:
		return nil, fmt.Errorf("read node key: %w", err)
	default:
		der, err := decodePEM(keyPEM, "PRIVATE KEY")
		if err != nil {
			return nil, fmt.Errorf("read node key %s: %w", filepath.Join(s.dir, KeyFile), err)
		}
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("read node key %s: %w", filepath.Join(s.dir, KeyFile), err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("read node key %s: not a signing key", filepath.Join(s.dir, KeyFile))
		}
		s.key = signer
	}
	if s.temp, err = makeTempCert(s.key); err != nil {
		return nil, err
	}
	caPEM, errCA := os.ReadFile(filepath.Join(s.dir, CAFile))
	certPEM, errCert := os.ReadFile(filepath.Join(s.dir, CertFile))
	if errCA == nil && errCert == nil {
		ca, err1 := ParseCertPEM(caPEM)
		cert, err2 := ParseCertPEM(certPEM)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("read node credentials in %s: %w", s.dir, err)
		}
		if err := s.set(ca, cert); err != nil {
			return nil, fmt.Errorf("node credentials in %s: %w", s.dir, err)
		}
	}
	return s, nil
}

// PublicKey is the node's public key, for a certificate to be issued to.
func (s *Store) PublicKey() crypto.PublicKey { return s.key.Public() }

// PublicKeyDER is the node's public key in PKIX DER.
func (s *Store) PublicKeyDER() []byte {
	der, _ := x509.MarshalPKIXPublicKey(s.key.Public())
	return der
}

// Install makes caDER and certDER (issued to this node's key) the node's
// credentials, on disk first.
func (s *Store) Install(caDER, certDER []byte) error {
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("install credentials: authority: %w", err)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return fmt.Errorf("install credentials: node certificate: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.setLocked(ca, cert); err != nil {
		return fmt.Errorf("install credentials: %w", err)
	}
	if err := s.write(CAFile, EncodePEM("CERTIFICATE", caDER)); err != nil {
		return fmt.Errorf("install credentials: %w", err)
	}
	if err := s.write(CertFile, EncodePEM("CERTIFICATE", certDER)); err != nil {
		return fmt.Errorf("install credentials: %w", err)
	}
	return nil
}

func (s *Store) set(ca, cert *x509.Certificate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setLocked(ca, cert)
}

func (s *Store) setLocked(ca, cert *x509.Certificate) error {
	node, err := VerifyNode(ca, cert, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	if !publicKeysEqual(s.key.Public(), cert.PublicKey) {
		return errors.New("the node certificate was issued to another key")
	}
	s.ca, s.node = ca, node
	s.cert = &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: s.key, Leaf: cert}
	return nil
}

// Current returns the authority and the node id of the node's certificate.
func (s *Store) Current() (*x509.Certificate, string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cert == nil {
		return nil, "", ErrNoCredentials
	}
	return s.ca, s.node, nil
}

// Valid reports whether the node holds a certificate of the authority
// caDER for nodeID that is not about to expire.
func (s *Store) Valid(caDER []byte, nodeID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cert != nil && string(s.ca.Raw) == string(caDER) && s.node == nodeID &&
		time.Until(s.cert.Leaf.NotAfter) > 30*24*time.Hour
}

// Forget drops the certificate (the node left its cluster); the key stays.
func (s *Store) Forget() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ca, s.cert, s.node = nil, nil, ""
	for _, f := range []string{CAFile, CertFile} {
		if err := os.Remove(filepath.Join(s.dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("forget node credentials: %w", err)
		}
	}
	return nil
}

// PeerServer is the TLS configuration of the peer listener: a peer must
// present a certificate of the cluster's authority.
func (s *Store) PeerServer() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if s.cert == nil {
			return nil, ErrNoCredentials
		}
		return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*s.cert},
			ClientAuth: tls.RequireAnyClientCert, VerifyConnection: verifier(s.ca, x509.ExtKeyUsageClientAuth),
			SessionTicketsDisabled: true}, nil
	}}
}

// APIServer is the TLS configuration of the API listener: a client
// certificate is optional (nodes present theirs, clients a token), but a
// certificate presented must be of the cluster's authority.
func (s *Store) APIServer() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if s.cert == nil {
			return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*s.temp}}, nil
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*s.cert},
			ClientAuth: tls.RequestClientCert, VerifyConnection: optionalVerifier(s.ca),
			SessionTicketsDisabled: true}, nil
	}}
}

// Client is the TLS configuration to dial a peer or another node's API:
// the node presents its certificate and checks the other's. It fails with
// ErrNoCredentials while the node is in no cluster.
func (s *Store) Client() (*tls.Config, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cert == nil {
		return nil, ErrNoCredentials
	}
	return ClientConfig(s.ca, s.cert), nil
}

// ClientConfig verifies the server by the authority ca and presents cert
// when it is not nil.
func ClientConfig(ca *x509.Certificate, cert *tls.Certificate) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, // verified below, by authority, not host name
		VerifyConnection: verifier(ca, x509.ExtKeyUsageServerAuth)}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// verifier checks the other side's certificate against the authority. It
// is a VerifyConnection callback: unlike VerifyPeerCertificate it runs on
// every connection, resumed ones included (servers here also issue no
// session tickets).
func verifier(ca *x509.Certificate, usage x509.ExtKeyUsage) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("peer presented no certificate")
		}
		if _, err := VerifyNode(ca, cs.PeerCertificates[0], usage); err != nil {
			return fmt.Errorf("%w: %w", ErrUntrusted, err)
		}
		return nil
	}
}

// optionalVerifier is verifier for a server where a client certificate is
// optional: one that is presented must be of the authority.
func optionalVerifier(ca *x509.Certificate) func(tls.ConnectionState) error {
	v := verifier(ca, x509.ExtKeyUsageClientAuth)
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil
		}
		return v(cs)
	}
}

// PeerNodeID returns the node id of the verified certificate a TLS peer
// presented, or "" if it presented none.
func PeerNodeID(st *tls.ConnectionState) string {
	if st == nil || len(st.PeerCertificates) == 0 {
		return ""
	}
	id, _ := NodeIDOf(st.PeerCertificates[0])
	return id
}

func makeTempCert(key crypto.Signer) (*tls.Certificate, error) {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clusterkeep node in no cluster"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(nodeValidity),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("make temporary certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// write puts a credentials file in place durably (0600: the key, and
// nothing here needs to be read by others).
func (s *Store) write(name string, b []byte) error {
	if err := fsutil.WriteFileAtomic(filepath.Join(s.dir, name), bytes.NewReader(b)); err != nil {
		return err
	}
	return fsutil.SyncDir(s.dir)
}
