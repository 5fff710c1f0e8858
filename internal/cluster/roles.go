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
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/hive"
)

// RolesKey is the subtree of resources and groups.
const RolesKey = hive.ReservedKey + "/Roles"

func resourcePath(name string) string { return RolesKey + "/Resources/" + strings.ToLower(name) }
func groupPath(name string) string    { return RolesKey + "/Groups/" + strings.ToLower(name) }

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
type RolesRecord struct {
	Version   uint64
	Resources []roles.Resource
	Groups    []roles.Group
}

// GroupOf names the group holding resource name ("" for none).
func (rr RolesRecord) GroupOf(name string) string {
	for _, g := range rr.Groups {
		for _, r := range g.Resources {
			if strings.EqualFold(r, name) {
				return g.Name
			}
		}
	}
	return ""
}

func (rr RolesRecord) resource(name string) (roles.Resource, bool) {
	for _, r := range rr.Resources {
		if strings.EqualFold(r.Name, name) {
			return r, true
		}
	}
	return roles.Resource{}, false
}

func (rr RolesRecord) group(name string) (roles.Group, bool) {
	for _, g := range rr.Groups {
		if strings.EqualFold(g.Name, name) {
			return g, true
		}
	}
	return roles.Group{}, false
}

// Roles reads every resource and group from this node's hive (the caller
// makes the read consistent), sorted by name.
func (s *Service) Roles() (RolesRecord, error) {
	var rr RolesRecord
	err := s.hive.View(func(r *hive.Reader) error {
		if v, err := r.GetValue(RolesKey, "Version"); err == nil {
			rr.Version = v.Uint64
		} else if !errors.Is(err, hive.ErrKeyNotFound) && !errors.Is(err, hive.ErrValueNotFound) {
			return err
		}
		for _, kind := range []string{"Resources", "Groups"} {
			k, err := r.Get(RolesKey + "/" + kind)
			if errors.Is(err, hive.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			for _, sub := range k.Subkeys {
				p := RolesKey + "/" + kind + "/" + sub
				v, err := r.GetValue(p, "Config")
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				if kind == "Resources" {
					var res roles.Resource
					if err := json.Unmarshal([]byte(v.String), &res); err != nil {
						return fmt.Errorf("%s: %w", p, err)
					}
					rr.Resources = append(rr.Resources, res)
				} else {
					var g roles.Group
					if err := json.Unmarshal([]byte(v.String), &g); err != nil {
						return fmt.Errorf("%s: %w", p, err)
					}
					rr.Groups = append(rr.Groups, g)
				}
			}
		}
		return nil
	})
	if err != nil {
		return RolesRecord{}, fmt.Errorf("read the roles: %w", err)
	}
	sort.Slice(rr.Resources, func(i, j int) bool {
		return strings.ToLower(rr.Resources[i].Name) < strings.ToLower(rr.Resources[j].Name)
	})
	sort.Slice(rr.Groups, func(i, j int) bool { return strings.ToLower(rr.Groups[i].Name) < strings.ToLower(rr.Groups[j].Name) })
	return rr, nil
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
		version := hive.Uint64Value("Version", rr.Version)
		vc := hive.Cond{Kind: hive.CondValueEquals, Key: RolesKey, Value: &version}
		if rr.Version == 0 {
			vc = hive.Cond{Kind: hive.CondValueMissing, Key: RolesKey, Name: "Version"}
		}
		ops = append(ops, hive.SetValue(RolesKey, hive.Uint64Value("Version", rr.Version+1)))
		_, err = s.applySystem(ctx, hive.Txn{Conds: append([]hive.Cond{vc}, conds...), Ops: ops})
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
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.changeRoles(ctx, func(rr RolesRecord) ([]hive.Cond, []hive.Op, error) {
		old, exists := rr.resource(r.Name)
		switch {
		case mode == PutCreate && exists:
			return nil, nil, fmt.Errorf("resource %s: %w", old.Name, ErrResourceExists)
		case mode == PutReplace && !exists:
			return nil, nil, fmt.Errorf("resource %s: %w", r.Name, ErrNoResource)
		}
		var ops []hive.Op
		if exists && old.Name != r.Name {
			// A new spelling of the name: the key keeps its case-folded
			// name, the record the new spelling.
			ops = append(ops, hive.DeleteKey(resourcePath(old.Name)))
		}
		return nil, append(ops, hive.SetValue(resourcePath(r.Name), hive.StringValue("Config", string(b)))), nil
	})
}

// RemoveResource removes a resource that no group holds. Leader only.
func (s *Service) RemoveResource(ctx context.Context, name string) error {
	return s.changeRoles(ctx, func(rr RolesRecord) ([]hive.Cond, []hive.Op, error) {
		if _, ok := rr.resource(name); !ok {
			return nil, nil, fmt.Errorf("resource %s: %w", name, ErrNoResource)
		}
		if g := rr.GroupOf(name); g != "" {
			return nil, nil, fmt.Errorf("resource %s: %w %s: remove it from the group first", name, ErrResourceInUse, g)
		}
		return nil, []hive.Op{hive.DeleteKey(resourcePath(name))}, nil
	})
}

// PutGroup records a group (normalized and validated here, against the
// recorded resources and members). Leader only.
func (s *Service) PutGroup(ctx context.Context, g roles.Group, mode PutMode) error {
	g.Normalize()
	if err := g.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return s.changeRoles(ctx, func(rr RolesRecord) ([]hive.Cond, []hive.Op, error) {
		old, exists := rr.group(g.Name)
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
		var conds []hive.Cond
		for _, o := range g.Owners() {
			conds = append(conds, hive.Cond{Kind: hive.CondValueExists, Key: namePath(o), Name: "Id"})
		}
		var ops []hive.Op
		if exists && old.Name != g.Name {
			ops = append(ops, hive.DeleteKey(groupPath(old.Name)))
		}
		return conds, append(ops, hive.SetValue(groupPath(g.Name), hive.StringValue("Config", string(b)))), nil
	})
}

// RemoveGroup removes a group (its resources stay, in no group). Leader
// only.
func (s *Service) RemoveGroup(ctx context.Context, name string) error {
	return s.changeRoles(ctx, func(rr RolesRecord) ([]hive.Cond, []hive.Op, error) {
		if _, ok := rr.group(name); !ok {
			return nil, nil, fmt.Errorf("group %s: %w", name, ErrNoGroup)
		}
		return nil, []hive.Op{hive.DeleteKey(groupPath(name))}, nil
	})
}
