package client_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/api"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/security"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// Every endpoint checks its caller, walking api.Routes() so that a new
// route is covered as soon as it is listed: without a token or with an
// unknown one a call gets 401; with a token lacking the route's role (a
// read token anywhere above read, an operator token on the backup routes,
// a backup token on the operator routes) 403; a local-only route 403 over
// TCP, and a route for member nodes ("node") or the join token 403 with a
// token of every role, the admin's included. Each refused call carries a
// body that would change something were it let through, and nothing
// changes: the hive's sequence number, the nodes' paused states, the
// shadow-copy sessions the node started.
func TestEveryEndpointChecksItsRole(t *testing.T) {
	nodes := tc.InProcess(t, 2)
	ctx := tc.Context(t)
	tr := tc.UseTrust(t)
	admin := tc.Open(t, nodes[0].API())
	ca, err := client.LoadCA(tr.CACert)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{"admin": tr.AdminToken}
	for _, role := range []string{"read", "operator", "backup"} {
		nt, err := admin.CreateToken(ctx, role+"-only", []string{role})
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = nt.Token
	}
	// Bodies that would change something: the hive, a session, a token.
	// ({name} in a path is the read token's name: a revocation let through
	// would show.)
	if _, err := admin.SetValue(ctx, "Refused/Probe", wire.Uint32Value("x", 1)); err != nil {
		t.Fatal(err)
	}
	var export bytes.Buffer
	if err := admin.Export(ctx, "Refused/Probe", &export); err != nil {
		t.Fatal(err)
	}
	bodies := map[string]string{
		"POST /v1/txn":                   `{"ops":[{"op":"set-value","key":"Refused/Probe","value":{"name":"x","type":"uint32","data":2}}]}`,
		"POST /v1/import":                export.String(),
		"POST /v1/tokens":                `{"name":"granted","roles":["read"]}`,
		"PUT /v1/schedule":               `{"spec":"@every 1h","target":"/tmp/refused"}`,
		"PUT /v1/resources/{name}":       `{"type":"exec","params":{"start":"true"}}`,
		"PUT /v1/groups/{name}":          `{"resources":[],"wanted":"offline"}`,
		"POST /v1/shadow/backups":        `{"type":"full"}`,
		"POST /v1/members":               `{"id":"6f1f4a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f","name":"sneak","raft_addr":"127.0.0.1:1","api_addr":"127.0.0.1:2"}`,
		"POST /v1/join/cert":             `{"member":{"id":"6f1f4a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f","name":"sneak","raft_addr":"127.0.0.1:1"},"public_key":"AA=="}`,
		"POST /v1/shadow/restores":       `{"backup_id":"b","backup_type":"full","components":[]}`,
		"POST /v1/nodes/{node}/{action}": "",
	}
	hc := &http.Client{Transport: security.HTTPTransport(func() (*tls.Config, error) { return security.ClientConfig(ca, nil), nil })}
	call := func(method, path, body, token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, "https://"+nodes[1].API()+path, strings.NewReader(body))
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
	// sessions counts the shadow-copy sessions the called node started:
	// its requester's calls are never forwarded.
	sessions := func() string {
		code, body := call(http.MethodGet, "/metrics", "", tr.AdminToken)
		if code != http.StatusOK {
			t.Fatalf("metrics: %d %s", code, body)
		}
		var out []string
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "clusterkeep_shadow_sessions_started_total{") {
				out = append(out, l)
			}
		}
		if len(out) != 2 {
			t.Fatalf("metrics lack the sessions started: %q", out)
		}
		return strings.Join(out, "; ")
	}
	before, err := admin.GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sessionsBefore := sessions()

	// refusedTo lists, by access, the tokens whose calls get 403.
	refusedTo := map[string][]string{
		"read":     nil,
		"operator": {"read", "backup"},
		"backup":   {"read", "operator"},
		"self-add": {"read", "backup"},
		"join":     {"read", "operator", "backup", "admin"},
		"node":     {"read", "operator", "backup", "admin"},
		"local":    {"read", "operator", "backup", "admin"},
	}
	routes := api.Routes()
	if len(routes) < 20 {
		t.Fatalf("only %d routes listed", len(routes))
	}
	checkDeclaredAccess(t, routes)
	r := strings.NewReplacer("{node}", "n2", "{action}", "pause", "{id}", "x", "{step}", "prepare", "{name}", "read-only", "{$}", "")
	seen := map[string]int{}
	for _, rt := range routes {
		if rt.Access == "public" {
			continue
		}
		refused, known := refusedTo[rt.Access]
		if !known {
			t.Errorf("%s: access %q is new to this test: say which tokens it refuses", rt.Pattern, rt.Access)
			continue
		}
		seen[rt.Access]++
		method, path, _ := strings.Cut(rt.Pattern, " ")
		path = r.Replace(path)
		body, ok := bodies[rt.Pattern]
		if !ok {
			body = "{}"
		}
		switch rt.Access {
		case "local":
			// Not over TCP, whoever asks: the local socket only.
			if code, resp := call(method, path, body, ""); code != http.StatusForbidden {
				t.Errorf("%s over TCP without a token: %d %s, want 403", rt.Pattern, code, resp)
			}
		case "node":
			// Member nodes only: a caller with no certificate is refused
			// however it asks.
			for _, tok := range []string{"", "ckt_not-a-token-of-this-cluster"} {
				if code, resp := call(method, path, body, tok); code != http.StatusUnauthorized && code != http.StatusForbidden {
					t.Errorf("%s (node) with token %.6q: %d %s, want 401 or 403", rt.Pattern, tok, code, resp)
				}
			}
		default:
			if code, resp := call(method, path, body, ""); code != http.StatusUnauthorized {
				t.Errorf("%s without a token: %d %s, want 401", rt.Pattern, code, resp)
			}
			if code, resp := call(method, path, body, "ckt_not-a-token-of-this-cluster"); code != http.StatusUnauthorized {
				t.Errorf("%s with an unknown token: %d %s, want 401", rt.Pattern, code, resp)
			}
		}
		for _, role := range refused {
			if code, resp := call(method, path, body, tokens[role]); code != http.StatusForbidden {
				t.Errorf("%s (%s) with a %s token: %d %s, want 403", rt.Pattern, rt.Access, role, code, resp)
			}
		}
	}
	// The matrix is exercised, not vacuous.
	for _, access := range []string{"read", "operator", "backup", "self-add", "join", "local"} {
		if seen[access] == 0 {
			t.Errorf("no route of access %q listed", access)
		}
	}
	// Nothing changed: the sequence number is where it was once the
	// tokens were made, no node is paused, no session was started, and the
	// refused revocation left the read token working.
	info, err := admin.GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Seq != before.Seq {
		t.Errorf("refused calls changed the hive: seq %d -> %d", before.Seq, info.Seq)
	}
	for _, n := range info.Nodes {
		if n.Paused {
			t.Errorf("%s paused by a refused call", n.Name)
		}
	}
	if got := sessions(); got != sessionsBefore {
		t.Errorf("refused calls started shadow-copy sessions: %s -> %s", sessionsBefore, got)
	}
	if code, resp := call(http.MethodGet, "/v1/shadow/backups/x", "", tr.AdminToken); code != http.StatusNotFound {
		t.Errorf("the admin asking for backup x: %d %s, want 404 (no session)", code, resp)
	}
	if code, resp := call(http.MethodGet, "/v1/cluster", "", tokens["read"]); code != http.StatusOK {
		t.Errorf("the read token after the refused calls: %d %s", code, resp)
	}
}

