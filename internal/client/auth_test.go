package client_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/api"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/security"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// Every endpoint checks its caller: without a token a call gets 401, with
// a token of too few roles 403, and nothing changes either way.
func TestEveryEndpointChecksItsRole(t *testing.T) {
	nodes := tc.InProcess(t, 2)
	ctx := tc.Context(t)
	admin := tc.Open(t, nodes[0].API())
	ca, err := client.LoadCA(tc.UseTrust(t).CACert)
	if err != nil {
		t.Fatal(err)
	}
	read, err := admin.CreateToken(ctx, "reader", []string{"read"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := admin.GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seqBefore := before.Seq
	hc := &http.Client{Transport: security.HTTPTransport(func() (*tls.Config, error) { return security.ClientConfig(ca, nil), nil })}
	call := func(method, path, token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, "https://"+nodes[1].API()+path, strings.NewReader("{}"))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	routes := api.Routes()
	if len(routes) < 20 {
		t.Fatalf("only %d routes listed", len(routes))
	}
	r := strings.NewReplacer("{node}", "n2", "{action}", "pause", "{id}", "x", "{step}", "prepare", "{name}", "reader", "{$}", "")
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		path = r.Replace(path)
		if rt.Access == "public" {
			continue
		}
		if rt.Access == "local" {
			// Not over TCP, whoever asks: the local socket only.
			for _, tok := range []string{"", read.Token, tc.UseTrust(t).AdminToken} {
				if code, body := call(method, path, tok); code != http.StatusForbidden {
					t.Errorf("%s over TCP (token %q...): %d %s, want 403", rt.Pattern, tok[:min(len(tok), 6)], code, body)
				}
			}
			continue
		}
		if code, body := call(method, path, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d %s, want 401", rt.Pattern, code, body)
		}
		if code, body := call(method, path, "ckt_not-a-token-of-this-cluster"); code != http.StatusUnauthorized {
			t.Errorf("%s with an unknown token: %d %s, want 401", rt.Pattern, code, body)
		}
		if rt.Access == "read" {
			continue
		}
		if code, body := call(method, path, read.Token); code != http.StatusForbidden {
			t.Errorf("%s (%s) with a read token: %d %s, want 403", rt.Pattern, rt.Access, code, body)
		}
	}
	// Nothing changed: the sequence number is where it was once the token
	// was made, and node n2 is not paused.
	info, err := admin.GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Seq != seqBefore {
		t.Fatalf("refused calls changed the hive: seq %d -> %d", seqBefore, info.Seq)
	}
	for _, n := range info.Nodes {
		if n.Paused {
			t.Fatalf("%s paused by a refused call", n.Name)
		}
	}
}

func TestTokensRolesAndSecrets(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	admin := tc.Open(t, nodes[0].API())
	open := func(token string) *client.Cluster {
		cr, err := client.DefaultCredentials()
		if err != nil {
			t.Fatal(err)
		}
		cr.Token = token
		return client.Node(nodes[0].API(), client.WithCredentials(cr))
	}
	op, err := admin.CreateToken(ctx, "ops", []string{"operator"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateToken(ctx, "OPS", []string{"read"}); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("a second token named ops: %v", err)
	}
	if _, err := admin.CreateToken(ctx, "x", []string{"root"}); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("an unknown role: %v", err)
	}
	ops := open(op.Token)
	if _, err := ops.SetValue(ctx, "Apps/Web", hive.Uint32Value("Port", 80)); err != nil {
		t.Fatalf("operator write: %v", err)
	}
	// An operator cannot get a node certificate (a member may do anything).
	st, err := security.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := client.LoadCA(tc.UseTrust(t).CACert)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(api.CertRequest{Member: api.Member{ID: "6f1f4a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f", Name: "sneak", RaftAddr: "127.0.0.1:1"}, PublicKey: st.PublicKeyDER()})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+nodes[0].API()+"/v1/join/cert", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+op.Token)
	hc := &http.Client{Transport: security.HTTPTransport(func() (*tls.Config, error) { return security.ClientConfig(ca, nil), nil })}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an operator asking for a node certificate: %s", resp.Status)
	}
	// An operator cannot grant the backup role it does not hold...
	if _, err := ops.CreateToken(ctx, "b", []string{"backup"}); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("operator granting backup: %v", err)
	}
	// ...but can grant read.
	rd, err := ops.CreateToken(ctx, "r", []string{"read"})
	if err != nil {
		t.Fatal(err)
	}
	reader := open(rd.Token)
	if v, err := reader.GetValue(ctx, "Apps/Web", "Port"); err != nil || v.Uint32 != 80 {
		t.Fatalf("read token read: %+v %v", v, err)
	}
	if _, err := reader.SetValue(ctx, "Apps/Web", hive.Uint32Value("Port", 81)); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("read token write: %v", err)
	}
	// The cluster's secrets are never served, not even to an admin.
	if _, err := admin.GetKey(ctx, "Cluster/Security"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("read Cluster/Security: %v", err)
	}
	// However the name is spelt: the hive matches names by its own folding
	// (U+0130 and U+212A fold to i and k there).
	for _, key := range []string{"cluster/security", "CLUSTER/SECURITY", "Cluster/Secur\u0130ty", "Cluster/Security/Tokens", "Cluster/Security/../Security"} {
		if _, err := admin.GetValue(ctx, key, "CAKey"); !errors.Is(err, client.ErrForbidden) && !errors.Is(err, client.ErrInvalid) {
			t.Fatalf("read the authority's key as %q: %v", key, err)
		}
		if _, err := admin.GetKey(ctx, key); !errors.Is(err, client.ErrForbidden) && !errors.Is(err, client.ErrInvalid) {
			t.Fatalf("read key %q: %v", key, err)
		}
	}
	if _, err := admin.GetValue(ctx, "Cluster/Security", "\u212aey"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("read a secret by a folded value name: %v", err)
	}
	var exp bytes.Buffer
	if err := admin.Export(ctx, "", &exp); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(exp.String()), "security") || strings.Contains(exp.String(), "CAKey") {
		t.Fatalf("the export holds the secrets:\n%s", exp.String())
	}
	if !strings.Contains(exp.String(), `key "Apps/Web"`) {
		t.Fatalf("the export lacks the configuration:\n%s", exp.String())
	}
	// Listed tokens carry names and roles, never the tokens.
	ts, err := admin.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 {
		t.Fatalf("tokens: %+v", ts)
	}
	if err := ops.RevokeToken(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.GetValue(ctx, "Apps/Web", "Port"); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("revoked token: %v", err)
	}
	if err := ops.RevokeToken(ctx, "r"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
}

