package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/security"
)

// ports keeps each data directory's raft port, so a restarted node comes
// back at the address its peers know.
var ports = map[string]string{}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func fastConfig(t *testing.T, dir, name string) Config {
	if ports[dir] == "" {
		ports[dir] = freeAddr(t)
	}
	return Config{
		DataDir: dir, NodeName: name, RaftBind: ports[dir], APIAddr: "api-" + name,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RaftLog: io.Discard,
		// Raft's own defaults: a loaded machine (the race detector, TLS
		// handshakes, other tests) must not make leaders flap.
		HeartbeatTimeout: time.Second, ElectionTimeout: time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond, ApplyTimeout: 5 * time.Second,
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// eventually polls cond until it holds or the test's deadline passes.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

func openSvc(t *testing.T, dir, name string) *Service {
	t.Helper()
	s, err := Open(fastConfig(t, dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func join(t *testing.T, leader, s *Service) {
	t.Helper()
	info, err := leader.JoinInfo()
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.PrepareJoin(info)
	if err != nil {
		t.Fatal(err)
	}
	ca, cert, err := leader.IssueCert(m, s.Credentials().PublicKeyDER())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Credentials().Install(ca, cert); err != nil {
		t.Fatal(err)
	}
	if err := leader.AddMember(ctx(t), m); err != nil {
		t.Fatal(err)
	}
}

func leaderOf(t *testing.T, svcs ...*Service) *Service {
	t.Helper()
	var l *Service
	eventually(t, "a ready leader", func() error {
		for _, s := range svcs {
			if _, err := s.ReadIndex(context.Background()); err == nil {
				l = s
				return nil
			}
		}
		return errors.New("none")
	})
	return l
}

func TestThreeNodesReplicateAndSurviveLeaderLoss(t *testing.T) {
	base := t.TempDir()
	var svcs []*Service
	for i := range 3 {
		svcs = append(svcs, openSvc(t, filepath.Join(base, fmt.Sprint(i)), fmt.Sprintf("n%d", i)))
	}
	if err := svcs[0].Create(ctx(t), "test"); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, svcs[0])
	join(t, svcs[0], svcs[1])
	join(t, svcs[0], svcs[2])
	seq, err := svcs[0].Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.SetValue("App", hive.Uint32Value("X", 7))}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		eventually(t, "replication", func() error {
			v, err := s.Hive().GetValue("app", "x")
			if err != nil || v.Uint32 != 7 || s.Hive().Seq() < seq {
				return fmt.Errorf("value %+v seq %d: %v", v, s.Hive().Seq(), err)
			}
			return nil
		})
	}
	if _, err := svcs[1].Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.CreateKey("x")}}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower apply: %v", err)
	}
	if _, err := svcs[0].Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.CreateKey("Cluster/x")}}); !errors.Is(err, hive.ErrReserved) {
		t.Fatalf("client write to reserved: %v", err)
	}
	ms, _ := svcs[2].Members()
	if len(ms) != 3 {
		t.Fatalf("members %+v", ms)
	}
	// The leader goes; the other two elect one and keep taking writes.
	svcs[0].Close()
	l := leaderOf(t, svcs[1], svcs[2])
	if _, err := l.Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.SetValue("App", hive.Uint32Value("X", 8))}}); err != nil {
		t.Fatal(err)
	}
	// The old leader comes back and catches up.
	back := openSvc(t, filepath.Join(base, "0"), "n0")
	eventually(t, "catch up", func() error {
		v, err := back.Hive().GetValue("app", "x")
		if err != nil || v.Uint32 != 8 {
			return fmt.Errorf("value %+v: %v", v, err)
		}
		return nil
	})
}

