// Package reserved is the cluster's own records in the reserved subtree of
// the hive (Cluster/...): the members, the cluster identity, the roles
// (resources and groups), the groups' placements, the backup schedule and
// the security records (authority, join secret, tokens). It reads them
// with plain functions over a hive reader and builds the operations and
// transactions that write them.
//
// It never applies a change: the cluster service does, through consensus,
// and is the only writer. Offline tools (restore) read the same records
// through it instead of decoding them by hand.
package reserved

import "github.com/clusterkeep/clusterkeep/internal/hive"

// Reader is what reading a record needs: a hive (*hive.Hive, a stale read
// of this node's copy) or a read transaction (*hive.Reader, consistent
// across several records).
type Reader interface {
	Get(path string) (hive.Key, error)
	GetValue(path, name string) (hive.Value, error)
}

// Root is the reserved subtree, which clients may read but not change.
const Root = hive.ReservedKey

// IdentityOps record a new cluster's name and id on the reserved root.
func IdentityOps(name, clusterID string) []hive.Op {
	return []hive.Op{
		hive.SetValue(Root, hive.StringValue("Name", name)),
		hive.SetValue(Root, hive.StringValue("Id", clusterID)),
	}
}
