package cluster

// The groups' placements, Cluster/Roles/Placement/<group> value "State": a
// JSON record the leader's placement engine writes (internal/failover/placement says
// what it means), replicated, backed up and restored with the rest. Beside
// them, Cluster/Roles value "LeaseMax" is the longest lease any leader
// granted: a new leader waits that long before it counts a node's lease
// as expired.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
	"github.com/hashicorp/raft"
)

// PlacementKey is the subtree of the groups' placements.
const PlacementKey = reserved.PlacementKey

// ErrPlacementChanged: the placement is not what the caller read.
var ErrPlacementChanged = errors.New("the group's placement changed meanwhile")

// ReadyTerm is the term in which this node leads and may serve reads by
// read index; 0 when it does not lead (or not yet).
func (s *Service) ReadyTerm() uint64 {
	s.mu.RLock()
	r, term := s.raft, s.readyTerm
	s.mu.RUnlock()
	if r == nil || term == 0 || r.State() != raft.Leader || r.CurrentTerm() != term {
		return 0
	}
	return term
}

// Placements reads every group's placement record from this node's hive,
// by lower-case group name.
func (s *Service) Placements() (out map[string]string, err error) {
	err = s.hive.View(func(r *hive.Reader) error {
		out, err = reserved.Placements(r)
		return err
	})
	return out, err
}

// Placement reads one group's placement record ("" when none).
func (s *Service) Placement(group string) (string, error) {
	return reserved.Placement(s.hive, group)
}

// SwapPlacement replaces group's placement old ("" when none) by next (""
// removes it), only if it is still old. Leader only.
func (s *Service) SwapPlacement(ctx context.Context, group, old, next string) error {
	txn, ok := reserved.SwapPlacementTxn(group, old, next)
	if !ok {
		return nil
	}
	_, err := s.applySystem(ctx, txn)
	if errors.Is(err, hive.ErrPreconditionFailed) {
		return fmt.Errorf("group %s: %w", group, ErrPlacementChanged)
	}
	return err
}

// LeaseMax is the longest group lease a leader of this cluster recorded.
func (s *Service) LeaseMax() (time.Duration, error) {
	return reserved.LeaseMax(s.hive)
}

// RaiseLeaseMax records d as the longest lease unless a longer one is
// recorded. Leader only.
func (s *Service) RaiseLeaseMax(ctx context.Context, d time.Duration) error {
	for range 5 {
		cur, err := s.LeaseMax()
		if err != nil {
			return err
		}
		if cur >= d {
			return nil
		}
		_, err = s.applySystem(ctx, reserved.RaiseLeaseMaxTxn(cur, d))
		if !errors.Is(err, hive.ErrPreconditionFailed) {
			return err
		}
	}
	return ErrRolesBusy
}

// Applied is the index of the last entry this node's hive applied (0 when
// the node is in no cluster).
func (s *Service) Applied() uint64 {
	s.mu.RLock()
	f := s.fsm
	s.mu.RUnlock()
	if f == nil {
		return 0
	}
	return f.Index()
}