// peerStore gives a node id a certificate of ca in a new data directory.
func peerStore(t *testing.T, ca *security.CA, nodeID string) *security.Store {
	t.Helper()
	st, err := security.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueNode(st.PublicKey(), nodeID, nodeID, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Install(ca.Cert.Raw, cert); err != nil {
		t.Fatal(err)
	}
	return st
}

func peerConfig(t *testing.T, st *security.Store) *tls.Config {
	t.Helper()
	cfg, err := st.Client()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestHandshakeRefusesOtherClusterAndGeneration(t *testing.T) {
	ca, err := security.NewCA("c1")
	if err != nil {
		t.Fatal(err)
	}
	me := PeerIdentity{ClusterID: "c1", Generation: 2, NodeID: "a"}
	sl, err := NewStreamLayer("127.0.0.1:0", peerStore(t, ca, "a"), func() PeerIdentity { return me }, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	go func() {
		for {
			c, err := sl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := sl.Addr().String()
	b := peerConfig(t, peerStore(t, ca, "b"))
	cases := []struct {
		peer   PeerIdentity
		reason string
	}{
		{PeerIdentity{ClusterID: "c2", Generation: 2, NodeID: "b"}, RefusedCluster},
		{PeerIdentity{ClusterID: "c1", Generation: 1, NodeID: "b"}, RefusedGeneration},
		{PeerIdentity{ClusterID: "c1", Generation: 3, NodeID: "b"}, RefusedGeneration},
	}
	for _, c := range cases {
		_, err := DialPeer(addr, time.Second, b, c.peer, nil)
		var re *RefusedError
		if !errors.As(err, &re) || re.Reason != c.reason || !errors.Is(err, ErrPeerRefused) {
			t.Errorf("%+v: got %v, want refusal %s", c.peer, err, c.reason)
		}
	}
	conn, err := DialPeer(addr, time.Second, b, PeerIdentity{ClusterID: "c1", Generation: 2, NodeID: "b"}, nil)
	if err != nil {
		t.Fatalf("same cluster and generation refused: %v", err)
	}
	conn.Close()

	// A peer claiming another node id than its certificate names is cut
	// off without an answer.
	if _, err := DialPeer(addr, time.Second, b, PeerIdentity{ClusterID: "c1", Generation: 2, NodeID: "a"}, nil); err == nil {
		t.Fatal("a peer posing as another node was admitted")
	}
	// A node of another authority (another cluster) dialling with its own
	// configuration refuses this node's certificate itself: the dialer's
	// check.
	other, err := security.NewCA("c2")
	if err != nil {
		t.Fatal(err)
	}
	foreign := peerConfig(t, peerStore(t, other, "b"))
	_, err = DialPeer(addr, time.Second, foreign, PeerIdentity{ClusterID: "c1", Generation: 2, NodeID: "b"}, nil)
	var re *RefusedError
	if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "TLS handshake") {
		t.Fatalf("a node of another authority: got %v, want a failed TLS handshake", err)
	}
	// The listener's check: the same node trusting this cluster's
	// authority, or checking nothing, passes its side of the handshake and
	// is cut off by the listener's alert before the cluster handshake.
	for name, cfg := range foreignDialers(t, ca.Cert, foreign) {
		if err := listenerAnswer(addr, cfg); !certificateRefused(err) {
			t.Fatalf("a node of another authority %s: got %v, want the listener's bad certificate alert", name, err)
		}
		if c, err := DialPeer(addr, time.Second, cfg, PeerIdentity{ClusterID: "c1", Generation: 2, NodeID: "b"}, nil); err == nil || errors.As(err, &re) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("a node of another authority %s: got %v, want no cluster handshake", name, err)
		}
	}
	// And a plain TCP client gets nothing either.
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Write([]byte(handshakeMagic + "\x00\x00\x00\x2a{\"cluster_id\":\"c1\",\"generation\":2,\"node_id\":\"b\"}"))
	plain.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(plain)
	if bytes.Contains(got, []byte(`"ok"`)) || bytes.Contains(got, []byte(`"reason"`)) {
		t.Fatalf("a plain TCP peer got a handshake reply: %q", got)
	}
}

// foreignDialers are TLS configurations presenting the certificate of
// foreign (a node of another cluster) that pass the dialer's own check of
// a node of ca's cluster: one trusts ca, the other checks nothing.
func foreignDialers(t *testing.T, ca *x509.Certificate, foreign *tls.Config) map[string]*tls.Config {
	t.Helper()
	return map[string]*tls.Config{
		"trusting this authority": security.ClientConfig(ca, &foreign.Certificates[0]),
		"checking nothing":        {InsecureSkipVerify: true, Certificates: foreign.Certificates},
	}
}

// listenerAnswer dials a peer listener presenting cfg's certificate and
// reads, sending nothing of the cluster handshake. In TLS 1.3 the listener
// checks the dialer's certificate once the dialer's side of the handshake
// is done, so its refusal is what the first read meets; a dialer that
// wrote first (DialPeer) could meet the closed connection instead.
func listenerAnswer(addr string, cfg *tls.Config) error {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * handshakeTimeout))
	if err := c.Handshake(); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	return err
}

// certificateRefused reports whether err is the other side's TLS alert
// refusing this side's certificate (not a local check, a dead listener
// or a cluster handshake refusal).
func certificateRefused(err error) bool {
	var op *net.OpError
	var re *RefusedError
	return errors.As(err, &op) && op.Op == "remote error" && strings.Contains(op.Err.Error(), "bad certificate") && !errors.As(err, &re)
}

// The peer listener of a running node refuses a node of another cluster
// however it dials: trusting this cluster's authority, its certificate
// naming a member, claiming the cluster's id at the same or a higher
// generation, it is cut off by a TLS alert, and the node's raft state,
// generation and membership stay as they were (a higher generation
// admitted would have moved the node's state aside).
func TestPeerRefusesAnotherClustersCertificate(t *testing.T) {
	base := t.TempDir()
	a := openSvc(t, filepath.Join(base, "a"), "a")
	b := openSvc(t, filepath.Join(base, "b"), "b")
	if err := a.Create(ctx(t), "foreign"); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, a)
	join(t, a, b)
	eventually(t, "b a voter", func() error {
		if st := b.Status(); !st.Voter || st.Applied < a.Status().Applied {
			return fmt.Errorf("b: %+v", st)
		}
		return nil
	})
	caCert, _, err := a.Credentials().Current()
	if err != nil {
		t.Fatal(err)
	}
	other, err := security.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	bid := b.Identity().NodeID
	foreign := peerConfig(t, peerStore(t, other, bid))
	me := a.Identity()
	addr := a.Status().RaftAddr
	snapshot := func() string {
		ms, err := a.Members()
		if err != nil {
			t.Fatal(err)
		}
		st := a.Status()
		return fmt.Sprintf("state %s leader %s generation %d configured %v in-configuration %v members %+v",
			st.RaftState, st.LeaderID, a.Identity().Generation, a.Identity().Configured(), a.inConfiguration(bid), ms)
	}
	before := snapshot()
	if !strings.Contains(before, "state Leader") || !strings.Contains(before, "in-configuration true") {
		t.Fatalf("before: %s", before)
	}
	// The listener answers the same dialer when its certificate is of the
	// cluster's authority: what refuses the foreign one is its certificate.
	st, err := security.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stranger := Member{ID: "6f1f4a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f", Name: "stranger", RaftAddr: "127.0.0.1:1"}
	caDER, cert, err := a.IssueCert(stranger, st.PublicKeyDER())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Install(caDER, cert); err != nil {
		t.Fatal(err)
	}
	var re *RefusedError
	if _, err := DialPeer(addr, 5*time.Second, peerConfig(t, st), PeerIdentity{ClusterID: me.ClusterID, Generation: me.Generation, NodeID: stranger.ID}, nil); !errors.As(err, &re) {
		t.Fatalf("a stranger with a certificate of the authority: %v, want a refusal in the cluster handshake", err)
	}
	for name, cfg := range foreignDialers(t, caCert, foreign) {
		if err := listenerAnswer(addr, cfg); !certificateRefused(err) {
			t.Fatalf("another cluster's node %s: %v, want the listener's bad certificate alert", name, err)
		}
		for _, gen := range []uint64{me.Generation, me.Generation + 1} {
			claim := PeerIdentity{ClusterID: me.ClusterID, Generation: gen, NodeID: bid, APIAddr: "127.0.0.1:9"}
			if c, err := DialPeer(addr, 5*time.Second, cfg, claim, nil); err == nil || errors.As(err, &re) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("another cluster's node %s posing as member b at generation %d: %v, want no cluster handshake", name, gen, err)
			}
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("another cluster's node changed the node:\n before %s\n after  %s", before, after)
	}
	if _, err := a.Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.SetValue("k", hive.Uint32Value("v", 1))}}); err != nil {
		t.Fatalf("the cluster after another cluster's node: %v", err)
	}
}

