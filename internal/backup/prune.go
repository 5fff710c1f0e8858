package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/backend"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/backupset/offline"
	"github.com/clusterkeep/clusterkeep/internal/retention"
)

// ErrNothingVerifies: no backup of a cluster verifies, so none of its
// backups is removed.
var ErrNothingVerifies = errors.New("no backup of the cluster verifies")

// PruneOptions are backup prune's settings.
type PruneOptions struct {
	Target string // a directory or s3://bucket/prefix
	Policy retention.Policy
	DryRun bool
	// Identities check an encrypted set's contents when the newest backup
	// is verified; without them its stored bytes are checked.
	Identities []age.Identity
	Progress   func(int64)
	Log        *slog.Logger
}

// PrunedSet is one set and what prune did with it.
type PrunedSet struct {
	Path      string    `json:"path"`
	BackupID  string    `json:"backup_id"`
	Created   time.Time `json:"created"`
	Cluster   string    `json:"cluster"`
	ClusterID string    `json:"cluster_id"`
	Reasons   []string  `json:"reasons,omitempty"` // why it is kept
	Error     string    `json:"error,omitempty"`   // why its removal failed
}

// PruneResult is what prune did (or, dry, would do).
type PruneResult struct {
	Target  string           `json:"target"`
	DryRun  bool             `json:"dry_run"`
	Policy  retention.Policy `json:"policy"`
	Kept    []PrunedSet      `json:"kept"`
	Removed []PrunedSet      `json:"removed"`
	// Verified is the newest backup of each cluster that verified, which
	// is never removed. Unverified lists the newer ones that did not.
	Verified   []string `json:"verified"`
	Unverified []string `json:"unverified,omitempty"`
	// Unreadable are what looks like sets but whose manifest does not
	// read: they are left alone.
	Unreadable []string `json:"unreadable,omitempty"`
	// Partials are what incomplete sets left; the abandoned ones are
	// removed.
	Partials []PrunedPartial `json:"partials,omitempty"`
}

// PrunedPartial is an incomplete set seen by prune.
type PrunedPartial struct {
	backend.Partial
	Removed bool `json:"removed"`
}

// Prune applies a retention policy to the sets of a target, per cluster.
// A set is kept if any rule keeps it; the newest backup of each cluster
// that verifies now (re-read whole, every checksum and the database
// checked) is always kept, and when none does nothing of that cluster is
// removed. Sets that do not read and incomplete sets are never taken for
// backups. An incomplete set is removed only when the target judges its
// writer certainly gone (backend.Partial.Abandoned: a process of this host
// that is gone, or another host's writer silent for hours), never while a
// backup may still be writing it. With DryRun nothing is removed.
func Prune(ctx context.Context, o PruneOptions) (*PruneResult, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := o.Policy.Validate(); err != nil {
		return nil, err
	}
	if o.Policy.Empty() {
		return nil, errors.New("backup prune: no retention rule given (--keep-last, --keep-daily, --keep-weekly, --keep-monthly): nothing would be kept")
	}
	t, err := backend.Parse(o.Target)
	if err != nil {
		return nil, fmt.Errorf("backup prune: %w", err)
	}
	res := &PruneResult{Target: t.String(), DryRun: o.DryRun, Policy: o.Policy, Kept: []PrunedSet{}, Removed: []PrunedSet{}, Verified: []string{}}
	if _, err := t.Sets(ctx); err != nil {
		return nil, fmt.Errorf("backup prune: %w", err)
	}
	sets, errs := backupset.ListIn(ctx, t)
	for _, err := range errs {
		res.Unreadable = append(res.Unreadable, err.Error())
	}
	byCluster := map[string][]*backupset.Set{}
	var order []string
	for _, s := range sets {
		id := s.Manifest.Cluster.ID
		if _, ok := byCluster[id]; !ok {
			order = append(order, id)
		}
		byCluster[id] = append(byCluster[id], s)
	}
	var failed []error
	for _, id := range order {
		group := byCluster[id] // oldest first
		byName := map[string]*backupset.Set{}
		items := make([]retention.Item, 0, len(group))
		for _, s := range group {
			byName[s.Name] = s
			items = append(items, retention.Item{ID: s.Name, Time: s.Manifest.Created})
		}
		protect := map[string]string{}
		verified := ""
		for i := len(group) - 1; i >= 0; i-- {
			s := group[i]
			var ids []age.Identity
			if s.Encrypted() {
				ids = o.Identities
			}
			if _, err := offline.VerifySet(s.Location, o.Progress, ids...); err != nil {
				o.Log.Warn("a newer backup does not verify", "set", s.Location, "err", err)
				res.Unverified = append(res.Unverified, fmt.Sprintf("%s: %v", s.Location, err))
				continue
			}
			verified = s.Name
			protect[s.Name] = "newest verified backup"
			res.Verified = append(res.Verified, s.Location)
			break
		}
		decisions := retention.Apply(items, o.Policy, protect)
		for _, d := range decisions {
			s := byName[d.ID]
			ps := PrunedSet{Path: s.Location, BackupID: s.Manifest.BackupID, Created: s.Manifest.Created.UTC(),
				Cluster: s.Manifest.Cluster.Name, ClusterID: id, Reasons: d.Reasons}
			if verified == "" {
				ps.Reasons = append(ps.Reasons, "no backup of this cluster verifies: none is removed")
				res.Kept = append(res.Kept, ps)
				continue
			}
			if d.Keep {
				res.Kept = append(res.Kept, ps)
				continue
			}
			if !o.DryRun {
				if err := t.Remove(ctx, s.Name); err != nil {
					ps.Error = err.Error()
					failed = append(failed, err)
				}
			}
			res.Removed = append(res.Removed, ps)
		}
		if verified == "" {
			failed = append(failed, fmt.Errorf("%w: cluster %s (%s): none of its %d backups was removed", ErrNothingVerifies, group[0].Manifest.Cluster.Name, id, len(group)))
		}
	}
	partials, err := t.Partials(ctx)
	if err != nil {
		failed = append(failed, err)
	}
	for _, p := range partials {
		pp := PrunedPartial{Partial: p}
		if p.Abandoned && !o.DryRun {
			if err := t.RemovePartial(ctx, p); err != nil {
				failed = append(failed, err)
			} else {
				pp.Removed = true
			}
		}
		res.Partials = append(res.Partials, pp)
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("backup prune %s: %w", t, errors.Join(failed...))
	}
	return res, nil
}
