// Package plan is the plan file of a restore staged for a node's next
// start (DATA_DIR/restore-pending/plan.json): what the restore will do,
// and whether one is pending. It reads no database, so a client asking a
// host's state links neither the hive nor the code that applies a restore
// (internal/staging).
package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
)

// Names inside a data directory.
const (
	// PendingDir holds a staged restore, visible once complete.
	PendingDir = "restore-pending"
	// File is the plan's name inside PendingDir.
	File = "plan.json"
)

// Plan is what a staged restore will do.
type Plan struct {
	ID       string    `json:"id"`
	BackupID string    `json:"backup_id"`
	Backup   string    `json:"backup"` // the set's path, for people
	Staged   time.Time `json:"staged"`
	// Authoritative: the node's consensus state is moved aside and the
	// node starts as a cluster of one at Identity's generation.
	Authoritative bool `json:"authoritative"`
	// Identity is the registry the node gets.
	Identity noderegistry.Identity `json:"identity"`
	// HasClusterDB: the staged directory holds clusdb to install.
	HasClusterDB bool `json:"has_clusdb"`
}

// Pending returns the plan staged in dataDir, or nil.
func Pending(dataDir string) (*Plan, error) {
	raw, err := os.ReadFile(filepath.Join(dataDir, PendingDir, File))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read staged restore: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("read staged restore: %w", err)
	}
	return &p, nil
}