func TestStaleGenerationNodeCannotDisturbCluster(t *testing.T) {
	base := t.TempDir()
	a := openSvc(t, filepath.Join(base, "a"), "a")
	b := openSvc(t, filepath.Join(base, "b"), "b")
	c := openSvc(t, filepath.Join(base, "c"), "c")
	if err := a.Create(ctx(t), "gen"); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, a)
	join(t, a, b)
	join(t, a, c)
	eventually(t, "c caught up", func() error {
		if st := c.Status(); !st.Voter || st.Applied < a.Status().Applied {
			return fmt.Errorf("c: %+v", st)
		}
		return nil
	})
	// a and b move on to generation 2 while c is down; c comes back at 1.
	a.Close()
	b.Close()
	c.Close()
	for _, n := range []string{"a", "b"} {
		if _, err := noderegistry.Update(filepath.Join(base, n), func(i *noderegistry.Identity) error { i.Generation = 2; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	a = openSvc(t, filepath.Join(base, "a"), "a")
	b = openSvc(t, filepath.Join(base, "b"), "b")
	c2 := openSvc(t, filepath.Join(base, "c"), "c")
	l := leaderOf(t, a, b)
	seq, err := l.Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.SetValue("k", hive.Uint32Value("v", 1))}})
	if err != nil {
		t.Fatal(err)
	}
	// The stale node receives nothing and never leads; meeting the higher
	// generation, it moves its state aside, kept.
	eventually(t, "stale node moves its state aside", func() error {
		if c2.Identity().Configured() {
			return fmt.Errorf("c still in the cluster at generation %d", c2.Identity().Generation)
		}
		return nil
	})
	if got := c2.Hive().Seq(); got >= seq {
		t.Fatalf("stale-generation node received entries: seq %d", got)
	}
	if matches, _ := filepath.Glob(filepath.Join(base, "c", "aside", "*-stale-generation", hive.FileName)); len(matches) != 1 {
		t.Fatalf("stale state not kept aside: %v", matches)
	}
	if _, err := l.Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.SetValue("k", hive.Uint32Value("v", 2))}}); err != nil {
		t.Fatal(err)
	}
}

