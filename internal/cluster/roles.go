package cluster

// The record of resources and groups (roles), Cluster/Roles: each resource
// under Cluster/Roles/Resources/<name> and each group under
// Cluster/Roles/Groups/<name>, as a JSON string value "Config"
// (internal/failover/roles says what they mean). Cluster/Roles holds "Version", a
// counter raised by every change: a change is validated against what the
// leader read and committed only if Version is still what it read, so two
// concurrent changes can never together break what each checked (a
// resource removed while a group takes it in, say). Owners are checked
// against the members in the same transaction.

import (
	"context"
	"errors"
	"fmt"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
)

// RolesKey is the subtree of resources and groups.
const RolesKey = reserved.RolesKey

// Errors of the roles' changes.
var (
	ErrNoResource     = errors.New("no such resource")
	ErrNoGroup        = errors.New("no such group")
	ErrResourceExists = errors.New("a resource of that name exists")
	ErrGroupExists    = errors.New("a group of that name exists")
	ErrResourceInUse  = errors.New("the resource is in a group")
	ErrRolesBusy      = errors.New("the roles kept changing meanwhile: try again")
)

// PutMode says whether a put may create, replace, or both.
type PutMode int

// The put modes.
const (
	PutAny     PutMode = iota // create or replace
	PutCreate                 // refuse if it exists
	PutReplace                // refuse if it does not exist
)

// RolesRecord is every resource and group, read in one transaction.
type RolesRecord = reserved.Roles

// Roles reads every resource and group from this node's hive (the caller
// makes the read consistent), sorted by name.
func (s *Service) Roles() (RolesRecord, error) {
	var rr RolesRecord
	err := s.hive.View(func(r *hive.Reader) (err error) {
		rr, err = reserved.ReadRoles(r)
		return err
	})
	return rr, err
}

// changeRoles reads the roles on the leader (after a read barrier), lets
// plan validate a change and say what to write, and commits it only if the
// roles are unchanged since the read and the conditions plan adds hold;
// it reads again and re-plans when they changed meanwhile. A plan's error
// changes nothing. Leader only.
func (s *Service) changeRoles(ctx context.Context, plan func(RolesRecord) ([]hive.Cond, []hive.Op, error)) error {
	for range 5 {
		if _, err := s.ReadIndex(ctx); err != nil {
			return err
		}
		rr, err := s.Roles()
		if err != nil {
			return err
		}
		conds, ops, err := plan(rr)
		if err != nil {
			return err
		}
		_, err = s.applySystem(ctx, reserved.ChangeTxn(rr, conds, ops))
		if errors.Is(err, hive.ErrPreconditionFailed) {
			continue // another change came first: read and check again
		}
		if err != nil {
			return fmt.Errorf("record the roles: %w", err)
		}
		return nil
	}
	return ErrRolesBusy
}

// PutResource records a resource (normalized and validated here). Leader
// only.
func (s *Service) PutResource(ctx context.Context, r roles.Resource, mode PutMode) error {
	r.Normalize()
	if err := r.Validate(); err != nil {
		return err
	}
	return s.changeRoles(ctx, func(rr RolesRecord) ([]hive.Cond, []hive.Op, error) {
		old, exists := rr.Resource(r.Name)
		switch {
		case mode == PutCreate && exists:
			return nil, nil, fmt.Errorf("resource %s: %w", old.Name, ErrResourceExists)
		case mode == PutReplace && !exists:
			return nil, nil, fmt.Errorf("resource %s: %w", r.Name, ErrNoResource)
		}
		ops, err := reserved.PutResourceOps(old.Name, r)
		return nil, ops, err
	})
}

// RemoveResource removes a resource that no group holds. Leader only.
func (s *Service) RemoveResource(ctx context.Context, name string) error {
	return s.changeRoles(ctx, func(rr RolesRecord) ([]hive.Cond, []hive.Op, error) {
		if _, ok := rr.Resource(name); !ok {
			return nil, nil, fmt.Errorf("resource %s: %w", name, ErrNoResource)
		}
		if g := rr.GroupOf(name); g != "" {
			return nil, nil, fmt.Errorf("resource %s: %w %s: remove it from the group first", name, ErrResourceInUse, g)
		}
		return nil, []hive.Op{hive.DeleteKey(reserved.ResourcePath(name))}, nil
	})
}

// PutGroup records a group (normalized and validated here, against the
// recorded resources and members). Leader only.
func (s *Service) PutGroup(ctx context.Context, g roles.Group, mode PutMode) error {
	g.Normalize()
	if err := g.Validate(); err != nil {
		return err
	}
	return s.changeRoles(ctx, func(rr RolesRecord) ([]hive.Cond, []hive.Op, error) {
		old, exists := rr.Group(g.Name)
		switch {
		case mode == PutCreate && exists:
			return nil, nil, fmt.Errorf("group %s: %w", old.Name, ErrGroupExists)
		case mode == PutReplace && !exists:
			return nil, nil, fmt.Errorf("group %s: %w", g.Name, ErrNoGroup)
		}
		held := map[string]string{}
		for _, r := range rr.Resources {
			held[r.Name] = rr.GroupOf(r.Name)
		}
		members, err := s.Members()
		if err != nil {
			return nil, nil, err
		}
		var names []string
		for _, m := range members {
			names = append(names, m.Name)
		}
		if err := g.Check(held, names); err != nil {
			return nil, nil, err
		}
		// The owners must still be members when this commits.
		ops, err := reserved.PutGroupOps(old.Name, g)
		return reserved.OwnerConds(g.Owners()), ops, err
	})
}

// RemoveGroup removes a group (its resources stay, in no group). Leader
// only.
func (s *Service) RemoveGroup(ctx context.Context, name string) error {
	return s.changeRoles(ctx, func(rr RolesRecord) ([]hive.Cond, []hive.Op, error) {
		if _, ok := rr.Group(name); !ok {
			return nil, nil, fmt.Errorf("group %s: %w", name, ErrNoGroup)
		}
		return nil, []hive.Op{hive.DeleteKey(reserved.GroupPath(name))}, nil
	})
}
