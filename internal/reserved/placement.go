package reserved

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
)

// PlacementKey is the subtree of the groups' placements: a "State" string
// per group, the leader's placement engine's record.
const PlacementKey = RolesKey + "/Placement"

// PlacementPath is group's placement record.
func PlacementPath(group string) string { return PlacementKey + "/" + strings.ToLower(group) }

// Placements reads every group's placement record, by lower-case group
// name.
func Placements(r Reader) (map[string]string, error) {
	out := map[string]string{}
	k, err := r.Get(PlacementKey)
	if errors.Is(err, hive.ErrKeyNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the placements: %w", err)
	}
	for _, sub := range k.Subkeys {
		v, err := r.GetValue(PlacementKey+"/"+sub, "State")
		if errors.Is(err, hive.ErrValueNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read the placements: %w", err)
		}
		out[strings.ToLower(sub)] = v.String
	}
	return out, nil
}

// Placement reads one group's placement record ("" when none).
func Placement(r Reader, group string) (string, error) {
	v, err := r.GetValue(PlacementPath(group), "State")
	if errors.Is(err, hive.ErrKeyNotFound) || errors.Is(err, hive.ErrValueNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the placement of group %s: %w", group, err)
	}
	return v.String, nil
}

// SwapPlacementTxn replaces group's placement old ("" when none) by next
// ("" removes it), only if it is still old; ok is false when there is
// nothing to do (no placement, none wanted).
func SwapPlacementTxn(group, old, next string) (t hive.Txn, ok bool) {
	p := PlacementPath(group)
	cond := hive.Cond{Kind: hive.CondValueMissing, Key: p, Name: "State"}
	if old != "" {
		v := hive.StringValue("State", old)
		cond = hive.Cond{Kind: hive.CondValueEquals, Key: p, Value: &v}
	}
	op := hive.DeleteKey(p)
	if next != "" {
		op = hive.SetValue(p, hive.StringValue("State", next))
	} else if old == "" {
		return hive.Txn{}, false
	}
	return hive.Txn{Conds: []hive.Cond{cond}, Ops: []hive.Op{op}}, true
}

// LeaseMax is the longest group lease a leader of the cluster recorded (0
// when none).
func LeaseMax(r Reader) (time.Duration, error) {
	v, err := r.GetValue(RolesKey, "LeaseMax")
	if errors.Is(err, hive.ErrKeyNotFound) || errors.Is(err, hive.ErrValueNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return time.Duration(v.Uint64), nil
}

// RaiseLeaseMaxTxn records d as the longest lease, only if cur is still
// what is recorded.
func RaiseLeaseMaxTxn(cur, d time.Duration) hive.Txn {
	cond := hive.Cond{Kind: hive.CondValueMissing, Key: RolesKey, Name: "LeaseMax"}
	if cur > 0 {
		v := hive.Uint64Value("LeaseMax", uint64(cur))
		cond = hive.Cond{Kind: hive.CondValueEquals, Key: RolesKey, Value: &v}
	}
	return hive.Txn{Conds: []hive.Cond{cond}, Ops: []hive.Op{hive.SetValue(RolesKey, hive.Uint64Value("LeaseMax", uint64(d)))}}
}
