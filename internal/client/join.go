package client

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// ErrWrongJoinSecret: the member could not prove it knows the join token
// given (a wrong token, or not a member of the cluster meant).
var ErrWrongJoinSecret = errors.New("the member did not prove it knows the join token: wrong token, or another cluster")

// JoinHello asks the member at addr for the cluster's authority and checks
// the member's proof that it knows the join secret, bound to a fresh nonce
// and to the certificate the member served: only then is the authority
// trusted. It returns the cluster to join and its authority.
func JoinHello(ctx context.Context, addr, secret string) (wire.JoinInfo, *x509.Certificate, error) {
	fail := func(err error) (wire.JoinInfo, *x509.Certificate, error) {
		return wire.JoinInfo{}, nil, fmt.Errorf("join through %s: %w", addr, err)
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return fail(err)
	}
	body, _ := json.Marshal(wire.JoinHello{Nonce: nonce})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+"/v1/join/hello", bytes.NewReader(body))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Content-Type", "application/json")
	// Not verified here: the member's proof below is what is trusted.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrUnavailable, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e wire.Error
		json.NewDecoder(resp.Body).Decode(&e)
		return fail(&APIError{Status: resp.StatusCode, Body: e, Node: addr})
	}
	var w wire.JoinWelcome
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return fail(err)
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return fail(errors.New("the member presented no certificate"))
	}
	leaf := resp.TLS.PeerCertificates[0]
	if !hmac.Equal(w.MAC, security.JoinHelloMAC(secret, nonce, w.CA, leaf.Raw, w.Info)) {
		return fail(ErrWrongJoinSecret)
	}
	ca, err := x509.ParseCertificate(w.CA)
	if err != nil {
		return fail(fmt.Errorf("cluster authority: %w", err))
	}
	if _, err := security.VerifyNode(ca, leaf, x509.ExtKeyUsageServerAuth); err != nil {
		return fail(err)
	}
	return w.Info, ca, nil
}

// RequestCert asks the member at addr, trusted by the authority ca, for a
// certificate for the node m holding the public key pubDER (PKIX DER),
// proving the join secret.
func RequestCert(ctx context.Context, addr string, ca *x509.Certificate, secret string, m wire.Member, pubDER []byte) (wire.Certificate, error) {
	var out wire.Certificate
	err := Node(addr, WithCredentials(Credentials{CA: ca, JoinSecret: secret})).
		postJSON(ctx, "/v1/join/cert", wire.CertRequest{Member: m, PublicKey: pubDER}, &out, true)
	if err != nil {
		return out, fmt.Errorf("certificate from %s: %w", addr, err)
	}
	return out, nil
}
