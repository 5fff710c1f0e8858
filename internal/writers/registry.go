package writers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	bolt "go.etcd.io/bbolt"
)

// The Registry writer's identity.
const (
	RegistryName      = "Registry"
	RegistryID        = "afbab4a2-367d-4d15-a586-71dbb18f8485"
	RegistryComponent = "NodeRegistry"
)

// Registry is the writer of the node registry (node.db). The file is tiny
// and opened only for moments, so the checkpoint is a copy held in memory,
// taken at Freeze from a read transaction.
type Registry struct {
	shadow.Base
	dataDir string

	mu   sync.Mutex
	data []byte
}

// NewRegistry returns the writer of the registry in dataDir.
func NewRegistry(dataDir string) *Registry { return &Registry{dataDir: dataDir} }

// Identify describes the writer.
func (w *Registry) Identify(context.Context) (shadow.WriterMetadata, error) {
	id, err := noderegistry.Load(w.dataDir)
	if err != nil {
		return shadow.WriterMetadata{}, err
	}
	return RegistryMetadata(id.NodeID), nil
}

// RegistryMetadata is the Registry writer's metadata document on nodeID.
func RegistryMetadata(nodeID string) shadow.WriterMetadata {
	return shadow.WriterMetadata{
		Name: RegistryName, ID: RegistryID, InstanceID: nodeID, UsageType: shadow.UsageBootableSystemState,
		RestoreMethod: shadow.RestoreStopStart, Service: ServiceName,
		Components: []shadow.Component{{Name: RegistryComponent, Type: shadow.ComponentDatabase, Streams: []string{noderegistry.FileName}}},
	}
}

// ReadRegistry returns a consistent copy of the registry file in dataDir.
func ReadRegistry(dataDir string) ([]byte, error) {
	db, err := bolt.Open(noderegistry.Path(dataDir), 0o600, &bolt.Options{ReadOnly: true, Timeout: 5e9})
	if err != nil {
		return nil, fmt.Errorf("open node registry: %w", err)
	}
	defer db.Close()
	var buf bytes.Buffer
	err = db.View(func(tx *bolt.Tx) error { _, err := tx.WriteTo(&buf); return err })
	return buf.Bytes(), err
}

// Freeze copies the registry.
func (w *Registry) Freeze(context.Context) error {
	data, err := ReadRegistry(w.dataDir)
	if err != nil {
		return shadow.Retryable(err)
	}
	w.mu.Lock()
	w.data = data
	w.mu.Unlock()
	return nil
}

// Streams hands over the copy.
func (w *Registry) Streams(context.Context, shadow.Component) ([]shadow.Stream, error) {
	w.mu.Lock()
	data := w.data
	w.mu.Unlock()
	if data == nil {
		return nil, fmt.Errorf("no checkpoint taken")
	}
	return []shadow.Stream{{Name: noderegistry.FileName, Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}}, nil
}

// BackupComplete drops the copy.
func (w *Registry) BackupComplete(ctx context.Context, _ *shadow.BackupComponents) error {
	return w.Abort(ctx)
}

// Abort drops the copy.
func (w *Registry) Abort(context.Context) error {
	w.mu.Lock()
	w.data = nil
	w.mu.Unlock()
	return nil
}
