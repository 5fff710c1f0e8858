package backup

import (
	"fmt"
	"sort"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// DefaultMaxLag is how many consensus entries a node may trail the
// cluster's commit index and still count as caught up.
const DefaultMaxLag = 100

// Skip is a node selection passed over, and why.
type Skip struct {
	Node string `json:"node"`
	Why  string `json:"why"`
}

// Choice is the node selected for a backup, and why.
type Choice struct {
	Node    wire.NodeInfo `json:"node"`
	Why     string        `json:"why"`
	Skipped []Skip        `json:"skipped,omitempty"`
}

// disqualified says why n cannot take a backup, or "".
func disqualified(info wire.ClusterInfo, n wire.NodeInfo, maxLag uint64) string {
	switch n.State {
	case wire.NodeUp:
	case wire.NodePaused:
		return "Paused"
	default:
		why := string(n.State)
		if n.Why != "" {
			why += ": " + n.Why
		}
		return why
	}
	if info.Commit > n.Applied && info.Commit-n.Applied > maxLag {
		return fmt.Sprintf("lagging: applied %d, %d entries behind the commit index %d", n.Applied, info.Commit-n.Applied, info.Commit)
	}
	return ""
}

// Select picks the node to back up: one that is Up, not paused and caught
// up with the commit index; the local node if it qualifies, else a
// follower, else the leader. override (a node name or id) is taken if it
// qualifies and refused, with its reason, if not. exclude lists nodes
// that failed during this backup.
func Select(info wire.ClusterInfo, localID, override string, maxLag uint64, exclude map[string]bool) (Choice, error) {
	var ok []wire.NodeInfo
	var skips []Skip
	for _, n := range info.Nodes {
		if exclude[n.ID] {
			skips = append(skips, Skip{n.Name, "failed during this backup"})
			continue
		}
		if why := disqualified(info, n, maxLag); why != "" {
			skips = append(skips, Skip{n.Name, why})
			continue
		}
		ok = append(ok, n)
	}
	if override != "" {
		for _, n := range info.Nodes {
			if !strings.EqualFold(n.Name, override) && n.ID != override {
				continue
			}
			for _, s := range skips {
				if s.Node == n.Name {
					return Choice{}, fmt.Errorf("%w: node %s: %s", ErrNodeRefused, n.Name, s.Why)
				}
			}
			return Choice{Node: n, Why: "asked for with --node; it is Up and caught up", Skipped: skips}, nil
		}
		var names []string
		for _, n := range info.Nodes {
			names = append(names, n.Name)
		}
		return Choice{}, fmt.Errorf("%w: no node %q in cluster %s (nodes: %s)", ErrNodeRefused, override, info.Name, strings.Join(names, ", "))
	}
	if len(ok) == 0 {
		var why []string
		for _, s := range skips {
			why = append(why, s.Node+": "+s.Why)
		}
		return Choice{}, fmt.Errorf("%w in cluster %s (%s)", ErrNoNode, info.Name, strings.Join(why, "; "))
	}
	for _, n := range ok {
		if n.ID == localID {
			return Choice{Node: n, Why: "the local node: Up and caught up", Skipped: skips}, nil
		}
	}
	sort.SliceStable(ok, func(i, j int) bool {
		if ok[i].Leader != ok[j].Leader {
			return !ok[i].Leader
		}
		return ok[i].Applied > ok[j].Applied
	})
	n := ok[0]
	why := "a follower: Up and caught up (followers are preferred to spare the leader)"
	if n.Leader {
		why = "the leader: no follower qualifies"
	}
	if localID != "" {
		for _, s := range skips {
			if strings.EqualFold(s.Node, localName(info, localID)) {
				why += "; the local node does not qualify: " + s.Why
			}
		}
	}
	return Choice{Node: n, Why: why, Skipped: skips}, nil
}

func localName(info wire.ClusterInfo, id string) string {
	for _, n := range info.Nodes {
		if n.ID == id {
			return n.Name
		}
	}
	return ""
}
