package api

// Fuzz tests of the bodies of trust (the public join hello, the
// certificate a joiner asks for, a new token) and of what a client records
// (a resource, a group, the backup schedule). The two join steps, which a
// caller without a token reaches, run the real handlers on a one-node
// cluster; the others run the steps their handlers take before anything
// is written, and the stored form's way back.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/schedule"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// fuzzNode is a one-node cluster and its API handler, made once per
// fuzzing process.
type fuzzNode struct {
	srv    *Server
	svc    *cluster.Service
	secret string
	ca     *x509.Certificate
	leaf   []byte // the certificate the node serves
}

func newFuzzNode(f *testing.F) *fuzzNode {
	f.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	secret, err := security.NewSecret()
	if err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := cluster.Open(cluster.Config{DataDir: f.TempDir(), NodeName: "fuzz", RaftBind: addr, APIAddr: "127.0.0.1:1",
		Logger: log, RaftLog: io.Discard, HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond, JoinSecret: secret})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { svc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Create(ctx, "fuzz"); err != nil {
		f.Fatal(err)
	}
	for {
		if _, err := svc.ReadIndex(ctx); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			f.Fatal("the one-node cluster never became ready")
		case <-time.After(10 * time.Millisecond):
		}
	}
	ca, _, err := svc.Credentials().Current()
	if err != nil {
		f.Fatal(err)
	}
	cfg, err := svc.Credentials().Client()
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzNode{srv: NewServer(svc, nil, log), svc: svc, secret: secret, ca: ca, leaf: cfg.Certificates[0].Certificate[0]}
}

// post serves a POST of body to path as if over TLS, with the
// Authorization header auth when it is not empty.
func (n *fuzzNode) post(path string, body []byte, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "https://node"+path, bytes.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	n.srv.ServeHTTP(w, r)
	return w
}

// wantInvalid fails t unless w is a 400 with the invalid code.
func wantInvalid(t *testing.T, w *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	var e wire.Error
	if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Code != wire.CodeInvalid {
		t.Fatalf("body %q: %d %s, want 400 %s", body, w.Code, w.Body.Bytes(), wire.CodeInvalid)
	}
}

// decodes reports whether body decodes into v as the handlers decode it.
func decodes(body []byte, v any) bool {
	return decodeBody(httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)), v) == nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// The public first step of a join, open to anyone who reaches the API:
