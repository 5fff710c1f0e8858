// Package backup is the backup program: it detects the cluster
// (GetNodeClusterState, OpenCluster, GetClusterInformation), selects a
// node, drives the node's coordinator through the shadow-copy sequence,
// and stores, lists, inspects, verifies and compares backup sets.
//
// It never writes to a cluster: restores are internal/restore.
package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// Errors callers branch on.
var (
	ErrNoCluster   = errors.New("no cluster to back up")
	ErrNoNode      = errors.New("no node qualifies for the backup")
	ErrNodeRefused = errors.New("the node asked for does not qualify")
)

// EnvDataDir names the environment variable of the default data directory
// (the CLI's --data-dir).
const EnvDataDir = "CLUSTERKEEP_DATA_DIR"

// noLocalNode says why this host's data directory gives no cluster: which
// directory was looked at, and what it holds.
func noLocalNode(st client.NodeState, dataDir string) string {
	if st.State == client.NotInstalled {
		return fmt.Sprintf("no node in data directory %s (NotInstalled)", dataDir)
	}
	return fmt.Sprintf("the node in data directory %s is in no cluster (%s)", dataDir, st.State)
}

// Mode is how a backup is taken.
type Mode string

// The modes: through the running cluster, or from a stopped node's files.
const (
	ModeCluster Mode = "cluster"
	ModeOffline Mode = "offline"
)

// Detection is what Detect found.
type Detection struct {
	Mode  Mode
	Local client.NodeState
	// Cluster and Info are set in ModeCluster.
	Cluster *client.Cluster
	Info    wire.ClusterInfo
	// Why says how the mode was decided, for people.
	Why string
}

// Detect follows the seed's first step: GetNodeClusterState on this host;
// Running means a cluster (opened through this node first, so the handle
// survives its service stopping), NotRunning a stand-alone server backed
// up offline. A host with no node needs cluster addresses.
func Detect(ctx context.Context, dataDir string, clusterAddrs []string, opts ...client.Option) (*Detection, error) {
	st, err := client.GetNodeState(ctx, dataDir)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	d := &Detection{Local: st}
	var addrs []string
	switch st.State {
	case client.Running:
		addrs = append([]string{st.Addr}, clusterAddrs...)
		d.Why = fmt.Sprintf("this host's node %s is Running: backing up its cluster", st.NodeName)
	case client.NotRunning:
		if len(clusterAddrs) == 0 {
			d.Mode, d.Why = ModeOffline, fmt.Sprintf("this host's node %s is NotRunning: backing up its files offline, as a stand-alone server", st.NodeName)
			return d, nil
		}
		addrs = clusterAddrs
		d.Why = fmt.Sprintf("this host's node %s is NotRunning; backing up the cluster at %v", st.NodeName, clusterAddrs)
	default:
		if len(clusterAddrs) == 0 {
			return nil, fmt.Errorf("detect: %w: %s; --cluster HOST:PORT[,HOST:PORT] or %s names a cluster to back up from here (or --data-dir, or %s, names this host's node directory)",
				ErrNoCluster, noLocalNode(st, dataDir), client.EnvCluster, EnvDataDir)
		}
		addrs = clusterAddrs
		d.Why = fmt.Sprintf("%s: backing up the cluster at %s, as --cluster or %s names it", noLocalNode(st, dataDir), strings.Join(clusterAddrs, ","), client.EnvCluster)
	}
	c, err := client.OpenClusterWith(ctx, addrs, opts...)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	d.Mode, d.Cluster, d.Info = ModeCluster, c, c.Info()
	return d, nil
}
