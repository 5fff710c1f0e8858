package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/security"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// secureNode is an agent process started with the defaults: none of the
// test process's shared trust, so its cluster makes its own authority.
type secureNode struct {
	name, dir, api, raft string
	log                  *bytes.Buffer
}

func startSecure(t *testing.T, base, name string, args ...string) *secureNode {
	t.Helper()
	n := &secureNode{name: name, dir: filepath.Join(base, name), api: tc.FreeAddr(t), raft: tc.FreeAddr(t), log: &bytes.Buffer{}}
	cmd := exec.Command(tc.Binary(t), append([]string{"agent", "--data-dir", n.dir, "--name", name, "--api", n.api, "--raft", n.raft,
		"--heartbeat-timeout", "500ms", "--election-timeout", "500ms", "--leader-lease", "250ms"}, args...)...)
	cmd.Env = tc.WithoutTrust(nil)
	cmd.Stdout, cmd.Stderr = n.log, n.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, n.log.String())
		}
	})
	return n
}

func (n *secureNode) file(parts ...string) string {
	return filepath.Join(append([]string{n.dir}, parts...)...)
}

// cliAs runs the CLI with none of the shared trust, and args.
func cliAs(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runCLI(t, append(tc.WithoutTrust(nil), "CLUSTERKEEP_DATA_DIR="+t.TempDir()), args...)
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	tc.Eventually(t, "file "+path, func() error { _, err := os.Stat(path); return err })
}

func TestSecureByDefault(t *testing.T) {
	base := t.TempDir()
	n1 := startSecure(t, base, "n1", "--create", "sec")
	waitFile(t, n1.file(cluster.AdminTokenFile))
	waitFile(t, n1.file(cluster.JoinTokenFile))
	ca := n1.file(security.Dir, security.CAFile)
	admin := []string{"--cluster", n1.api, "--ca", ca, "--token-file", n1.file(cluster.AdminTokenFile)}

	// The secrets the node made are its owner's only; so is the socket.
	for _, f := range []string{n1.file(cluster.AdminTokenFile), n1.file(cluster.JoinTokenFile), n1.file(security.Dir, security.KeyFile), n1.file("api.sock")} {
		waitFile(t, f)
		if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", f, fi.Mode().Perm())
		}
	}

	// A node with the join token joins; one with a wrong token does not.
	n2 := startSecure(t, base, "n2", "--join", n1.api, "--join-token-file", n1.file(cluster.JoinTokenFile))
	n3 := startSecure(t, base, "n3", "--join", n1.api, "--join-token", "ckt_a-wrong-token-of-some-length")
	tc.Eventually(t, "n2 up", func() error {
		out, errOut, code := cliAs(t, append(admin, "node", "list", "--json")...)
		if code != 0 {
			return fmt.Errorf("%s", errOut)
		}
		if strings.Count(out, `"Up"`) != 2 {
			return fmt.Errorf("%s", out)
		}
		return nil
	})
	tc.Eventually(t, "n3 told the token is wrong", func() error {
		if !strings.Contains(n3.log.String(), "did not prove it knows the join token") {
			return fmt.Errorf("n3 log: %s", n3.log.String())
		}
		return nil
	})
	if out, _, _ := cliAs(t, "state", "--data-dir", n3.dir, "--json"); !strings.Contains(out, "NotConfigured") {
		t.Fatalf("n3 with a wrong token: %s", out)
	}
	if _, err := os.Stat(n3.file(security.Dir, security.CertFile)); err == nil {
		t.Fatal("n3 got a certificate with a wrong token")
	}

	// Without a token: 401, stated; without the authority: refused before
	// anything is sent.
	if _, errOut, code := cliAs(t, "--cluster", n2.api, "--ca", ca, "config", "set", "A", "x", "1", "--type", "uint32"); code == 0 || !strings.Contains(errOut, "needs a token") {
		t.Fatalf("no token: exit %d %s", code, errOut)
	}
	if _, errOut, code := cliAs(t, "--cluster", n2.api, "cluster", "info"); code == 0 || !strings.Contains(errOut, "no cluster authority") {
		t.Fatalf("no authority: exit %d %s", code, errOut)
	}

	// Tokens with roles.
	mk := func(name, role string) string {
		out, errOut, code := cliAs(t, append(admin, "token", "create", name, "--role", role, "--json")...)
		if code != 0 {
			t.Fatalf("token create %s: %s", name, errOut)
		}
		var nt struct{ Token string }
		json.Unmarshal([]byte(out), &nt)
		return nt.Token
	}
	readTok, opTok, backupTok := mk("r", "read"), mk("o", "operator"), mk("b", "backup")
	as := func(token string, args ...string) (string, string, int) {
		return cliAs(t, append([]string{"--cluster", n2.api, "--ca", ca, "--token", token}, args...)...)
	}
	if _, errOut, code := as(opTok, "config", "set", "Apps/Web", "Port", "80", "--type", "uint32"); code != 0 {
		t.Fatalf("operator set: %s", errOut)
	}
	if _, errOut, code := as(readTok, "config", "set", "Apps/Web", "Port", "81", "--type", "uint32"); code == 0 || !strings.Contains(errOut, "forbidden") {
		t.Fatalf("read token set: exit %d %s", code, errOut)
	}
	if out, _, _ := as(readTok, "config", "get", "Apps/Web", "Port"); strings.TrimSpace(out) != "80" {
		t.Fatalf("read token get: %q (the refused set changed it?)", out)
	}
	backups := filepath.Join(base, "backups")
	if _, errOut, code := as(opTok, "backup", "create", "--to", backups); code == 0 || !strings.Contains(errOut, "forbidden") {
		t.Fatalf("operator backup: exit %d %s", code, errOut)
	}
	if out, _, _ := as(backupTok, "backup", "list", backups, "--json"); strings.Contains(out, "sec-") {
		t.Fatalf("a refused backup left a set: %s", out)
	}
	if _, errOut, code := as(backupTok, "backup", "create", "--to", backups); code != 0 {
		t.Fatalf("backup token backup: %s", errOut)
	}
	sets, _ := filepath.Glob(filepath.Join(backups, "sec-*"))
	if len(sets) != 1 {
		t.Fatalf("backup sets: %v", sets)
	}
	if _, errOut, code := as(opTok, "config", "get", "Cluster/Security", "CAKey"); code == 0 || !strings.Contains(errOut, "not served") {
		t.Fatalf("read the authority's key: exit %d %s", code, errOut)
	}

	// The local socket needs neither token nor authority.
	if out, errOut, code := cliAs(t, "--cluster", "unix:"+n1.file("api.sock"), "config", "get", "Apps/Web", "Port"); code != 0 || strings.TrimSpace(out) != "80" {
		t.Fatalf("local socket: %q %s", out, errOut)
	}

	// Rotating the join token: root on a node only (its socket; a
	// follower's forwards it), and the old token proves nothing after.
	if _, errOut, code := cliAs(t, append(admin, "cluster", "rotate-join-token")...); code == 0 || !strings.Contains(errOut, "local socket only") {
		t.Fatalf("rotate over TCP with the admin token: exit %d %s", code, errOut)
	}
	out, errOut, code := cliAs(t, "--cluster", "unix:"+n2.file("api.sock"), "cluster", "rotate-join-token")
	newToken := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(newToken, "ckt_") {
		t.Fatalf("rotate through n2's socket: exit %d %q %s", code, out, errOut)
	}
	oldToken, err := os.ReadFile(n1.file(cluster.JoinTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	tc.Eventually(t, "the old join token refused", func() error {
		if _, _, err := client.JoinHello(tc.Context(t), n2.api, strings.TrimSpace(string(oldToken))); !errors.Is(err, client.ErrWrongJoinSecret) {
			return fmt.Errorf("old token: %v", err)
		}
		return nil
	})
	if _, _, err := client.JoinHello(tc.Context(t), n2.api, newToken); err != nil {
		t.Fatalf("the new join token: %v", err)
	}

	// Plain HTTP to the API gets no answer of the API.
	if resp, err := http.Get("http://" + n1.api + "/v1/cluster"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("the API answered plain HTTP")
		}
	}
}

