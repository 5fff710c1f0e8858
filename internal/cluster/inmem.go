package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// raftTransport is what the service keeps of its consensus transport:
// raft's Transport, and closing it when raft stops.
type raftTransport interface {
	raft.Transport
	Close() error
}

// InmemNetwork carries consensus traffic between services of one process
// in memory, over hashicorp/raft's InmemTransport, instead of the TLS
// stream layer: the cluster package's own tests use it so that most of
// them run without sockets, handshakes or certificates on the consensus
// path. A service's RaftBind is then its address on the network.
//
// The peer handshake (generation fencing, refusals of evicted nodes and
// strangers) is the stream layer's: it is not in play here, and the tests
// that prove it use the real transport.
type InmemNetwork struct {
	mu    sync.Mutex
	peers map[raft.ServerAddress]*raft.InmemTransport
}

// NewInmemNetwork returns an empty network.
func NewInmemNetwork() *InmemNetwork {
	return &InmemNetwork{peers: map[raft.ServerAddress]*raft.InmemTransport{}}
}

// transport gives addr a new transport connected both ways to every other
// one on the network; one left by a stopped service at addr is replaced.
func (n *InmemNetwork) transport(addr string) raftTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, t := raft.NewInmemTransport(raft.ServerAddress(addr))
	n.peers[a] = t
	for pa, p := range n.peers {
		if pa == a {
			continue
		}
		t.Connect(pa, p)
		p.Connect(a, t)
	}
	return inmemTransport{t, n}
}

// leave takes t off the network: its peers' calls to it fail at once, as
// a refused connection does, instead of waiting out their timeout.
func (n *InmemNetwork) leave(t *raft.InmemTransport) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := t.LocalAddr()
	if n.peers[a] != t {
		return // a restarted service holds the address now
	}
	delete(n.peers, a)
	for _, p := range n.peers {
		p.Disconnect(a)
	}
}

// inmemTransport is a service's transport on an InmemNetwork; closing it
// leaves the network.
type inmemTransport struct {
	*raft.InmemTransport
	net *InmemNetwork
}

func (t inmemTransport) Close() error {
	t.net.leave(t.InmemTransport)
	return t.InmemTransport.Close()
}
