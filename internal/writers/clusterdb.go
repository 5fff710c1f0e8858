// Package writers holds the writers that ship with clusterkeep: the Cluster
// Database writer (the hive, checkpointed after a consensus barrier), the
// Registry writer (the node registry), and application writers that run
// operator-configured commands around their files.
//
// Writers make data consistent and say how to put it back; they never
// store backups or decide what is backed up.
package writers

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
)

// The Cluster Database writer's identity, as the seed names it.
const (
	ClusterDBName      = "Cluster Database"
	ClusterDBID        = "41e12264-35d8-479b-8e5c-9b23d1dad37e"
	ClusterDBComponent = "ClusterDatabase"
	ClusterDBStream    = hive.FileName
	// ServiceName is the service RESTORE_STOP_START stops and starts.
	ServiceName = "clusterkeep"
)

// Node is what the Cluster Database writer needs of the cluster service:
// the node's identity and its hive.
type Node interface {
	Identity() noderegistry.Identity
	Hive() *hive.Hive
}

// Barrier waits until this node's hive holds every change the cluster
// acknowledged before the call.
type Barrier func(ctx context.Context) error

// ClusterDB is the Cluster Database writer. Its checkpoint is a read
// transaction of the hive begun after a consensus barrier: it holds every
// change acknowledged before the backup began, is the hive at exactly one
// sequence number, and blocks no writer.
type ClusterDB struct {
	shadow.Base
	svc     Node
	barrier Barrier

	mu      sync.Mutex
	snap    *hive.Snapshot
	readers []*io.PipeReader // streams being read from snap
	copying sync.WaitGroup   // their copy goroutines
}

// NewClusterDB returns the writer of svc's hive.
func NewClusterDB(svc Node, barrier Barrier) *ClusterDB {
	return &ClusterDB{svc: svc, barrier: barrier}
}

// Identify describes the writer.
func (w *ClusterDB) Identify(context.Context) (shadow.WriterMetadata, error) {
	return ClusterDBMetadata(w.svc.Identity().NodeID), nil
}

// ClusterDBMetadata is the Cluster Database writer's metadata document on
// the node nodeID (also written for offline backups, taken without it).
func ClusterDBMetadata(nodeID string) shadow.WriterMetadata {
	return shadow.WriterMetadata{
		Name: ClusterDBName, ID: ClusterDBID, InstanceID: nodeID, UsageType: shadow.UsageBootableSystemState,
		RestoreMethod: shadow.RestoreStopStart, Service: ServiceName,
		Components: []shadow.Component{{Name: ClusterDBComponent, Type: shadow.ComponentDatabase, Streams: []string{ClusterDBStream}}},
	}
}

// PrepareForBackup refuses a node in no cluster: it has no cluster state.
func (w *ClusterDB) PrepareForBackup(context.Context, *shadow.BackupComponents) error {
	if !w.svc.Identity().Configured() {
		return fmt.Errorf("node is in no cluster: %w", noderegistry.ErrNotConfigured)
	}
	return nil
}

// Freeze takes the checkpoint: the barrier, then the read transaction.
func (w *ClusterDB) Freeze(ctx context.Context) error {
	if err := w.barrier(ctx); err != nil {
		return shadow.Retryable(fmt.Errorf("consensus barrier: %w", err))
	}
	snap, err := w.svc.Hive().Snapshot()
	if err != nil {
		return err
	}
	w.release()
	w.mu.Lock()
	w.snap = snap
	w.mu.Unlock()
	return nil
}

// Streams hands over the checkpoint as a complete bbolt file.
func (w *ClusterDB) Streams(_ context.Context, _ shadow.Component) ([]shadow.Stream, error) {
	w.mu.Lock()
	snap := w.snap
	w.mu.Unlock()
	if snap == nil {
		return nil, fmt.Errorf("no checkpoint taken")
	}
	id := w.svc.Identity()
	info := map[string]any{
		"seq": snap.Reader().Seq(), "consensus_index": snap.Reader().Applied(),
		"cluster_id": id.ClusterID, "cluster_name": id.ClusterName, "generation": id.Generation,
	}
	return []shadow.Stream{{Name: ClusterDBStream, Size: snap.Size(), Info: info, Open: func() (io.ReadCloser, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.snap != snap {
			return nil, fmt.Errorf("the checkpoint was released")
		}
		pr, pw := io.Pipe()
		w.readers = append(w.readers, pr)
		w.copying.Add(1)
		go func() {
			defer w.copying.Done()
			_, err := snap.WriteTo(pw)
			pw.CloseWithError(err)
		}()
		return pr, nil
	}}}, nil
}

// release ends the checkpoint's read transaction, once no stream of it is
// being copied any more (the readers are closed first, so they stop).
func (w *ClusterDB) release() error {
	w.mu.Lock()
	snap, readers := w.snap, w.readers
	w.snap, w.readers = nil, nil
	w.mu.Unlock()
	if snap == nil {
		return nil
	}
	for _, r := range readers {
		r.CloseWithError(fmt.Errorf("the checkpoint was released"))
	}
	w.copying.Wait()
	return snap.Close()
}

// BackupComplete releases the checkpoint.
func (w *ClusterDB) BackupComplete(context.Context, *shadow.BackupComponents) error {
	return w.release()
}

// Abort releases the checkpoint.
func (w *ClusterDB) Abort(context.Context) error { return w.release() }