// Another cluster, with its own authority: a client given that authority
// refuses this cluster's nodes, and this cluster's peer listener and API
// refuse that cluster's node certificate themselves, even from a dialer
// that trusts this cluster's authority (so its own check passes): the TLS
// alert of a refused certificate, not a dead node or a refusal later on;
// and the node's state and membership stay as they were.
func TestForeignClusterIsRefused(t *testing.T) {
	base := t.TempDir()
	n1 := startSecure(t, base, "n1", "--create", "sec")
	x := startSecure(t, base, "x", "--create", "other")
	for _, f := range []string{n1.file(cluster.AdminTokenFile), n1.file(security.Dir, security.CertFile), x.file(cluster.AdminTokenFile), x.file(security.Dir, security.CertFile)} {
		waitFile(t, f)
	}
	ca := n1.file(security.Dir, security.CAFile)
	if _, errOut, code := cliAs(t, "--cluster", n1.api, "--ca", x.file(security.Dir, security.CAFile), "--token-file", x.file(cluster.AdminTokenFile), "cluster", "info"); code == 0 || !strings.Contains(errOut, "not issued by this cluster's authority") {
		t.Fatalf("another cluster's authority: exit %d %s", code, errOut)
	}
	n1CA, err := client.LoadCA(ca)
	if err != nil {
		t.Fatal(err)
	}
	token, err := client.ReadTokenFile(n1.file(cluster.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx := tc.Context(t)
	n1c := client.Node(n1.api, client.WithCredentials(client.Credentials{CA: n1CA, Token: token}))
	var before wire.ClusterInfo
	tc.Eventually(t, "n1 leads", func() error {
		if before, err = n1c.GetClusterInformation(ctx); err != nil {
			return err
		}
		if before.Leader != "n1" || len(before.Nodes) != 1 || before.Nodes[0].State != wire.NodeUp {
			return fmt.Errorf("%+v", before)
		}
		return nil
	})
	xs, err := security.OpenStore(x.dir)
	if err != nil {
		t.Fatal(err)
	}
	xcfg, err := xs.Client()
	if err != nil {
		t.Fatal(err)
	}
	_, xid, err := xs.Current()
	if err != nil {
		t.Fatal(err)
	}
	withXCert := security.ClientConfig(n1CA, &xcfg.Certificates[0])

	// The peer listener: refused at TLS, with the claim of a node of this
	// cluster at its generation or a higher one, whichever way it dials.
	for name, cfg := range map[string]*tls.Config{"its own": xcfg, "trusting this cluster's authority": withXCert,
		"checking nothing": {InsecureSkipVerify: true, Certificates: xcfg.Certificates}} {
		for _, gen := range []uint64{before.Generation, before.Generation + 1} {
			if c, err := cluster.DialPeer(n1.raft, 5*time.Second, cfg, cluster.PeerIdentity{ClusterID: before.ID, Generation: gen, NodeID: xid}, nil); err == nil {
				c.Close()
				t.Fatalf("a node of another cluster (%s configuration) passed the peer handshake", name)
			}
		}
	}
	for name, cfg := range map[string]*tls.Config{"trusting this cluster's authority": withXCert,
		"checking nothing": {InsecureSkipVerify: true, Certificates: xcfg.Certificates}} {
		if err := firstAnswer(n1.raft, cfg); !certificateRefused(err) {
			t.Fatalf("n1's peer listener, another cluster's node %s: %v, want its bad certificate alert", name, err)
		}
	}

	// The API: refused at TLS whatever token comes with it, while the
	// same client without that certificate is answered.
	get := func(cfg *tls.Config) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+n1.api+"/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return (&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}).Do(req)
	}
	if resp, err := get(security.ClientConfig(n1CA, nil)); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("n1's API without a client certificate: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	resp, err := get(withXCert)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("another cluster's node certificate was accepted by the API: %s", resp.Status)
	}
	if !certificateRefused(err) {
		t.Fatalf("another cluster's node certificate at the API: %v, want the node's bad certificate alert", err)
	}
	if err := firstAnswer(n1.api, withXCert); !certificateRefused(err) {
		t.Fatalf("n1's API listener, another cluster's node: %v, want its bad certificate alert", err)
	}

	after, err := n1c.GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.ID != before.ID || after.Generation != before.Generation || after.Leader != before.Leader ||
		len(after.Nodes) != 1 || after.Nodes[0].ID != before.Nodes[0].ID || after.Nodes[0].State != wire.NodeUp {
		t.Fatalf("another cluster's node changed n1:\n before %+v\n after  %+v", before, after)
	}
}

// firstAnswer dials addr over TLS with cfg and reads, sending nothing.
// A TLS 1.3 server checks the client's certificate once the client's side
// of the handshake is done, so a refusal is what the first read meets.
func firstAnswer(addr string, cfg *tls.Config) error {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if err := c.Handshake(); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	return err
}

// certificateRefused reports whether err is the other side's TLS alert
// refusing this side's certificate.
func certificateRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && strings.Contains(op.Err.Error(), "bad certificate")
}