// checkDeclaredAccess checks what the routes declare, which the walk of
// TestEveryEndpointChecksItsRole takes on trust: a call that changes
// something is never open to a read token or to anyone (but the public
// steps of joining and of the dashboard's login), and the routes of
// backups, restores, the schedule's changes, tokens, writes and node
// actions need their role.
func checkDeclaredAccess(t *testing.T, routes []api.Route) {
	t.Helper()
	public := map[string]bool{"POST /v1/join/hello": true, "POST /ui/login": true, "POST /ui/logout": true}
	pinned := map[string]string{
		"PUT /v1/schedule": "backup", "DELETE /v1/schedule": "backup", "POST /v1/schedule/run": "backup",
		"POST /v1/txn": "operator", "POST /v1/import": "operator", "POST /v1/nodes/{node}/{action}": "operator",
		"GET /v1/tokens": "operator", "POST /v1/tokens": "operator", "DELETE /v1/tokens/{name}": "operator",
		"POST /v1/join/cert": "join", "POST /v1/join/rotate": "local",
	}
	listed := map[string]bool{}
	for _, rt := range routes {
		listed[rt.Pattern] = true
		method, path, _ := strings.Cut(rt.Pattern, " ")
		want := pinned[rt.Pattern]
		if strings.HasPrefix(path, "/v1/shadow/backups") || strings.HasPrefix(path, "/v1/shadow/restores") {
			want = "backup"
		}
		switch {
		case want != "" && rt.Access != want:
			t.Errorf("%s declares access %q, want %q", rt.Pattern, rt.Access, want)
		case method != http.MethodGet && method != http.MethodHead && (rt.Access == "read" || rt.Access == "public" && !public[rt.Pattern]):
			t.Errorf("%s changes something and declares access %q", rt.Pattern, rt.Access)
		}
	}
	for p := range pinned {
		if !listed[p] {
			t.Errorf("route %s is no longer listed: update this test", p)
		}
	}
}

