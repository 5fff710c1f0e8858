package placement

import (
	"context"
	"testing"
	"time"
)

// The leader says of an owner that stopped renewing that it is unreachable
// and when its lease ends, from its last renewal; a new leader counts from
// when it began to lead.
func TestLeaseOfSaysUnreachableAndWhenItEnds(t *testing.T) {
	st := &memStore{term: 3, recs: map[string]string{}}
	cfg := Config{Lease: 8 * time.Second, Margin: 3 * time.Second, Renew: time.Second}
	e, clk := newEngine(st, cfg)
	if _, err := e.Renew(context.Background(), NodeReport{Node: "a"}); err != nil {
		t.Fatal(err)
	}
	heard := clk.t
	if l, ok := e.LeaseOf("a"); !ok || l.Unreachable || !l.Ends.Equal(heard.Add(8*time.Second)) || !l.LastHeard.Equal(heard) {
		t.Fatalf("just renewed: %+v %v", l, ok)
	}
	clk.t = heard.Add(2500 * time.Millisecond)
	if l, _ := e.LeaseOf("a"); !l.Unreachable || !l.Ends.Equal(heard.Add(8*time.Second)) {
		t.Fatalf("silent 2.5 s: %+v, want unreachable, ending 8 s after its last renewal", l)
	}
	// b never renewed with this leader, which leads since heard.
	if l, _ := e.LeaseOf("b"); !l.Unreachable || !l.LastHeard.IsZero() || !l.Ends.Equal(heard.Add(8*time.Second)) {
		t.Fatalf("never heard: %+v", l)
	}
	st.term = 0
	if _, ok := e.LeaseOf("a"); ok {
		t.Fatal("a follower answered for the leases")
	}
}