// The join token buys a certificate for a new node only: never one naming
// a member (its holder could pose as that member), and never without the
// token.
func TestCertificatesOnlyForNewNodes(t *testing.T) {
	nodes := tc.InProcess(t, 2)
	ctx := tc.Context(t)
	tr := tc.UseTrust(t)
	ca, err := client.LoadCA(tr.CACert)
	if err != nil {
		t.Fatal(err)
	}
	info, err := tc.Open(t, nodes[0].API()).GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := security.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	member := info.Nodes[1]
	pose := api.Member{ID: member.ID, Name: "impostor", RaftAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2"}
	if _, err := client.RequestCert(ctx, nodes[0].API(), ca, tr.JoinToken, pose, st.PublicKeyDER()); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("a certificate naming member %s: %v", member.Name, err)
	}
	fresh := api.Member{ID: "6f1f4a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f", Name: "newcomer", RaftAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2"}
	if _, err := client.RequestCert(ctx, nodes[0].API(), ca, "ckt_wrong-token-of-some-length", fresh, st.PublicKeyDER()); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("a certificate with a wrong join token: %v", err)
	}
	cert, err := client.RequestCert(ctx, nodes[0].API(), ca, tr.JoinToken, fresh, st.PublicKeyDER())
	if err != nil {
		t.Fatalf("a certificate for a new node: %v", err)
	}
	if err := st.Install(cert.CA, cert.Cert); err != nil {
		t.Fatal(err)
	}
	// Holding it, the newcomer may read and add itself, nothing more: it
	// is no member yet.
	nc := client.Node(nodes[0].API(), client.WithCredentials(client.Credentials{TLS: st.Client}))
	if _, err := nc.GetClusterInformation(ctx); err != nil {
		t.Fatalf("a joining node reads: %v", err)
	}
	if _, err := nc.SetValue(ctx, "X", hive.Uint32Value("y", 1)); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("a joining node writes: %v", err)
	}
	if err := nc.AddMember(ctx, api.Member{ID: "0f1f4a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f", Name: "other", RaftAddr: "127.0.0.1:3"}); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("a joining node adds another node: %v", err)
	}
}
