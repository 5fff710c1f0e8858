package agent

// What the dashboard's backups page lists beyond this node's own sessions:
// every member's sessions, and the sets in the schedule's target.

import (
	"context"
	"fmt"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backend"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/dashboard"
	"github.com/clusterkeep/clusterkeep/internal/schedule"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
)

// peerHistory asks the member at addr for its coordinator's history, as
// this member node.
func (a *Agent) peerHistory(ctx context.Context, addr string) (shadow.History, error) {
	return client.Node(addr, a.nodeCreds()).ShadowHistory(ctx)
}

// scheduleSets lists the sets in the schedule's target, as this node
// reads it (a directory target is read on this node's host).
type scheduleSets struct{ svc *cluster.Service }

// listWait bounds how long the page waits for the target's listing.
const listWait = 10 * time.Second

func (s scheduleSets) target() string {
	cs, _, _, err := s.svc.ScheduleRecord()
	if err != nil || cs == "" {
		return ""
	}
	c, err := schedule.ParseConfig(cs)
	if err != nil {
		return ""
	}
	return c.Target
}

func (s scheduleSets) Name() string {
	if t := s.target(); t != "" {
		return "Sets in the schedule's target " + t
	}
	return "Sets in the schedule's target: no schedule set"
}

func (s scheduleSets) Backups(ctx context.Context) ([]dashboard.Backup, error) {
	to := s.target()
	if to == "" {
		return nil, nil
	}
	t, err := backend.Parse(to)
	if err != nil {
		return nil, fmt.Errorf("the schedule's target %s: %w", to, err)
	}
	ctx, cancel := context.WithTimeout(ctx, listWait)
	defer cancel()
	sets, errs := backupset.ListIn(ctx, t)
	out := make([]dashboard.Backup, 0, len(sets))
	// Newest first, as the other tables.
	for i := len(sets) - 1; i >= 0; i-- {
		m := sets[i].Manifest
		where := sets[i].Location
		if m.SourceNode.Name != "" {
			where += " (from " + m.SourceNode.Name + ")"
		}
		out = append(out, dashboard.Backup{ID: m.BackupID, Kind: "backup", Type: string(m.Components.BackupType), Where: where,
			Started: m.Created, Result: "completed", Bytes: m.Size()})
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%d entries of %s could not be read, the first: %w", len(errs), to, errs[0])
	}
	return out, nil
}