// The API's own check of a client certificate: a caller that trusts the
// cluster's authority but presents a certificate of another cluster's is
// refused in the TLS handshake by the node (the alert of a certificate
// refused), whatever token it sends, while the same caller without the
// certificate is answered.
func TestAPIRefusesAnotherClustersCertificate(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	tr := tc.UseTrust(t)
	ca, err := client.LoadCA(tr.CACert)
	if err != nil {
		t.Fatal(err)
	}
	other, err := security.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	st, err := security.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	der, err := other.IssueNode(st.PublicKey(), "x", "x", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Install(other.Cert.Raw, der); err != nil {
		t.Fatal(err)
	}
	foreign, err := st.Client()
	if err != nil {
		t.Fatal(err)
	}
	get := func(cfg *tls.Config) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+nodes[0].API()+"/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer "+tr.AdminToken)
		return (&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}).Do(req)
	}
	resp, err := get(security.ClientConfig(ca, nil))
	if err != nil {
		t.Fatalf("the node without a client certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the node without a client certificate: %s", resp.Status)
	}
	for name, cfg := range map[string]*tls.Config{
		"trusting the authority": security.ClientConfig(ca, &foreign.Certificates[0]),
		"TLS 1.2":                {InsecureSkipVerify: true, Certificates: foreign.Certificates, MaxVersion: tls.VersionTLS12},
	} {
		resp, err := get(cfg)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("another cluster's certificate (%s) was accepted by the API: %s", name, resp.Status)
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "remote error" || !strings.Contains(err.Error(), "bad certificate") {
			t.Fatalf("another cluster's certificate (%s): %v, want the node's bad certificate alert", name, err)
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
	if _, err := ops.SetValue(ctx, "Apps/Web", wire.Uint32Value("Port", 80)); err != nil {
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
	body, _ := json.Marshal(wire.CertRequest{Member: wire.Member{ID: "6f1f4a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f", Name: "sneak", RaftAddr: "127.0.0.1:1"}, PublicKey: st.PublicKeyDER()})
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
	if _, err := reader.SetValue(ctx, "Apps/Web", wire.Uint32Value("Port", 81)); !errors.Is(err, client.ErrForbidden) {
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
	pose := wire.Member{ID: member.ID, Name: "impostor", RaftAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2"}
	if _, err := client.RequestCert(ctx, nodes[0].API(), ca, tr.JoinToken, pose, st.PublicKeyDER()); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("a certificate naming member %s: %v", member.Name, err)
	}
	fresh := wire.Member{ID: "6f1f4a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f", Name: "newcomer", RaftAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2"}
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
	if _, err := nc.SetValue(ctx, "X", wire.Uint32Value("y", 1)); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("a joining node writes: %v", err)
	}
	if err := nc.AddMember(ctx, wire.Member{ID: "0f1f4a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f", Name: "other", RaftAddr: "127.0.0.1:3"}); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("a joining node adds another node: %v", err)
	}
}
