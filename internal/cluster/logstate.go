package cluster

// What a stopped node's consensus log holds, read offline: the hive commits
// applied entries in groups, so the hive of a node that crashed may lack
// the last entries of its log until the node starts and replays them.

import (
	"fmt"

	"github.com/clusterkeep/clusterkeep/internal/consensuslog"
)

// UnappliedNote says, for an offline read of a stopped node's hive that has
// applied entries up to applied, whether the node's consensus log holds
// later entries; "" when it does not (or cannot tell).
func UnappliedNote(dataDir string, applied uint64) string {
	last, err := consensuslog.LastIndex(dataDir, applied)
	if err != nil || last <= applied {
		return ""
	}
	return fmt.Sprintf("the node's consensus log holds entries up to index %d, its hive has applied up to %d: "+
		"this offline read may miss changes the cluster committed (the node replays them when it starts)", last, applied)
}
