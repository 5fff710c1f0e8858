package cluster

import (
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/hashicorp/raft"
)

// handshakeMagic opens every peer connection; the digit is the protocol version.
const handshakeMagic = "CKPEER1\n"

// handshakeTimeout bounds each side's handshake.
const handshakeTimeout = 5 * time.Second

// ErrPeerRefused is returned by Dial when the peer refuses the handshake,
// and wraps the peer's reason.
var ErrPeerRefused = errors.New("peer refused connection")

// Refusal reasons a peer sends back; the dialer branches on RefusedEvicted.
const (
	RefusedCluster    = "cluster-id"
	RefusedGeneration = "generation"
	RefusedEvicted    = "evicted"
	RefusedNotMember  = "not-configured"
	RefusedStranger   = "not-member"
)

// PeerIdentity is what each side of a peer connection presents.
type PeerIdentity struct {
	ClusterID  string `json:"cluster_id"`
	Generation uint64 `json:"generation"`
	NodeID     string `json:"node_id"`
	// APIAddr is where the node's API answers: a node refused for its
	// lower generation rejoins there.
	APIAddr string `json:"api_addr,omitempty"`
}

type handshakeReply struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// The acceptor's identity, so a refused dialer learns whom it met.
	Peer PeerIdentity `json:"peer"`
}

// RefusedError is the peer's refusal, with its reason code.
type RefusedError struct {
	Peer   string
	Reason string
	Detail string
	// Them is the refusing peer's identity.
	Them PeerIdentity
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("peer %s refused connection (%s): %s", e.Peer, e.Reason, e.Detail)
}

func (e *RefusedError) Unwrap() error { return ErrPeerRefused }

// StreamLayer is raft's stream layer over mutual TLS with the cluster
// handshake: both sides present a certificate of the cluster's authority
// (whose node id must be the one the peer claims), then every connection starts with the dialer's cluster id, generation and node
// id, and the acceptor refuses a peer whose cluster id or generation differ
// from its own, or which was evicted. Peers of different generations thus
// never exchange consensus traffic.
type StreamLayer struct {
	ln        net.Listener
	creds     *security.Store
	advertise net.Addr
	self      func() PeerIdentity
	// admit returns a refusal reason code and detail, or "" to admit.
	admit func(PeerIdentity) (string, string)
	// refused is told of a refusal a peer sent this node.
	refused func(*RefusedError)
	// higher is told of a peer of this node's cluster at a higher generation.
	higher func(PeerIdentity)
	log    *slog.Logger

	conns     chan net.Conn
	closeOnce sync.Once
	closed    chan struct{}
}

// NewStreamLayer listens on bind. self is read at every connection, so a
// change of generation takes effect at once.
func NewStreamLayer(bind string, creds *security.Store, self func() PeerIdentity, admit func(PeerIdentity) (string, string), refused func(*RefusedError), log *slog.Logger) (*StreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen for peers on %s: %w", bind, err)
	}
	s := &StreamLayer{ln: ln, creds: creds, advertise: ln.Addr(), self: self, admit: admit, refused: refused, log: log,
		conns: make(chan net.Conn), closed: make(chan struct{})}
	go s.acceptLoop()
	return s, nil
}

func (s *StreamLayer) acceptLoop() {
	backoff := 5 * time.Millisecond
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			// A transient failure (out of file descriptors, say) must not
			// leave the node deaf to its peers: back off and go on.
			s.log.Warn("accept peer connection", "err", err, "retry_in", backoff)
			select {
			case <-s.closed:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		go s.serveHandshake(c)
	}
}

