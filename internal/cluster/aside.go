package cluster

// Moving a node's cluster state aside, kept, when it is evicted, leaves, or
// meets a higher generation of its cluster, and finishing such a move after
// a crash.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/aside"
	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
)

// admit refuses evicted nodes, and nodes that are no member: a
// certificate of the cluster's authority is not enough (a node given one
// to join is no member until it is added). A node that knows no member
// yet (it is joining) admits the members that come to it.
func (s *Service) admit(p PeerIdentity) (string, string) {
	if s.IsEvicted(p.NodeID) {
		return RefusedEvicted, fmt.Sprintf("node %s was evicted from this cluster", p.NodeID)
	}
	if s.IsMember(p.NodeID) || s.inConfiguration(p.NodeID) {
		return "", ""
	}
	if ms, err := s.Members(); err == nil && len(ms) == 0 && !s.hasConfiguration() {
		return "", ""
	}
	return RefusedStranger, fmt.Sprintf("node %s is no member of this cluster", p.NodeID)
}

// inConfiguration reports whether id is a server of the consensus
// configuration this node knows.
func (s *Service) inConfiguration(id string) bool {
	r, err := s.currentRaft()
	if err != nil {
		return false
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id {
			return true
		}
	}
	return false
}

// hasConfiguration reports whether this node knows a consensus
// configuration with another server than itself.
func (s *Service) hasConfiguration() bool {
	r, err := s.currentRaft()
	if err != nil {
		return false
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	self := s.Identity().NodeID
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) != self {
			return true
		}
	}
	return false
}

func (s *Service) onRefused(e *RefusedError) {
	switch e.Reason {
	case RefusedEvicted:
		s.noticeEvicted("peer " + e.Peer + " refused this node as evicted")
	default:
		// A member this node dialled (an address of its own configuration,
		// proven by the cluster's authority) is at a higher generation,
		// whatever it refused this node for (it may not know this node,
		// which joined after the backup it was restored from).
		me := s.Identity()
		if e.Them.ClusterID == me.ClusterID && e.Them.Generation > me.Generation {
			s.noticeStale(e.Them)
		}
	}
}

// noticeStale handles meeting a higher generation of this node's own
// cluster (an authoritative restore happened): this node's state is
// moved aside, kept, and the node rejoins to receive the restored state.
func (s *Service) noticeStale(them PeerIdentity) {
	s.mu.Lock()
	first := !s.stale
	s.stale = true
	s.mu.Unlock()
	if !first {
		return
	}
	s.log.Warn("met a higher generation of this cluster: moving this node's state aside and rejoining", "generation", them.Generation, "peer", them.NodeID, "api", them.APIAddr)
	go func() {
		defer func() {
			s.mu.Lock()
			s.stale = false
			s.mu.Unlock()
		}()
		// The member to rejoin through is recorded before anything moves:
		// a node killed between the move and the join rejoins at its next
		// start, instead of staying in no cluster (or, started with
		// --create, making a cluster of its own).
		if them.APIAddr != "" {
			if err := s.RecordJoin([]string{them.APIAddr}); err != nil {
				s.log.Error("move stale state aside", "err", err)
				return
			}
		}
		if err := s.forget("stale-generation"); err != nil {
			s.log.Error("move stale state aside", "err", err)
			return
		}
		if s.cfg.OnStale != nil && them.APIAddr != "" {
			s.cfg.OnStale(them.APIAddr)
		}
	}()
}

// noticeEvicted moves the cluster data of an evicted node aside, once.
func (s *Service) noticeEvicted(how string) {
	s.mu.Lock()
	first := !s.evicted
	s.evicted = true
	s.mu.Unlock()
	if first {
		s.log.Error("this node was evicted from its cluster; its cluster data is moved aside", "how", how)
		go func() {
			if err := s.forget("evicted"); err != nil {
				s.log.Error("move evicted cluster data aside", "err", err)
			}
		}()
	}
}

// Forget moves this node's cluster data aside and makes it a node of no
// cluster (NotConfigured). Called when the node learns it was evicted.
func (s *Service) Forget(reason string) error { return s.forget(reason) }

func (s *Service) forget(reason string) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.RLock()
	stopped := s.stopped
	s.mu.RUnlock()
	if stopped {
		return ErrServiceStopped
	}
	if !s.Identity().Configured() {
		return nil // forgotten already
	}
	if err := s.stopRaft(); err != nil {
		s.log.Warn("stop raft before moving data aside", "err", err)
	}
	// Everything is moved by rename, as it is: the copy costs no writes
	// and reads offline as any stopped node's (--data-dir).
	dir := aside.NewPath(s.cfg.DataDir, reason, time.Now())
	// The intent is written first: a node that dies half way finishes the
	// job at its next start, rather than starting with half its state (or
	// leaving an empty folder aside).
	if err := fsutil.WriteFileAtomic(filepath.Join(s.cfg.DataDir, forgetMarker), strings.NewReader(dir)); err != nil {
		return fmt.Errorf("move cluster data aside: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("move cluster data aside: %w", err)
	}
	if err := os.Rename(s.raftDir(), filepath.Join(dir, "raft")); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("move raft data aside: %w", err)
	}
	if err := s.hive.MoveAside(filepath.Join(dir, hive.FileName)); err != nil {
		return fmt.Errorf("move hive aside: %w", err)
	}
	id, err := noderegistry.Update(s.cfg.DataDir, func(i *noderegistry.Identity) error {
		i.ClusterID, i.ClusterName, i.Generation = "", "", 0
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.id = id
	s.mu.Unlock()
	os.Remove(filepath.Join(s.cfg.DataDir, forgetMarker))
	fsutil.SyncDir(s.cfg.DataDir)
	s.log.Warn("cluster data moved aside", "dir", dir, "reason", reason)
	return nil
}

// forgetMarker names the file that records a move aside in progress.
const forgetMarker = aside.Marker

// finishForget completes a move aside that a crash interrupted: the raft
// state and the database go to the recorded place (unless they are there
// already), and the node is in no cluster. Called before anything opens.
func finishForget(dataDir string) (bool, error) {
	raw, err := os.ReadFile(filepath.Join(dataDir, forgetMarker))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	dir := string(raw)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	moves := [][2]string{{filepath.Join(dataDir, "raft"), filepath.Join(dir, "raft")}}
	if _, err := os.Stat(filepath.Join(dir, hive.FileName)); err == nil {
		// The database was moved aside; what is in place is the new,
		// empty one made after it, kept too.
		moves = append(moves, [2]string{filepath.Join(dataDir, hive.FileName), filepath.Join(dir, hive.FileName+".at-restart")})
	} else {
		moves = append(moves, [2]string{filepath.Join(dataDir, hive.FileName), filepath.Join(dir, hive.FileName)})
	}
	for _, m := range moves {
		if _, err := os.Stat(m[1]); err == nil {
			continue // moved already
		}
		if err := os.Rename(m[0], m[1]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
	}
	if _, err := noderegistry.Update(dataDir, func(i *noderegistry.Identity) error {
		i.ClusterID, i.ClusterName, i.Generation = "", "", 0
		return nil
	}); err != nil && !errors.Is(err, noderegistry.ErrNotInstalled) {
		return false, err
	}
	os.Remove(filepath.Join(dataDir, forgetMarker))
	return true, fsutil.SyncDir(dataDir)
}
