package cluster

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A join is recorded until it is done; a join asked of a cluster at a
// higher generation than the node's own state is no retried join: the
// node must set that state aside first (its raft does, as it meets the
// restored generation), and the join is refused until then.
func TestAJoinIsRecordedAndAStaleStateIsNoRetriedJoin(t *testing.T) {
	s := openSvc(t, filepath.Join(t.TempDir(), "a"), "a")
	if got := s.PendingJoin(); got != nil {
		t.Fatalf("a new node has a pending join: %v", got)
	}
	addrs := []string{"10.0.0.1:7000", "10.0.0.2:7000"}
	if err := s.RecordJoin(addrs); err != nil {
		t.Fatal(err)
	}
	if got := s.PendingJoin(); !slices.Equal(got, addrs) {
		t.Fatalf("pending join %v, want %v", got, addrs)
	}
	if err := s.JoinDone(); err != nil {
		t.Fatal(err)
	}
	if got := s.PendingJoin(); got != nil {
		t.Fatalf("a done join is still pending: %v", got)
	}

	if err := s.Create(ctx(t), "gen"); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, s)
	info, err := s.JoinInfo()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PrepareJoin(info); err != nil {
		t.Fatalf("a retried join of the node's own generation: %v", err)
	}
	info.Generation++
	if _, err := s.PrepareJoin(info); err == nil || !strings.Contains(err.Error(), "set aside first") {
		t.Fatalf("a join of a higher generation of the node's own cluster: %v", err)
	}
}