// The quick start: `local up` with nothing set makes a cluster with its
// own authority and tokens, and prints what a client needs.
func TestLocalUpFromNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "local")
	out, errOut, code := cliAs(t, "local", "up", "--dir", dir, "--json")
	t.Cleanup(func() { cliAs(t, "local", "down", "--dir", dir) })
	if code != 0 {
		t.Fatalf("local up: %s", errOut)
	}
	var up struct{ Env []string }
	if err := json.Unmarshal([]byte(out), &up); err != nil || len(up.Env) != 3 {
		t.Fatalf("local up output: %v %s", err, out)
	}
	cmd := exec.Command(tc.Binary(t), "cluster", "info", "--json")
	cmd.Env = append(tc.WithoutTrust(nil), up.Env...)
	info, err := cmd.Output()
	if err != nil {
		t.Fatalf("cluster info with the printed environment: %v", err)
	}
	if strings.Count(string(info), `"Up"`) != 3 {
		t.Fatalf("cluster info: %s", info)
	}
	// Its authority is its own, not the tests' shared one.
	own, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	shared, _ := os.ReadFile(tc.UseTrust(t).CACert)
	if len(own) == 0 || bytes.Equal(own, shared) {
		t.Fatal("local up did not make the cluster's own authority")
	}

	// On a terminal (no --json) it says what it is doing as it goes.
	if _, errOut, code := cliAs(t, "local", "stop", "node2", "--dir", dir); code != 0 {
		t.Fatalf("local stop node2: %s", errOut)
	}
	_, errOut, code = cliAs(t, "local", "up", "--dir", dir)
	if code != 0 {
		t.Fatalf("local up again: %s", errOut)
	}
	for _, want := range []string{"node1 already runs", "starting node2", "waiting until every node is Up"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("local up said %q, nothing of %q", errOut, want)
		}
	}
}
