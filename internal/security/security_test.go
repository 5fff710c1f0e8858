package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustCA(t *testing.T, name string) *CA {
	t.Helper()
	ca, err := NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func installed(t *testing.T, dir string, ca *CA, node string) *Store {
	t.Helper()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.IssueNode(st.PublicKey(), node, node, []string{"127.0.0.1", "node.example", "0.0.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Install(ca.Cert.Raw, der); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestNodeCertificatesVerifyOnlyAgainstTheirAuthority(t *testing.T) {
	ca, other := mustCA(t, "a"), mustCA(t, "b")
	st := installed(t, t.TempDir(), ca, "node-1")
	cfg, err := st.Client()
	if err != nil {
		t.Fatal(err)
	}
	leaf := cfg.Certificates[0].Leaf
	if id, err := VerifyNode(ca.Cert, leaf, x509.ExtKeyUsageServerAuth); err != nil || id != "node-1" {
		t.Fatalf("own authority: %q %v", id, err)
	}
	if _, err := VerifyNode(other.Cert, leaf, x509.ExtKeyUsageServerAuth); err == nil {
		t.Fatal("verified by another cluster's authority")
	}
	if len(leaf.IPAddresses) != 1 || leaf.DNSNames[0] != "node.example" {
		t.Fatalf("names: %v %v (0.0.0.0 must be left out)", leaf.IPAddresses, leaf.DNSNames)
	}
	// The authority round-trips through its DER form.
	key, err := ca.KeyDER()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCA(ca.Cert.Raw, key)
	if err != nil || !back.Cert.Equal(ca.Cert) {
		t.Fatalf("parse authority: %v", err)
	}
	okey, _ := other.KeyDER()
	if _, err := ParseCA(ca.Cert.Raw, okey); err == nil {
		t.Fatal("an authority with another's key was accepted")
	}
}

func TestStoreKeepsKeyAndCredentialsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, "a")
	st := installed(t, dir, ca, "n1")
	again, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Valid(ca.Cert.Raw, "n1") || again.Valid(ca.Cert.Raw, "n2") || again.Valid(mustCA(t, "b").Cert.Raw, "n1") {
		t.Fatal("Valid does not tell the node's own certificate of its own authority")
	}
	if string(again.PublicKeyDER()) != string(st.PublicKeyDER()) {
		t.Fatal("the node key changed across a reopen")
	}
	fi, err := os.Stat(filepath.Join(dir, Dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node key mode: %v %v", fi.Mode(), err)
	}
	// A certificate issued to another key is refused.
	otherKey, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	der, _ := ca.IssueNode(otherKey.PublicKey(), "n1", "n1", nil)
	if err := again.Install(ca.Cert.Raw, der); err == nil {
		t.Fatal("installed a certificate of another key")
	}
	if err := again.Forget(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := again.Current(); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("after Forget: %v", err)
	}
}

// Mutual TLS between two stores: the same authority connects, another
// authority's node is refused in the handshake, on either side.
func TestPeerTLSNeedsTheSameAuthority(t *testing.T) {
	ca := mustCA(t, "a")
	server := installed(t, t.TempDir(), ca, "s")
	good := installed(t, t.TempDir(), ca, "c")
	bad := installed(t, t.TempDir(), mustCA(t, "b"), "x")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server.PeerServer())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err == nil {
					st := c.(*tls.Conn).ConnectionState()
					c.Write([]byte(PeerNodeID(&st)))
				}
			}()
		}
	}()
	dial := func(st *Store) (string, error) {
		cfg, err := st.Client()
		if err != nil {
			return "", err
		}
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			return "", err
		}
		defer c.Close()
		b := make([]byte, 16)
		n, err := c.Read(b)
		return string(b[:n]), err
	}
	if id, err := dial(good); err != nil || id != "c" {
		t.Fatalf("same authority: %q %v", id, err)
	}
	if _, err := dial(bad); err == nil || !errors.Is(err, ErrUntrusted) {
		t.Fatalf("another authority's node: %v, want ErrUntrusted", err)
	}
	// Without any certificate the server gives none of its trust.
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		b := make([]byte, 16)
		n, _ := c.Read(b)
		c.Close()
		if n > 0 {
			t.Fatalf("a client without certificate was answered %q", b[:n])
		}
	}
}