// whatever the body, the member answers 400 (the caller's fault) or, for
// a hello with a nonce of at least 16 bytes, its welcome: the cluster's
// authority and a proof over the nonce that a joiner holding the join
// token accepts and one holding another token does not. Nothing else.
func FuzzJoinHello(f *testing.F) {
	n := newFuzzNode(f)
	nonce := bytes.Repeat([]byte{7}, 32)
	f.Add(mustJSON(wire.JoinHello{Nonce: nonce}))
	f.Add(mustJSON(wire.JoinHello{Nonce: nonce[:16]}))
	f.Add(mustJSON(wire.JoinHello{Nonce: nonce[:15]}))
	f.Add([]byte(`{"nonce":null}`))
	f.Add([]byte(`{"nonce":"not base64!"}`))
	f.Add([]byte(`{"nonce":"BwcHBwcHBwcHBwcHBwcHBw==","info":{}}`))
	f.Add([]byte(`{"nonce":"BwcHBwcHBwcHBwcHBwcHBw=="} {}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		w := n.post("/v1/join/hello", body, "")
		var hello wire.JoinHello
		good := decodes(body, &hello) && len(hello.Nonce) >= 16
		if !good {
			wantInvalid(t, w, body)
			return
		}
		if w.Code != http.StatusOK {
			t.Fatalf("hello %q: %d %s, want a welcome", body, w.Code, w.Body.Bytes())
		}
		var wel wire.JoinWelcome
		if err := json.Unmarshal(w.Body.Bytes(), &wel); err != nil {
			t.Fatalf("welcome %s: %v", w.Body.Bytes(), err)
		}
		if !bytes.Equal(wel.CA, n.ca.Raw) || wel.Info.ClusterName != "fuzz" || wel.Info.ClusterID != n.svc.Identity().ClusterID {
			t.Fatalf("welcome names another cluster: %+v", wel.Info)
		}
		if !hmac.Equal(wel.MAC, security.JoinHelloMAC(n.secret, hello.Nonce, wel.CA, n.leaf, wel.Info)) {
			t.Fatalf("hello %q: the member's proof does not verify with the join token", body)
		}
		if hmac.Equal(wel.MAC, security.JoinHelloMAC(n.secret+"x", hello.Nonce, wel.CA, n.leaf, wel.Info)) {
			t.Fatalf("hello %q: the member's proof verifies with another token", body)
		}
	})
}

// The second step, with the join token: whatever the body, the leader
// answers 400, 409 (an id that is a member already) or a certificate that
// the cluster's authority verifies for a client and a server, naming the
// node id asked for and holding the public key sent. Nothing else.
func FuzzCertRequest(f *testing.F) {
	n := newFuzzNode(f)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKIXPublicKey(ec.Public())
	edDER, _ := x509.MarshalPKIXPublicKey(edPub)
	m := wire.Member{ID: "6f1f4a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f", Name: "newcomer", RaftAddr: "127.0.0.1:7001", APIAddr: "127.0.0.1:7000"}
	f.Add(mustJSON(wire.CertRequest{Member: m, PublicKey: ecDER}))
	f.Add(mustJSON(wire.CertRequest{Member: m, PublicKey: edDER}))
	f.Add(mustJSON(wire.CertRequest{Member: m, PublicKey: ecDER[:len(ecDER)-1]}))
	f.Add(mustJSON(wire.CertRequest{Member: wire.Member{ID: n.svc.Identity().NodeID, Name: "impostor"}, PublicKey: ecDER}))
	f.Add(mustJSON(wire.CertRequest{Member: wire.Member{}, PublicKey: ecDER}))
	f.Add([]byte(`{"member":{"id":"x"},"public_key":"AA=="}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w := n.post("/v1/join/cert", body, wire.JoinScheme+" "+n.secret)
		var req wire.CertRequest
		if !decodes(body, &req) {
			wantInvalid(t, w, body)
			return
		}
		switch w.Code {
		case http.StatusBadRequest:
			wantInvalid(t, w, body)
			return
		case http.StatusConflict:
			if !n.svc.IsMember(req.Member.ID) {
				t.Fatalf("request %q: %s, but %q is no member", body, w.Body.Bytes(), req.Member.ID)
			}
			return
		case http.StatusOK:
		default:
			t.Fatalf("request %q: %d %s", body, w.Code, w.Body.Bytes())
		}
		if n.svc.IsMember(req.Member.ID) {
			t.Fatalf("request %q: a certificate for member %q", body, req.Member.ID)
		}
		var c wire.Certificate
		if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(c.Cert)
		if err != nil {
			t.Fatalf("request %q: the certificate issued does not parse: %v", body, err)
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
			id, err := security.VerifyNode(n.ca, cert, usage)
			if err != nil || id != req.Member.ID {
				t.Fatalf("request %q: the certificate names %q (%v), want %q", body, id, err, req.Member.ID)
			}
		}
		pub, err := x509.ParsePKIXPublicKey(req.PublicKey)
		if err != nil {
			t.Fatalf("request %q: a certificate for a key that does not parse: %v", body, err)
		}
		if k, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(cert.PublicKey) || !bytes.Equal(c.CA, n.ca.Raw) {
			t.Fatalf("request %q: the certificate holds another key or authority", body)
		}
	})
}

