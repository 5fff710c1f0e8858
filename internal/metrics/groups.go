package metrics

import (
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
	"github.com/prometheus/client_golang/prometheus"
)

// GroupSource reads the groups' configuration and their placement records
// from this node's hive (*cluster.Service is one). The records are
// replicated, so every node reports the same figures, leader or not, as
// of what its hive applied.
type GroupSource interface {
	Roles() (reserved.Roles, error)
	Placements() (map[string]string, error)
}

// groupStates are the states group_state labels, one series each.
var groupStates = []string{placement.StateOnline, placement.StatePending, placement.StateOffline, placement.StateFailed}

// groupCollector reports every configured group from its placement record.
//
// It exports no failover counter: the record keeps only the failovers
// counted against the threshold (those within the period, pruned at the
// next failover, cleared by `group online` after a hold), so no count of
// every failover can be read from it, and a tally kept by this collector
// would miss the failovers cleared between two scrapes and differ from
// node to node. It exports the failovers in the period (a gauge) and the
// time of the last one: changes() over that timestamp counts failovers.
type groupCollector struct {
	src GroupSource

	state, owner, wanted, held, failovers, threshold, period, lastFailover, lastFailure *prometheus.Desc
}

func newGroupCollector(src GroupSource) *groupCollector {
	return &groupCollector{src: src,
		state:        desc("group_state", "The group's state as its placement record says: 1 for the current one (Online, Pending, Offline, Failed).", "group", "state"),
		owner:        desc("group_owner_info", "The node the group's placement record names as its owner (value 1; none while it runs nowhere).", "group", "node"),
		wanted:       desc("group_wanted_online", "1 when the operator wants the group online, 0 when offline.", "group"),
		held:         desc("group_held", "1 when the group is held offline after reaching its failover threshold, until `group online`.", "group"),
		failovers:    desc("group_failovers", "Failovers within the group's current failover period, counted against its threshold (a gauge: it falls as they age out).", "group"),
		threshold:    desc("group_failover_threshold", "Failovers the group may make within its failover period (0: no automatic failover).", "group"),
		period:       desc("group_failover_period_seconds", "The group's failover period.", "group"),
		lastFailover: desc("group_last_failover_timestamp_seconds", "When the last failover the group's record keeps happened (Unix time; none when it keeps none).", "group"),
		lastFailure:  desc("group_last_failure_timestamp_seconds", "When the group last failed (Unix time).", "group"),
	}
}

func (c *groupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.owner, c.wanted, c.held, c.failovers, c.threshold, c.period, c.lastFailover, c.lastFailure} {
		ch <- d
	}
}

func (c *groupCollector) Collect(ch chan<- prometheus.Metric) {
	rr, err := c.src.Roles()
	if err != nil {
		return
	}
	texts, err := c.src.Placements()
	if err != nil {
		return
	}
	now := time.Now()
	for _, g := range rr.Groups {
		g.Normalize()
		rec, err := placement.ParseRecord(texts[strings.ToLower(g.Name)])
		if err != nil {
			continue
		}
		name := g.Name
		for _, s := range groupStates {
			gauge(ch, c.state, b2f(rec.State == s), name, s)
		}
		if owner := rec.OwnerName; owner != "" || rec.Owner != "" {
			if owner == "" {
				owner = rec.Owner
			}
			gauge(ch, c.owner, 1, name, owner)
		}
		gauge(ch, c.wanted, b2f(g.Wanted == roles.WantedOnline), name)
		gauge(ch, c.held, b2f(rec.Held != ""), name)
		since := now.Add(-time.Duration(g.FailoverPeriod))
		var inPeriod int
		var last time.Time
		for _, t := range rec.Failovers {
			if t.After(since) {
				inPeriod++
			}
			if t.After(last) {
				last = t
			}
		}
		gauge(ch, c.failovers, float64(inPeriod), name)
		gauge(ch, c.threshold, float64(g.FailoverThreshold), name)
		gauge(ch, c.period, time.Duration(g.FailoverPeriod).Seconds(), name)
		if !last.IsZero() {
			gauge(ch, c.lastFailover, unix(last), name)
		}
		if !rec.LastFailureAt.IsZero() {
			gauge(ch, c.lastFailure, unix(rec.LastFailureAt), name)
		}
	}
}
