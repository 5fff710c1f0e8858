package shadow

import "github.com/clusterkeep/clusterkeep/internal/wire"

// What the cluster API carries of the requester's sequence, so a backup
// program on another host can drive a node's coordinator.

// BackupStarted answers POST /v1/shadow/backups.
type BackupStarted struct {
	ID       string           `json:"id"`
	Writers  []WriterMetadata `json:"writers"`
	Node     wire.LocalStatus `json:"node"`
	Document BackupComponents `json:"document"`
}

// WritersResult answers GET /v1/shadow/writers.
type WritersResult struct {
	Node    string         `json:"node"`
	Writers []WriterStatus `json:"writers"`
}