// A token request: whatever the body, its roles are refused as the
// caller's fault or are known roles, each once; a caller holding the
// operator role only may grant read and operator, never backup; and what
// decodes is decoded the same when sent again.
func FuzzTokenRequest(f *testing.F) {
	f.Add([]byte(`{"name":"ci","roles":["read"]}`))
	f.Add([]byte(`{"name":"ops","roles":["Operator"," backup ","read","operator"]}`))
	f.Add([]byte(`{"name":"x","roles":[]}`))
	f.Add([]byte(`{"name":"x","roles":["admin"]}`))
	f.Add([]byte(`{"name":"x","roles":["bac\u212aup"]}`))
	f.Add([]byte(`{"name":"x","roles":null,"token":"ckt_x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req wire.TokenRequest
		if !decodes(body, &req) {
			return
		}
		rs, err := security.ParseRoles(req.Roles)
		if err != nil {
			if !errors.Is(err, security.ErrBadRole) || !isInvalid(fmt.Errorf("%w: %w", errInvalidRequest, err)) {
				t.Fatalf("roles %q: %v, not the caller's fault", req.Roles, err)
			}
			return
		}
		if len(rs) == 0 || len(rs) > len(req.Roles) {
			t.Fatalf("roles %q: %v", req.Roles, rs)
		}
		for i, r := range rs {
			if !slices.Contains(security.Roles, r) || slices.Contains(rs[:i], r) {
				t.Fatalf("roles %q: %v", req.Roles, rs)
			}
			if security.Grants([]security.Role{security.RoleOperator}, r) != (r != security.RoleBackup) {
				t.Fatalf("an operator granting %s", r)
			}
		}
		var again wire.TokenRequest
		if !decodes(mustJSON(req), &again) || !reflect.DeepEqual(again, req) {
			t.Fatalf("a token request changes when sent again: %+v -> %+v", req, again)
		}
	})
}

// A resource: whatever the body, it is refused as the caller's fault, or,
// normalized, it validates; what the cluster records reads back to the
// same record, still valid, and is taken when a client sends it again.
func FuzzResourceBody(f *testing.F) {
	f.Add([]byte(`{"name":"web","type":"exec","params":{"start":"/usr/bin/web --port 80","http":"http://127.0.0.1:80/health"}}`))
	f.Add([]byte(`{"name":"db","type":"systemd","params":{"unit":"postgresql.service"},"monitor_interval":"30s","monitor_timeout":"5s","restart_limit":2}`))
	f.Add([]byte(`{"name":"x","type":"exec","params":{"start":"[\"sh\",\"-c\",\"exit 0\"]","tcp":"db:5432"},"monitor_interval":1000000000,"monitor_timeout":"1s"}`))
	f.Add([]byte(`{"name":"x","type":"exec","params":{"start":"a $HOME"}}`))
	f.Add([]byte(`{"name":"x","type":"exec","params":{"start":"a"},"monitor_timeout":"-1s","start_timeout":"0s"}`))
	f.Add([]byte(`{"name":"-bad","type":"nope"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r roles.Resource
		if !decodes(body, &r) {
			return
		}
		r.Normalize()
		if err := r.Validate(); err != nil {
			if !errors.Is(err, roles.ErrInvalid) {
				t.Fatalf("resource %q refused, not as the caller's fault: %v", body, err)
			}
			return
		}
		stored := mustJSON(r)
		var back roles.Resource
		if err := json.Unmarshal(stored, &back); err != nil {
			t.Fatalf("recorded resource %s does not read back: %v", stored, err)
		}
		back.Normalize()
		if again := mustJSON(back); !bytes.Equal(again, stored) || back.Validate() != nil {
			t.Fatalf("recorded resource changes when read back:\n%s\n%s", stored, again)
		}
		var again roles.Resource
		if !decodes(stored, &again) {
			t.Fatalf("recorded resource %s is refused when sent again", stored)
		}
	})
}

// A group: as a resource, with its owners and failback.
func FuzzGroupBody(f *testing.F) {
	f.Add([]byte(`{"name":"web","resources":["ip","web"],"possible_owners":["n1","n2"],"preferred_owners":["n2"],"failover_threshold":3,"failover_period":"6h","failback":{"policy":"window","window_start":"22:00","window_end":"02:00"},"wanted":"online"}`))
	f.Add([]byte(`{"name":"g","resources":[],"failback":{"policy":"immediately"},"wanted":"offline"}`))
	f.Add([]byte(`{"name":"g","resources":["a","A"]}`))
	f.Add([]byte(`{"name":"g","preferred_owners":["n3"],"possible_owners":["n1"]}`))
	f.Add([]byte(`{"name":"g","failback":{"policy":"window","window_start":"24:00","window_end":"1:00"}}`))
	f.Add([]byte(`{"name":"g","failover_period":"-1h","failover_threshold":-1,"wanted":"up"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var g roles.Group
		if !decodes(body, &g) {
			return
		}
		g.Normalize()
		if err := g.Validate(); err != nil {
			if !errors.Is(err, roles.ErrInvalid) {
				t.Fatalf("group %q refused, not as the caller's fault: %v", body, err)
			}
			return
		}
		stored := mustJSON(g)
		var back roles.Group
		if err := json.Unmarshal(stored, &back); err != nil {
			t.Fatalf("recorded group %s does not read back: %v", stored, err)
		}
		back.Normalize()
		if again := mustJSON(back); !bytes.Equal(again, stored) || back.Validate() != nil {
			t.Fatalf("recorded group changes when read back:\n%s\n%s", stored, again)
		}
		var again roles.Group
		if !decodes(stored, &again) {
			t.Fatalf("recorded group %s is refused when sent again", stored)
		}
	})
}

// The schedule: whatever the body, it is refused as the caller's fault,
// or it validates; what the cluster records reads back to the same record,
// still valid; and its next run is due after now (for an interval, within
// one interval).
func FuzzScheduleBody(f *testing.F) {
	f.Add([]byte(`{"spec":"0 3 * * *","target":"/var/backups/ck","keep_last":7,"keep_daily":7,"keep_weekly":4,"keep_monthly":12}`))
	f.Add([]byte(`{"spec":"@every 90m","target":"s3://bucket/prefix","paused":true}`))
	f.Add([]byte(`{"spec":"*/15 1-5,22 1,15 */2 1-5","target":"/b","recipients":["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]}`))
	f.Add([]byte(`{"spec":"0 0 31 2 *","target":"/b"}`))
	f.Add([]byte(`{"spec":"@every 0s","target":"relative"}`))
	f.Add([]byte(`{"spec":"@weekly","target":"/b","keep_last":-1,"recipients":["not-a-key"]}`))
	now := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		var c schedule.Config
		if !decodes(body, &c) {
			return
		}
		if err := c.Validate(); err != nil {
			// The handler reports every refusal as the caller's fault.
			return
		}
		stored := mustJSON(c)
		back, err := schedule.ParseConfig(string(stored))
		if err != nil {
			t.Fatalf("recorded schedule %s does not read back: %v", stored, err)
		}
		if again := mustJSON(back); !bytes.Equal(again, stored) || back.Validate() != nil {
			t.Fatalf("recorded schedule changes when read back:\n%s\n%s", stored, again)
		}
		spec, err := schedule.ParseSpec(c.Spec)
		if err != nil {
			t.Fatalf("a valid schedule's spec %q does not parse: %v", c.Spec, err)
		}
		next := spec.Next(now)
		if next.IsZero() {
			return // a spec that names no real day never fires
		}
		if !next.After(now) {
			t.Fatalf("spec %q: next run %v is not after %v", c.Spec, next, now)
		}
		if every, ok := everyOf(c.Spec); ok && next.Sub(now) > every {
			t.Fatalf("spec %q: next run %v is more than one interval after %v", c.Spec, next, now)
		}
	})
}

// everyOf is the interval of an "@every" spec as ParseSpec reads it.
func everyOf(spec string) (time.Duration, bool) {
	d, ok := strings.CutPrefix(strings.TrimSpace(spec), "@every ")
	if !ok {
		return 0, false
	}
	every, err := time.ParseDuration(strings.TrimSpace(d))
	return every, err == nil
}
