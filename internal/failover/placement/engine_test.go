package placement

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

// memStore is the cluster's records in memory, with a settable term.
type memStore struct {
	mu       sync.Mutex
	term     uint64
	recs     map[string]string
	leaseMax time.Duration
	groups   []roles.Group
	index    uint64        // raised by every committed swap
	gate     chan struct{} // when set, a swap waits for it
}

func (m *memStore) ReadyTerm() uint64 { m.mu.Lock(); defer m.mu.Unlock(); return m.term }
func (m *memStore) ReadIndex(context.Context) (uint64, error) {
	if m.ReadyTerm() == 0 {
		return 0, errors.New("not leader")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.index, nil
}
func (m *memStore) Groups() ([]roles.Group, map[string]roles.Resource, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.groups, map[string]roles.Resource{"r": {Name: "r", Type: "exec"}}, nil
}
func (m *memStore) Nodes() ([]Member, error) {
	return []Member{{ID: "a", Name: "a"}, {ID: "b", Name: "b"}}, nil
}
func (m *memStore) IsMember(id string) bool { return id == "a" || id == "b" }
func (m *memStore) Placements() (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for k, v := range m.recs {
		out[k] = v
	}
	return out, nil
}
func (m *memStore) SwapPlacement(_ context.Context, g, old, next string) error {
	if m.gate != nil {
		<-m.gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.index++
	if m.recs[g] != old {
		return errors.New("changed")
	}
	if next == "" {
		delete(m.recs, g)
	} else {
		m.recs[g] = next
	}
	return nil
}
func (m *memStore) LeaseMax() (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leaseMax, nil
}
func (m *memStore) RaiseLeaseMax(_ context.Context, d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d > m.leaseMax {
		m.leaseMax = d
	}
	return nil
}

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newEngine(st *memStore, cfg Config) (*Engine, *clock) {
	c := &clock{t: t0}
	e := NewEngine(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	e.now = c.now
	return e, c
}

func owner(t *testing.T, st *memStore) Record {
	t.Helper()
	r, err := ParseRecord(st.recs["g"])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEngineMovesAGroupOnlyAfterTheLeaseExpired(t *testing.T) {
	g := roles.Group{Name: "g", Resources: []string{"r"}, PreferredOwners: []string{"a", "b"}, FailoverThreshold: 2, Wanted: roles.WantedOnline}
	g.Normalize()
	st := &memStore{term: 3, recs: map[string]string{}, groups: []roles.Group{g}}
	cfg := Config{Lease: 8 * time.Second, Margin: 3 * time.Second, Renew: time.Second}
	e, clk := newEngine(st, cfg)
	ctx := context.Background()
	renew := func(node string) {
		t.Helper()
		if _, err := e.Renew(ctx, NodeReport{Node: node, Groups: []GroupReport{{Group: "g", Epoch: owner(t, st).Epoch, State: RunOnline}}}); err != nil {
			t.Fatal(err)
		}
	}
	renew("a")
	renew("b")
	if st.leaseMax != cfg.Lease {
		t.Fatalf("lease not recorded before the first grant: %v", st.leaseMax)
	}
	// Not settled yet: nothing decided.
	e.Once(ctx)
	if len(st.recs) != 0 {
		t.Fatal("decided before every node could renew")
	}
	clk.t = clk.t.Add(settleRenewals * time.Second)
	renew("a")
	renew("b")
	e.Once(ctx)
	if r := owner(t, st); r.OwnerName != "a" || !r.Run {
		t.Fatalf("%+v", r)
	}
	// a goes silent; b keeps renewing. 7.9 s later a's lease holds still.
	last := clk.t
	for clk.t.Sub(last) < 7900*time.Millisecond {
		clk.t = clk.t.Add(500 * time.Millisecond)
		if clk.t.Sub(last) >= 7900*time.Millisecond {
			clk.t = last.Add(7900 * time.Millisecond)
		}
		renew("b")
		e.Once(ctx)
		if r := owner(t, st); r.OwnerName != "a" {
			t.Fatalf("moved %v after a's last renewal, before its lease of 8s expired: %+v", clk.t.Sub(last), r)
		}
	}
	clk.t = last.Add(8 * time.Second)
	renew("b")
	e.Once(ctx)
	if r := owner(t, st); r.OwnerName != "b" || !r.Run {
		t.Fatalf("not failed over once a's lease expired: %+v", r)
	}
}

// A new leader waits the longest recorded lease from when it began to
// lead before it takes any node's lease for expired; a released lease
// ends at once.
func TestNewLeaderWaitsTheRecordedLease(t *testing.T) {
	g := roles.Group{Name: "g", Resources: []string{"r"}, PreferredOwners: []string{"a", "b"}, FailoverThreshold: 2, Wanted: roles.WantedOnline}
	g.Normalize()
	rec := Record{Epoch: 4, Owner: "a", OwnerName: "a", Run: true, State: StateOnline}
	st := &memStore{term: 5, recs: map[string]string{"g": rec.Encode()}, groups: []roles.Group{g}, leaseMax: 20 * time.Second}
	e, clk := newEngine(st, Config{Lease: 4 * time.Second, Margin: time.Second, Renew: 500 * time.Millisecond})
	ctx := context.Background()
	// The engine first hears of the term at t0+1s, its first renewal.
	for clk.t.Sub(t0) < 20*time.Second {
		clk.t = clk.t.Add(time.Second)
		if _, err := e.Renew(ctx, NodeReport{Node: "b"}); err != nil {
			t.Fatal(err)
		}
		e.Once(ctx)
		if r := owner(t, st); r.OwnerName != "a" {
			t.Fatalf("moved %v into the term, before the recorded lease of 20s: %+v", clk.t.Sub(t0), r)
		}
	}
	clk.t = t0.Add(21 * time.Second)
	e.Renew(ctx, NodeReport{Node: "b"})
	e.Once(ctx)
	if r := owner(t, st); r.OwnerName != "b" {
		t.Fatalf("not moved after the recorded lease: %+v", r)
	}

	// b releases its lease (its agent stops, having stopped the group):
	// the group moves back to a at once.
	e.Renew(ctx, NodeReport{Node: "a"})
	e.Renew(ctx, NodeReport{Node: "b", Release: true})
	e.Once(ctx)
	if r := owner(t, st); r.OwnerName != "a" {
		t.Fatalf("a released lease still held the group: %+v", r)
	}
}

func TestRenewRefusedOffTheLeaderAndToStrangers(t *testing.T) {
	st := &memStore{recs: map[string]string{}}
	e, _ := newEngine(st, DefaultConfig)
	if _, err := e.Renew(context.Background(), NodeReport{Node: "a"}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower granted: %v", err)
	}
	st.term = 1
	if _, err := e.Renew(context.Background(), NodeReport{Node: "stranger"}); !errors.Is(err, ErrNotMember) {
		t.Fatalf("stranger granted: %v", err)
	}
}

// A node whose lease this leader holds for expired is given a lease only
// once the decisions taken meanwhile (moving its groups away) are
// committed, with an index that covers them: it never acts on the older
// placement that still names it.
func TestAReturningNodeWaitsForTheMoveOfItsGroups(t *testing.T) {
	g := roles.Group{Name: "g", Resources: []string{"r"}, PreferredOwners: []string{"a", "b"}, FailoverThreshold: 2, Wanted: roles.WantedOnline}
	g.Normalize()
	rec := Record{Epoch: 4, Owner: "a", OwnerName: "a", Run: true, State: StateOnline}
	st := &memStore{term: 1, recs: map[string]string{"g": rec.Encode()}, groups: []roles.Group{g}}
	e, clk := newEngine(st, Config{Lease: 4 * time.Second, Margin: time.Second, Renew: 500 * time.Millisecond})
	ctx := context.Background()
	e.Renew(ctx, NodeReport{Node: "b"})
	clk.t = clk.t.Add(5 * time.Second) // a's lease (from the term's start) expired
	e.Renew(ctx, NodeReport{Node: "b"})
	st.gate = make(chan struct{})
	onceDone := make(chan struct{})
	go func() { e.Once(ctx); close(onceDone) }()
	// Once holds the table; a renews now.
	time.Sleep(50 * time.Millisecond)
	granted := make(chan Grant)
	go func() {
		gr, err := e.Renew(ctx, NodeReport{Node: "a"})
		if err != nil {
			t.Error(err)
		}
		granted <- gr
	}()
	select {
	case <-granted:
		t.Fatal("a returning node was granted its lease while the move of its group was not committed")
	case <-time.After(100 * time.Millisecond):
	}
	close(st.gate)
	<-onceDone
	gr := <-granted
	if r := owner(t, st); r.OwnerName != "b" {
		t.Fatalf("not moved: %+v", r)
	}
	if gr.Index < st.index {
		t.Fatalf("grant index %d does not cover the move (index %d)", gr.Index, st.index)
	}
}