func (s *StreamLayer) serveHandshake(raw net.Conn) {
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	c := tls.Server(raw, s.creds.PeerServer())
	var peer PeerIdentity
	reply := handshakeReply{OK: true}
	err := c.Handshake()
	if err == nil {
		err = readHandshake(c, &peer)
	}
	if err != nil {
		s.log.Warn("peer handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	st := c.ConnectionState()
	if certID := security.PeerNodeID(&st); certID != peer.NodeID {
		s.log.Warn("refused peer", "remote", raw.RemoteAddr().String(), "node", peer.NodeID, "reason", "certificate",
			"detail", fmt.Sprintf("claims node %s, its certificate names %s", peer.NodeID, certID))
		c.Close()
		return
	}
	if reason, detail := s.check(peer); reason != "" {
		reply = handshakeReply{Reason: reason, Detail: detail, Peer: s.self()}
		s.log.Warn("refused peer", "remote", c.RemoteAddr().String(), "node", peer.NodeID, "reason", reason, "detail", detail)
	}
	if err := writeFrame(c, reply); err != nil || !reply.OK {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	select {
	case s.conns <- c:
	case <-s.closed:
		c.Close()
	}
}

func (s *StreamLayer) check(peer PeerIdentity) (string, string) {
	me := s.self()
	switch {
	case me.ClusterID == "":
		return RefusedNotMember, "this node is not a member of any cluster"
	case peer.ClusterID != me.ClusterID:
		return RefusedCluster, fmt.Sprintf("peer belongs to cluster %s, this node to %s", peer.ClusterID, me.ClusterID)
	}
	// Who the peer is comes first: only a member may make this node act
	// on a higher generation (move its state aside).
	if s.admit != nil {
		if reason, detail := s.admit(peer); reason != "" {
			return reason, detail
		}
	}
	if peer.Generation != me.Generation {
		if peer.Generation > me.Generation && s.higher != nil {
			s.higher(peer)
		}
		return RefusedGeneration, fmt.Sprintf("peer is at generation %d, this node at %d", peer.Generation, me.Generation)
	}
	return "", ""
}

// Accept returns the next connection that passed the handshake.
func (s *StreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close stops listening.
func (s *StreamLayer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		err = s.ln.Close()
	})
	return err
}

// Addr is the listening address.
func (s *StreamLayer) Addr() net.Addr { return s.advertise }

// Dial connects to a peer and runs the handshake; a refusal is a *RefusedError.
func (s *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	cfg, err := s.creds.Client()
	if err != nil {
		return nil, fmt.Errorf("dial peer %s: %w", address, err)
	}
	return DialPeer(string(address), timeout, cfg, s.self(), s.refused)
}

// DialPeer opens a peer connection over TLS (cfg) presenting me.
func DialPeer(address string, timeout time.Duration, cfg *tls.Config, me PeerIdentity, refused func(*RefusedError)) (net.Conn, error) {
	raw, err := net.DialTimeout("tcp", address, timeout)
	if err != nil {
		return nil, err
	}
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with peer %s: %w", address, err)
	}
	if _, err := io.WriteString(c, handshakeMagic); err != nil {
		c.Close()
		return nil, fmt.Errorf("handshake with %s: %w", address, err)
	}
	if err := writeFrame(c, me); err != nil {
		c.Close()
		return nil, fmt.Errorf("handshake with %s: %w", address, err)
	}
	var reply handshakeReply
	if err := readFrame(c, &reply); err != nil {
		c.Close()
		return nil, fmt.Errorf("handshake with %s: %w", address, err)
	}
	if !reply.OK {
		c.Close()
		e := &RefusedError{Peer: address, Reason: reply.Reason, Detail: reply.Detail, Them: reply.Peer}
		if refused != nil {
			refused(e)
		}
		return nil, e
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func readHandshake(r io.Reader, peer *PeerIdentity) error {
	magic := make([]byte, len(handshakeMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return err
	}
	if string(magic) != handshakeMagic {
		return fmt.Errorf("not a clusterkeep peer (bad magic %q)", magic)
	}
	return readFrame(r, peer)
}

// maxFrame bounds a handshake frame.
const maxFrame = 4096

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	_, err = w.Write(append(buf, b...))
	return err
}

func readFrame(r io.Reader, v any) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxFrame {
		return fmt.Errorf("handshake frame of %d bytes", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
