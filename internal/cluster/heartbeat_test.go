package cluster

import (
	"errors"
	"runtime"
	"testing"

	"github.com/hashicorp/raft"
)

// TestTheHeartbeatFenceWaitsForTheRunningHandler: closing the fence does
// not return while a heartbeat is being handled (it may be saving a term
// to the store about to be closed), and a heartbeat after it is refused
// without reaching raft.
func TestTheHeartbeatFenceWaitsForTheRunningHandler(t *testing.T) {
	var f heartbeatFence
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	h := f.wrap(func(rpc raft.RPC) {
		calls++
		close(entered)
		<-release
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
	})
	firstResp := make(chan raft.RPCResponse, 1)
	go h(raft.RPC{RespChan: firstResp})
	<-entered
	closed := make(chan struct{})
	go func() { f.close(); close(closed) }()
	// Each look is a chance for close to have returned too early; none
	// of them is a deadline.
	for i := 0; i < 1000; i++ {
		select {
		case <-closed:
			t.Fatal("the fence closed while a heartbeat was being handled")
		default:
			runtime.Gosched()
		}
	}
	close(release)
	<-closed
	if r := <-firstResp; r.Error != nil {
		t.Fatalf("the heartbeat under way was answered with %v", r.Error)
	}
	laterResp := make(chan raft.RPCResponse, 1)
	h(raft.RPC{RespChan: laterResp})
	if r := <-laterResp; !errors.Is(r.Error, raft.ErrTransportShutdown) {
		t.Fatalf("a heartbeat after close was answered with %v, want %v", r.Error, raft.ErrTransportShutdown)
	}
	if calls != 1 {
		t.Fatalf("raft's handler ran %d times, want 1", calls)
	}
}
