package backup

import (
	"errors"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/wire"
)

func TestSelect(t *testing.T) {
	info := wire.ClusterInfo{Name: "c", Commit: 1000, Nodes: []wire.NodeInfo{
		{ID: "1", Name: "leader", State: wire.NodeUp, Leader: true, Applied: 1000},
		{ID: "2", Name: "down", State: wire.NodeDown, Why: "no answer"},
		{ID: "3", Name: "paused", State: wire.NodePaused, Applied: 1000},
		{ID: "4", Name: "lagging", State: wire.NodeUp, Applied: 500},
		{ID: "5", Name: "follower", State: wire.NodeUp, Applied: 990},
		{ID: "6", Name: "joining", State: wire.NodeJoining, Applied: 0},
	}}
	cases := []struct {
		name, local, override, want, err string
	}{
		{name: "follower over leader", want: "follower"},
		{name: "local first", local: "1", want: "leader"},
		{name: "local does not qualify", local: "4", want: "follower"},
		{name: "override accepted", override: "LEADER", want: "leader"},
		{name: "override by id", override: "5", want: "follower"},
		{name: "override down", override: "down", err: "Down"},
		{name: "override paused", override: "paused", err: "Paused"},
		{name: "override lagging", override: "lagging", err: "lagging"},
		{name: "override joining", override: "joining", err: "Joining"},
		{name: "override unknown", override: "ghost", err: "no node"},
	}
	for _, c := range cases {
		ch, err := Select(info, c.local, c.override, DefaultMaxLag, nil)
		if c.err != "" {
			if !errors.Is(err, ErrNodeRefused) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: got %v, want refusal naming %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || ch.Node.Name != c.want || ch.Why == "" {
			t.Errorf("%s: got %+v %v, want %s", c.name, ch, err, c.want)
		}
	}
	ch, _ := Select(info, "", "", DefaultMaxLag, nil)
	skipped := map[string]string{}
	for _, s := range ch.Skipped {
		skipped[s.Node] = s.Why
	}
	for _, n := range []string{"down", "paused", "lagging", "joining"} {
		if skipped[n] == "" {
			t.Errorf("%s not reported skipped: %+v", n, ch.Skipped)
		}
	}
	// Only the leader left: it is chosen, and says why.
	ch, err := Select(info, "", "", DefaultMaxLag, map[string]bool{"5": true})
	if err != nil || ch.Node.Name != "leader" || !strings.Contains(ch.Why, "no follower") {
		t.Fatalf("leader fallback: %+v %v", ch, err)
	}
	// Nothing qualifies: the error names every node and why.
	_, err = Select(info, "", "", DefaultMaxLag, map[string]bool{"1": true, "5": true})
	if !errors.Is(err, ErrNoNode) || !strings.Contains(err.Error(), "paused: Paused") {
		t.Fatalf("none: %v", err)
	}
}
