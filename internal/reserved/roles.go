package reserved

// The record of resources and groups (roles), Cluster/Roles: each resource
// under Cluster/Roles/Resources/<name> and each group under
// Cluster/Roles/Groups/<name>, as a JSON string value "Config"
// (internal/failover/roles says what they mean). Cluster/Roles holds
// "Version", a counter raised by every change, so that a change validated
// against what was read commits only if nothing changed meanwhile
// (ChangeTxn).

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/hive"
)

// RolesKey is the subtree of resources and groups.
const RolesKey = Root + "/Roles"

// ResourcePath is resource name's record.
func ResourcePath(name string) string { return RolesKey + "/Resources/" + strings.ToLower(name) }

// GroupPath is group name's record.
func GroupPath(name string) string { return RolesKey + "/Groups/" + strings.ToLower(name) }

// Roles is every resource and group, read in one transaction, sorted by
// name, and the Version they were read at.
type Roles struct {
	Version   uint64
	Resources []roles.Resource
	Groups    []roles.Group
}

// GroupOf names the group holding resource name ("" for none).
func (rr Roles) GroupOf(name string) string {
	for _, g := range rr.Groups {
		for _, r := range g.Resources {
			if strings.EqualFold(r, name) {
				return g.Name
			}
		}
	}
	return ""
}

// Resource finds a resource by name, case-insensitively.
func (rr Roles) Resource(name string) (roles.Resource, bool) {
	for _, r := range rr.Resources {
		if strings.EqualFold(r.Name, name) {
			return r, true
		}
	}
	return roles.Resource{}, false
}

// Group finds a group by name, case-insensitively.
func (rr Roles) Group(name string) (roles.Group, bool) {
	for _, g := range rr.Groups {
		if strings.EqualFold(g.Name, name) {
			return g, true
		}
	}
	return roles.Group{}, false
}

// ReadRoles reads every resource and group (r should be one read
// transaction, for a consistent Version).
func ReadRoles(r Reader) (Roles, error) {
	var rr Roles
	if v, err := r.GetValue(RolesKey, "Version"); err == nil {
		rr.Version = v.Uint64
	} else if !errors.Is(err, hive.ErrKeyNotFound) && !errors.Is(err, hive.ErrValueNotFound) {
		return Roles{}, fmt.Errorf("read the roles: %w", err)
	}
	for _, kind := range []string{"Resources", "Groups"} {
		k, err := r.Get(RolesKey + "/" + kind)
		if errors.Is(err, hive.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return Roles{}, fmt.Errorf("read the roles: %w", err)
		}
		for _, sub := range k.Subkeys {
			p := RolesKey + "/" + kind + "/" + sub
			v, err := r.GetValue(p, "Config")
			if err != nil {
				return Roles{}, fmt.Errorf("read the roles: %s: %w", p, err)
			}
			if kind == "Resources" {
				var res roles.Resource
				if err := json.Unmarshal([]byte(v.String), &res); err != nil {
					return Roles{}, fmt.Errorf("read the roles: %s: %w", p, err)
				}
				rr.Resources = append(rr.Resources, res)
			} else {
				var g roles.Group
				if err := json.Unmarshal([]byte(v.String), &g); err != nil {
					return Roles{}, fmt.Errorf("read the roles: %s: %w", p, err)
				}
				rr.Groups = append(rr.Groups, g)
			}
		}
	}
	sort.Slice(rr.Resources, func(i, j int) bool {
		return strings.ToLower(rr.Resources[i].Name) < strings.ToLower(rr.Resources[j].Name)
	})
	sort.Slice(rr.Groups, func(i, j int) bool { return strings.ToLower(rr.Groups[i].Name) < strings.ToLower(rr.Groups[j].Name) })
	return rr, nil
}

// PutResourceOps record r; oldName is the spelling it is recorded under
// now ("" for a new one): a new spelling replaces the record, whose key
// keeps the case-folded name.
func PutResourceOps(oldName string, r roles.Resource) ([]hive.Op, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var ops []hive.Op
	if oldName != "" && oldName != r.Name {
		ops = append(ops, hive.DeleteKey(ResourcePath(oldName)))
	}
	return append(ops, hive.SetValue(ResourcePath(r.Name), hive.StringValue("Config", string(b)))), nil
}

// PutGroupOps record g, as PutResourceOps a resource.
func PutGroupOps(oldName string, g roles.Group) ([]hive.Op, error) {
	b, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	var ops []hive.Op
	if oldName != "" && oldName != g.Name {
		ops = append(ops, hive.DeleteKey(GroupPath(oldName)))
	}
	return append(ops, hive.SetValue(GroupPath(g.Name), hive.StringValue("Config", string(b)))), nil
}

// OwnerConds hold when every owner named is still a member.
func OwnerConds(owners []string) []hive.Cond {
	var conds []hive.Cond
	for _, o := range owners {
		conds = append(conds, hive.Cond{Kind: hive.CondValueExists, Key: NamePath(o), Name: "Id"})
	}
	return conds
}

// ChangeTxn is a change of the roles planned against rr: it commits only
// if the roles are still at rr.Version (and conds hold), and raises it.
func ChangeTxn(rr Roles, conds []hive.Cond, ops []hive.Op) hive.Txn {
	version := hive.Uint64Value("Version", rr.Version)
	vc := hive.Cond{Kind: hive.CondValueEquals, Key: RolesKey, Value: &version}
	if rr.Version == 0 {
		vc = hive.Cond{Kind: hive.CondValueMissing, Key: RolesKey, Name: "Version"}
	}
	ops = append(ops, hive.SetValue(RolesKey, hive.Uint64Value("Version", rr.Version+1)))
	return hive.Txn{Conds: append([]hive.Cond{vc}, conds...), Ops: ops}
}
