package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// guardedTransport is hashicorp/raft's network transport with its
// heartbeat fast path fenced off at shutdown. The transport calls raft's
// heartbeat handler on its own connection goroutines, outside raft's run
// loop: one that passed raft's shutdown check can still be saving a new
// term when the service closes the log store, and raft panics on that
// failed save. Closing the transport waits for the heartbeats under way,
// and refuses the later ones, so the store is closed after the last.
type guardedTransport struct {
	*raft.NetworkTransport
	fence heartbeatFence
}

// SetHeartbeatHandler hands raft's handler to the transport behind the
// fence; a nil handler sends heartbeats through the consumer channel.
func (t *guardedTransport) SetHeartbeatHandler(fn func(rpc raft.RPC)) {
	if fn != nil {
		fn = t.fence.wrap(fn)
	}
	t.NetworkTransport.SetHeartbeatHandler(fn)
}

// Close closes the fence, then the transport.
func (t *guardedTransport) Close() error {
	t.fence.close()
	return t.NetworkTransport.Close()
}

// heartbeatFence lets handlers run until it is closed; closing waits for
// the ones running.
type heartbeatFence struct {
	mu     sync.RWMutex
	closed bool
}

// wrap returns fn behind the fence: once the fence is closed, an RPC is
// answered with raft.ErrTransportShutdown instead.
func (f *heartbeatFence) wrap(fn func(rpc raft.RPC)) func(rpc raft.RPC) {
	return func(rpc raft.RPC) {
		f.mu.RLock()
		defer f.mu.RUnlock()
		if f.closed {
			rpc.Respond(nil, raft.ErrTransportShutdown)
			return
		}
		fn(rpc)
	}
}

// close returns once no wrapped handler runs, and none will.
func (f *heartbeatFence) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}
