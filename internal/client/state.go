package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/staging/plan"
)

// NodeClusterState is what GetNodeClusterState finds on a host.
type NodeClusterState string

// The four node cluster states.
const (
	// NotInstalled: no node data on this host.
	NotInstalled NodeClusterState = "NotInstalled"
	// NotConfigured: node data, never part of a cluster, or evicted.
	NotConfigured NodeClusterState = "NotConfigured"
	// NotRunning: a member of a cluster whose cluster service is not running.
	NotRunning NodeClusterState = "NotRunning"
	// Running: a member whose cluster service runs and answers.
	Running NodeClusterState = "Running"
)

// NodeState is GetNodeClusterState's full answer.
type NodeState struct {
	State       NodeClusterState `json:"state"`
	DataDir     string           `json:"data_dir"`
	NodeID      string           `json:"node_id,omitempty"`
	NodeName    string           `json:"node_name,omitempty"`
	ClusterID   string           `json:"cluster_id,omitempty"`
	ClusterName string           `json:"cluster_name,omitempty"`
	Generation  uint64           `json:"generation,omitempty"`
	APIAddr     string           `json:"api_addr,omitempty"`
	// Addr is where this host reaches the node: its local socket when this
	// process may open it (no credentials needed), else APIAddr.
	Addr string `json:"-"`
	// Why explains NotRunning: no service holds the directory, or one does
	// but its API does not answer.
	Why string `json:"why,omitempty"`
	// RestorePending is the backup id of a restore staged for the next
	// start of the service.
	RestorePending string `json:"restore_pending,omitempty"`
}

// GetNodeClusterState reports the node cluster state of the node whose data
// directory is dataDir, from the files there and whether its service
// answers. It works when nothing runs.
func GetNodeClusterState(dataDir string) (NodeClusterState, error) {
	st, err := GetNodeState(context.Background(), dataDir)
	return st.State, err
}

// GetNodeState is GetNodeClusterState with the details.
func GetNodeState(ctx context.Context, dataDir string) (NodeState, error) {
	st := NodeState{DataDir: dataDir}
	id, err := noderegistry.Load(dataDir)
	if errors.Is(err, noderegistry.ErrNotInstalled) {
		st.State = NotInstalled
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("get node cluster state: %w", err)
	}
	st.NodeID, st.NodeName, st.APIAddr, st.Addr = id.NodeID, id.NodeName, id.APIAddr, id.APIAddr
	if p, _ := plan.Pending(dataDir); p != nil {
		st.RestorePending = p.BackupID
	}
	if !id.Configured() {
		st.State = NotConfigured
		return st, nil
	}
	st.ClusterID, st.ClusterName, st.Generation = id.ClusterID, id.ClusterName, id.Generation
	if !noderegistry.ServiceHolds(dataDir) {
		st.State, st.Why = NotRunning, "no cluster service holds the data directory"
		return st, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// The node's own socket needs no credentials (root on the node may
	// ask); without it, the API over TLS with the default credentials.
	if sock := filepath.Join(dataDir, SocketFile); canOpen(sock) {
		st.Addr = unixPrefix + sock
	}
	ls, err := LocalStatus(ctx, st.Addr)
	switch {
	case err != nil:
		st.State, st.Why = NotRunning, fmt.Sprintf("the cluster service holds the data directory but its API at %s does not answer: %v", id.APIAddr, err)
	case ls.NodeID != id.NodeID:
		st.State, st.Why = NotRunning, fmt.Sprintf("%s answers as another node (%s)", id.APIAddr, ls.NodeID)
	case ls.RaftState == "" || ls.RaftState == "Shutdown":
		st.State, st.Why = NotRunning, "the cluster service is not running consensus"
	default:
		st.State = Running
	}
	return st, nil
}

// canOpen reports whether path is a socket this process may connect to.
func canOpen(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeSocket != 0 && syscall.Access(path, 2 /* W_OK */) == nil
}