func TestEvictedNodeIsRefused(t *testing.T) {
	base := t.TempDir()
	a := openSvc(t, filepath.Join(base, "a"), "a")
	b := openSvc(t, filepath.Join(base, "b"), "b")
	c := openSvc(t, filepath.Join(base, "c"), "c")
	if err := a.Create(ctx(t), "ev"); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, a)
	join(t, a, b)
	join(t, a, c)
	cid := c.Identity().NodeID
	eventually(t, "c caught up", func() error {
		if st := c.Status(); !st.Voter || st.Applied < a.Status().Applied {
			return fmt.Errorf("c: %+v", st)
		}
		return nil
	})
	c.Close()
	// Leadership may move between a and b on a loaded machine: the
	// eviction goes to whichever leads (refused elsewhere, it changed
	// nothing there).
	var l *Service
	eventually(t, "c evicted", func() error {
		l = leaderOf(t, a, b)
		err := l.RemoveMember(ctx(t), "C")
		if errors.Is(err, ErrNotLeader) {
			return err
		}
		if err != nil {
			t.Fatal(err)
		}
		return nil
	})
	if _, err := l.Member(cid); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("evicted still a member: %v", err)
	}
	// It cannot be added again under the same identity.
	if err := l.AddMember(ctx(t), Member{ID: cid, Name: "c", RaftAddr: "127.0.0.1:1"}); !errors.Is(err, ErrEvicted) {
		t.Fatalf("re-add evicted: %v", err)
	}
	// Restarted, it is refused by the members and moves its data aside.
	c2 := openSvc(t, filepath.Join(base, "c"), "c")
	eventually(t, "evicted node forgets its cluster", func() error {
		if c2.Identity().Configured() {
			return fmt.Errorf("still configured: %+v", c2.Status())
		}
		return nil
	})
	matches, _ := filepath.Glob(filepath.Join(base, "c", "aside", "*-evicted", hive.FileName))
	if len(matches) != 1 {
		t.Fatalf("moved-aside data: %v", matches)
	}
}

