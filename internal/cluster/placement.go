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
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/hashicorp/raft"
)

// PlacementKey is the subtree of the groups' placements.
const PlacementKey = RolesKey + "/Placement"

// ErrPlacementChanged: the placement is not what the caller read.
var ErrPlacementChanged = errors.New("the group's placement changed meanwhile")

func placementPath(group string) string { return PlacementKey + "/" + strings.ToLower(group) }

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
func (s *Service) Placements() (map[string]string, error) {
	out := map[string]string{}
	err := s.hive.View(func(r *hive.Reader) error {
		k, err := r.Get(PlacementKey)
		if errors.Is(err, hive.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, sub := range k.Subkeys {
			v, err := r.GetValue(PlacementKey+"/"+sub, "State")
			if errors.Is(err, hive.ErrValueNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out[strings.ToLower(sub)] = v.String
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the placements: %w", err)
	}
	return out, nil
}

// Placement reads one group's placement record ("" when none).
func (s *Service) Placement(group string) (string, error) {
	v, err := s.hive.GetValue(placementPath(group), "State")
	if errors.Is(err, hive.ErrKeyNotFound) || errors.Is(err, hive.ErrValueNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the placement of group %s: %w", group, err)
	}
	return v.String, nil
}

// SwapPlacement replaces group's placement old ("" when none) by next (""
// removes it), only if it is still old. Leader only.
func (s *Service) SwapPlacement(ctx context.Context, group, old, next string) error {
	p := placementPath(group)
	cond := hive.Cond{Kind: hive.CondValueMissing, Key: p, Name: "State"}
	if old != "" {
		v := hive.StringValue("State", old)
		cond = hive.Cond{Kind: hive.CondValueEquals, Key: p, Value: &v}
	}
	op := hive.DeleteKey(p)
	if next != "" {
		op = hive.SetValue(p, hive.StringValue("State", next))
	} else if old == "" {
		return nil
	}
	_, err := s.applySystem(ctx, hive.Txn{Conds: []hive.Cond{cond}, Ops: []hive.Op{op}})
	if errors.Is(err, hive.ErrPreconditionFailed) {
		return fmt.Errorf("group %s: %w", group, ErrPlacementChanged)
	}
	return err
}

// LeaseMax is the longest group lease a leader of this cluster recorded.
func (s *Service) LeaseMax() (time.Duration, error) {
	v, err := s.hive.GetValue(RolesKey, "LeaseMax")
	if errors.Is(err, hive.ErrKeyNotFound) || errors.Is(err, hive.ErrValueNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return time.Duration(v.Uint64), nil
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
		cond := hive.Cond{Kind: hive.CondValueMissing, Key: RolesKey, Name: "LeaseMax"}
		if cur > 0 {
			v := hive.Uint64Value("LeaseMax", uint64(cur))
			cond = hive.Cond{Kind: hive.CondValueEquals, Key: RolesKey, Value: &v}
		}
		_, err = s.applySystem(ctx, hive.Txn{Conds: []hive.Cond{cond},
			Ops: []hive.Op{hive.SetValue(RolesKey, hive.Uint64Value("LeaseMax", uint64(d)))}})
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
