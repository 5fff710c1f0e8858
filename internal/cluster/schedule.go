package cluster

// The record of scheduled backups, Cluster/Schedule: the schedule's
// configuration and its state, each a JSON string value, changed only
// through the cluster service (internal/schedule decides what they mean).

import (
	"context"
	"errors"
	"fmt"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
)

// ScheduleKey holds the schedule ("Config") and its state ("State").
const ScheduleKey = reserved.ScheduleKey

// ErrNoSchedule: no schedule is set.
var ErrNoSchedule = errors.New("no backup schedule is set")

// ErrStateChanged: the schedule's state is not what the caller read (another
// run claimed it, or a leader change intervened).
var ErrStateChanged = errors.New("the schedule's state changed meanwhile")

// ScheduleRecord reads the schedule's configuration, state, and when a
// run was last asked for, from this node's hive ("" for what is not set).
func (s *Service) ScheduleRecord() (config, state, runNow string, err error) {
	return reserved.Schedule(s.hive)
}

// AskScheduledRun records that a run is asked for at once (at t, RFC 3339).
// Leader only.
func (s *Service) AskScheduledRun(ctx context.Context, t string) error {
	_, err := s.applySystem(ctx, reserved.AskRunTxn(t))
	if errors.Is(err, hive.ErrPreconditionFailed) {
		return ErrNoSchedule
	}
	return err
}

// Leader reports whether this node is the leader.
func (s *Service) Leader() bool { return s.Status().RaftState == "Leader" }

// NodeID is this node's id.
func (s *Service) NodeID() string { return s.Identity().NodeID }

// SetSchedule records a schedule's configuration (validated by the
// caller), or removes the schedule and its state when config is "".
// Leader only.
func (s *Service) SetSchedule(ctx context.Context, config string) error {
	if _, err := s.applySystem(ctx, reserved.SetScheduleTxn(config)); err != nil {
		return fmt.Errorf("record the schedule: %w", err)
	}
	return nil
}

// SwapScheduleState replaces the schedule's state old ("" when none) by
// next, only if it is still old and the configuration is still config: a
// run is claimed this way, so two leaders can never both claim one, and a
// run is never claimed for a schedule changed meanwhile. Leader only.
func (s *Service) SwapScheduleState(ctx context.Context, config, old, next string) error {
	_, err := s.applySystem(ctx, reserved.SwapScheduleStateTxn(config, old, next))
	if errors.Is(err, hive.ErrPreconditionFailed) {
		return fmt.Errorf("%w: %w", ErrStateChanged, err)
	}
	if err != nil {
		return fmt.Errorf("record the schedule's state: %w", err)
	}
	return nil
}
