// Package security holds the cluster's trust: its certificate authority,
// the certificates of its nodes and the TLS configurations built on them,
// API tokens and their roles, and the join handshake by which a new node
// proves it knows the cluster's join secret and learns its authority.
//
// Every cluster has its own authority, made when the cluster is created and
// kept in the reserved subtree of the hive (so every member can admit a
// joiner, and a restored node can reissue its own certificate). Peers
// authenticate each other by certificates of that authority; clients verify
// a node the same way and present a bearer token.
package security

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// Validity of the certificates this package makes. Rotation is not
// automated: a node reissues its certificate from the authority when it
// starts and finds it expired or issued by another authority.
const (
	caValidity   = 20 * 365 * 24 * time.Hour
	nodeValidity = 5 * 365 * 24 * time.Hour
)

// ErrNotNodeCert: a certificate of the authority that names no node.
var ErrNotNodeCert = errors.New("certificate names no clusterkeep node")

// CA is a cluster's certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a new authority for the cluster named name.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make cluster authority key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "clusterkeep cluster " + name, Organization: []string{"clusterkeep"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("make cluster authority certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// ParseCA reads an authority from its DER certificate and PKCS#8 key.
func ParseCA(certDER, keyDER []byte) (*CA, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("read cluster authority certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("read cluster authority: the certificate is not a certificate authority")
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("read cluster authority key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok || !publicKeysEqual(signer.Public(), cert.PublicKey) {
		return nil, errors.New("read cluster authority: the key does not belong to the certificate")
	}
	return &CA{Cert: cert, Key: signer}, nil
}

// ParseCAPEM reads an authority from PEM files' contents (an operator's own
// authority, given at cluster creation).
func ParseCAPEM(certPEM, keyPEM []byte) (*CA, error) {
	c, err := decodePEM(certPEM, "CERTIFICATE")
	if err != nil {
		return nil, fmt.Errorf("read authority certificate: %w", err)
	}
	k, err := decodePEM(keyPEM, "PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("read authority key: %w", err)
	}
	return ParseCA(c, k)
}

// KeyDER is the authority's key in PKCS#8.
func (ca *CA) KeyDER() ([]byte, error) { return x509.MarshalPKCS8PrivateKey(ca.Key) }

// NodeURI is the name a node certificate carries: its node id.
func NodeURI(nodeID string) *url.URL {
	return &url.URL{Scheme: "clusterkeep", Host: "node", Path: "/" + nodeID}
}

// NodeIDOf returns the node id a certificate names.
func NodeIDOf(cert *x509.Certificate) (string, error) {
	for _, u := range cert.URIs {
		if u.Scheme == "clusterkeep" && u.Host == "node" && len(u.Path) > 1 {
			return strings.TrimPrefix(u.Path, "/"), nil
		}
	}
	return "", ErrNotNodeCert
}

// IssueNode signs a certificate for the node nodeID (named name) holding
// the key pub, valid for serving and dialling; hosts become its names.
func (ca *CA) IssueNode(pub crypto.PublicKey, nodeID, name string, hosts []string) ([]byte, error) {
	if nodeID == "" {
		return nil, errors.New("issue node certificate: no node id")
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"clusterkeep"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(nodeValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{NodeURI(nodeID)},
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue node certificate for %s: %w", name, err)
	}
	return der, nil
}

// VerifyNode checks that cert was issued by the authority whose
// certificate is caCert for use (server or client), and returns the node
// id it names. Host names are not checked: membership of the cluster,
// which only its authority grants, is what a peer or a client relies on,
// and a node keeps its certificate when its addresses change.
func VerifyNode(caCert, cert *x509.Certificate, usage x509.ExtKeyUsage) (string, error) {
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("certificate of %q not issued by this cluster's authority: %w", cert.Subject.CommonName, err)
	}
	return NodeIDOf(cert)
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

// EncodePEM wraps der in a PEM block of type typ.
func EncodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func decodePEM(b []byte, typ string) ([]byte, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("no PEM block of type %s", typ)
		}
		if blk.Type == typ || (typ == "PRIVATE KEY" && strings.HasSuffix(blk.Type, "PRIVATE KEY")) {
			if typ == "PRIVATE KEY" && blk.Type == "EC PRIVATE KEY" {
				k, err := x509.ParseECPrivateKey(blk.Bytes)
				if err != nil {
					return nil, err
				}
				return x509.MarshalPKCS8PrivateKey(k)
			}
			return blk.Bytes, nil
		}
	}
}

// ParseCertPEM reads the first certificate of a PEM file's contents.
func ParseCertPEM(b []byte) (*x509.Certificate, error) {
	der, err := decodePEM(b, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}