func TestSnapshotsBringLaggingAndDamagedNodesForward(t *testing.T) {
	base := t.TempDir()
	open := func(name string) *Service {
		cfg := fastConfig(t, filepath.Join(base, name), name)
		cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotInterval = 8, 4, 100*time.Millisecond
		s, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b, c := open("a"), open("b"), open("c")
	if err := a.Create(ctx(t), "snap"); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, a)
	join(t, a, b)
	join(t, a, c)
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := a.Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.SetValue(fmt.Sprintf("k/%d", i), hive.Uint32Value("v", uint32(i)))}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	hasAll := func(s *Service, n int) func() error {
		return func() error {
			for i := range n {
				if v, err := s.Hive().GetValue(fmt.Sprintf("k/%d", i), "v"); err != nil || v.Uint32 != uint32(i) {
					return fmt.Errorf("k/%d: %+v %v", i, v, err)
				}
			}
			return nil
		}
	}
	// c misses many entries while down: the leader compacts them away and
	// must send c a snapshot, which replaces c's hive.
	c.Close()
	write(0, 60)
	eventually(t, "leader snapshot", func() error {
		if list, _ := filepath.Glob(filepath.Join(base, "a", "raft", "snapshots", "*")); len(list) == 0 {
			return errors.New("no snapshot yet")
		}
		return nil
	})
	write(60, 80)
	c = open("c")
	eventually(t, "c catches up through a snapshot", hasAll(c, 80))

	// c's hive falls behind its own stored snapshot (as after a crash
	// between storing an installed snapshot and applying it): at start it
	// restores from the snapshot and replays the rest.
	eventually(t, "c snapshot", func() error {
		if list, _ := filepath.Glob(filepath.Join(base, "c", "raft", "snapshots", "*")); len(list) == 0 {
			return errors.New("no snapshot on c yet")
		}
		return nil
	})
	c.Close()
	empty, err := hive.Open(filepath.Join(base, "empty"), hive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := empty.Snapshot()
	h, err := hive.Open(filepath.Join(base, "c", hive.FileName), hive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Replace(pipeSnapshot(snap)); err != nil {
		t.Fatal(err)
	}
	snap.Close()
	empty.Close()
	h.Close()
	c = open("c")
	eventually(t, "c restored from its snapshot", hasAll(c, 80))
}

func pipeSnapshot(s *hive.Snapshot) io.Reader {
	pr, pw := io.Pipe()
	go func() { _, err := s.WriteTo(pw); pw.CloseWithError(err) }()
	return pr
}

// A move aside interrupted by a crash is finished at the next start.
func TestInterruptedMoveAsideIsFinishedAtStart(t *testing.T) {
	base := t.TempDir()
	a := openSvc(t, filepath.Join(base, "a"), "a")
	if err := a.Create(ctx(t), "f"); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, a)
	if _, err := a.Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.CreateKey("Kept")}}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	// The crash came right after the intent was recorded.
	dir := filepath.Join(base, "a")
	aside := filepath.Join(dir, "aside", "x-stale-generation")
	if err := os.WriteFile(filepath.Join(dir, forgetMarker), []byte(aside), 0o600); err != nil {
		t.Fatal(err)
	}
	a2 := openSvc(t, dir, "a")
	if a2.Identity().Configured() {
		t.Fatal("node still in its cluster after the interrupted move aside")
	}
	if _, err := a2.Hive().Get("Kept"); err == nil {
		t.Fatal("the old database is still in place")
	}
	h, err := hive.OpenReadOnly(filepath.Join(aside, hive.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Get("Kept"); err != nil {
		t.Fatalf("moved-aside database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(aside, "raft")); err != nil {
		t.Fatal("raft state not moved aside")
	}
}

// A certificate of the cluster's authority does not make a member: a node
// holding one for an id the cluster does not know (given to join, say) is
// refused, and its claim of a higher generation moves nothing aside.
func TestStrangerWithACertificateIsRefused(t *testing.T) {
	base := t.TempDir()
	a := openSvc(t, filepath.Join(base, "a"), "a")
	b := openSvc(t, filepath.Join(base, "b"), "b")
	if err := a.Create(ctx(t), "strangers"); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, a)
	join(t, a, b)
	st, err := security.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stranger := Member{ID: "6f1f4a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f", Name: "stranger", RaftAddr: "127.0.0.1:1"}
	caDER, cert, err := a.IssueCert(stranger, st.PublicKeyDER())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Install(caDER, cert); err != nil {
		t.Fatal(err)
	}
	me := a.Identity()
	_, err = DialPeer(a.Status().RaftAddr, 5*time.Second, peerConfig(t, st),
		PeerIdentity{ClusterID: me.ClusterID, Generation: me.Generation + 1, NodeID: stranger.ID, APIAddr: "127.0.0.1:9"}, nil)
	var re *RefusedError
	if !errors.As(err, &re) || re.Reason != RefusedStranger {
		t.Fatalf("a stranger claiming a higher generation: %v, want refusal %s", err, RefusedStranger)
	}
	if !a.Identity().Configured() || a.Identity().Generation != me.Generation {
		t.Fatalf("the stranger moved the node's state: %+v", a.Identity())
	}
	if _, err := a.Apply(ctx(t), hive.Txn{Ops: []hive.Op{hive.SetValue("k", hive.Uint32Value("v", 1))}}); err != nil {
		t.Fatalf("the cluster after the stranger: %v", err)
	}
}
