package cluster

// A join that survives a restart: the members to ask are recorded in the
// data directory before the node sets its old state aside or takes the
// cluster's identity, and the record goes once the cluster added it.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/fsutil"
)

// JoiningFile names the record of a join not finished yet: the API
// addresses of the members to ask, one per line.
const JoiningFile = "joining"

// RecordJoin records, durably, that this node is joining the cluster of the
// members at addrs: a node killed before the cluster added it asks them
// again at its next start (PendingJoin), whatever its flags say.
func (s *Service) RecordJoin(addrs []string) error {
	if err := fsutil.WriteFileAtomic(filepath.Join(s.cfg.DataDir, JoiningFile), strings.NewReader(strings.Join(addrs, "\n"))); err != nil {
		return fmt.Errorf("record the join: %w", err)
	}
	return nil
}

// PendingJoin returns the members a join that did not finish was to ask, or
// nil.
func (s *Service) PendingJoin() []string {
	b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, JoiningFile))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// JoinDone removes the record of a join: it finished, or was refused.
func (s *Service) JoinDone() error {
	if err := os.Remove(filepath.Join(s.cfg.DataDir, JoiningFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clear the record of the join: %w", err)
	}
	return fsutil.SyncDir(s.cfg.DataDir)
}