func TestRolesAndSecrets(t *testing.T) {
	rs, err := ParseRoles([]string{"Read", "backup", "backup"})
	if err != nil || len(rs) != 2 {
		t.Fatalf("ParseRoles: %v %v", rs, err)
	}
	if _, err := ParseRoles([]string{"admin"}); !errors.Is(err, ErrBadRole) {
		t.Fatalf("unknown role: %v", err)
	}
	if _, err := ParseRoles(nil); !errors.Is(err, ErrBadRole) {
		t.Fatalf("no role: %v", err)
	}
	cases := []struct {
		have []Role
		need Role
		ok   bool
	}{
		{[]Role{RoleRead}, RoleRead, true},
		{[]Role{RoleRead}, RoleOperator, false},
		{[]Role{RoleRead}, RoleBackup, false},
		{[]Role{RoleOperator}, RoleRead, true},
		{[]Role{RoleOperator}, RoleBackup, false},
		{[]Role{RoleBackup}, RoleRead, true},
		{[]Role{RoleBackup}, RoleOperator, false},
		{nil, RoleRead, false},
	}
	for _, c := range cases {
		if Grants(c.have, c.need) != c.ok {
			t.Errorf("Grants(%v, %s) != %v", c.have, c.need, c.ok)
		}
	}
	s1, _ := NewSecret()
	s2, _ := NewSecret()
	if s1 == s2 || CheckSecret("token", s1) != nil {
		t.Fatalf("secrets %q %q", s1, s2)
	}
	for _, bad := range []string{"short", "has a space in it, long enough", "tab\tinside-long-enough-x"} {
		if CheckSecret("token", bad) == nil {
			t.Errorf("CheckSecret(%q) accepted it", bad)
		}
	}
	if TokenID(s1) == TokenID(s2) || len(TokenID(s1)) != 64 {
		t.Fatal("token ids")
	}
	// The MAC separates its parts: moving a byte from one part to the
	// next changes it.
	if string(JoinMAC("k", []byte("ab"), []byte("c"))) == string(JoinMAC("k", []byte("a"), []byte("bc"))) {
		t.Fatal("JoinMAC does not separate its parts")
	}
	if string(JoinMAC("k", []byte("a"))) == string(JoinMAC("k2", []byte("a"))) {
		t.Fatal("JoinMAC ignores the secret")
	}
}

// refusedByServer reports whether err is the other side's TLS alert that
// it refused this side's certificate: not a local check, not a dead
// listener, not a reset.
func refusedByServer(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && strings.Contains(op.Err.Error(), "bad certificate")
}

// The servers' own check, not the client's: a client that trusts this
// cluster's authority (or checks nothing) but presents another
// authority's certificate passes its side of the handshake, and the peer
// listener and the API listener refuse it with a TLS alert, learning
// nothing from it and telling it nothing.
func TestServersRefuseAnotherAuthoritysClientCertificate(t *testing.T) {
	ca := mustCA(t, "a")
	server := installed(t, t.TempDir(), ca, "s")
	foreign, err := installed(t, t.TempDir(), mustCA(t, "b"), "s").Client()
	if err != nil {
		t.Fatal(err)
	}
	clients := []struct {
		name string
		cfg  *tls.Config
	}{
		{"trusting this authority", ClientConfig(ca.Cert, &foreign.Certificates[0])},
		{"checking nothing", &tls.Config{InsecureSkipVerify: true, Certificates: foreign.Certificates}},
		{"checking nothing, TLS 1.2", &tls.Config{InsecureSkipVerify: true, Certificates: foreign.Certificates, MaxVersion: tls.VersionTLS12}},
	}
	for _, srv := range []struct {
		name string
		cfg  *tls.Config
	}{{"peer", server.PeerServer()}, {"api", server.APIServer()}} {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.cfg)
		if err != nil {
			t.Fatal(err)
		}
		serverErrs := make(chan error, 1)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				err = c.(*tls.Conn).Handshake()
				if err == nil {
					c.Write([]byte("admitted"))
				}
				c.Close()
				serverErrs <- err
			}
		}()
		for _, cl := range clients {
			c, err := tls.Dial("tcp", ln.Addr().String(), cl.cfg)
			if err == nil {
				// TLS 1.3: the server checks the client's certificate
				// after the client's side is done, and its alert is
				// what the first read meets.
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				var n int
				b := make([]byte, 16)
				n, err = c.Read(b)
				c.Close()
				if n > 0 {
					t.Errorf("%s server, client %s: answered %q", srv.name, cl.name, b[:n])
				}
			}
			if srv.name == "peer" && cl.cfg.MaxVersion == tls.VersionTLS12 {
				// The peer listener speaks TLS 1.3 only: refused before
				// any certificate is looked at.
				if err == nil {
					t.Errorf("peer server, client %s: a TLS 1.2 connection", cl.name)
				}
				<-serverErrs
				continue
			}
			if !refusedByServer(err) {
				t.Errorf("%s server, client %s: %v, want the server's bad certificate alert", srv.name, cl.name, err)
			}
			if serr := <-serverErrs; !errors.Is(serr, ErrUntrusted) {
				t.Errorf("%s server, client %s: the server's handshake: %v, want ErrUntrusted", srv.name, cl.name, serr)
			}
		}
		ln.Close()
	}
}
