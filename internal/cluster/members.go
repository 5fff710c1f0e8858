package cluster

import (
	"fmt"
	"net"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
	"github.com/clusterkeep/clusterkeep/internal/staging"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/hashicorp/raft"
)

// Member is a node of the cluster as recorded in the hive, under
// Cluster/Nodes/<id>.
type Member = wire.Member

// The member records' paths and writes are internal/reserved's.
func nodePath(id string) string        { return reserved.NodePath(id) }
func evictedPath(id string) string     { return reserved.EvictedPath(id) }
func namePath(name string) string      { return reserved.NamePath(name) }
func nodeRecordOps(m Member) []hive.Op { return reserved.MemberOps(m) }

// Members lists the recorded members from this node's hive (a stale read),
// marking those in the consensus configuration.
func (s *Service) Members() ([]Member, error) {
	voters := map[string]bool{}
	if r, err := s.currentRaft(); err == nil {
		if f := r.GetConfiguration(); f.Error() == nil {
			for _, srv := range f.Configuration().Servers {
				if srv.Suffrage == raft.Voter {
					voters[string(srv.ID)] = true
				}
			}
		}
	}
	var out []Member
	err := s.hive.View(func(r *hive.Reader) error {
		ms, err := reserved.Members(r)
		for _, m := range ms {
			m.Voter = voters[m.ID]
			out = append(out, m)
		}
		return err
	})
	return out, err
}

// Member finds a member by id or, case-insensitively, by name.
func (s *Service) Member(idOrName string) (Member, error) {
	ms, err := s.Members()
	if err != nil {
		return Member{}, err
	}
	for _, m := range ms {
		if m.ID == idOrName || strings.EqualFold(m.Name, idOrName) {
			return m, nil
		}
	}
	return Member{}, fmt.Errorf("%w: %q", ErrUnknownNode, idOrName)
}

// LocalStatus is this node's own view, served to probes and clients.
type LocalStatus = wire.LocalStatus

// Status returns this node's own view.
func (s *Service) Status() LocalStatus {
	id := s.Identity()
	st := LocalStatus{NodeID: id.NodeID, NodeName: id.NodeName, ClusterID: id.ClusterID, ClusterName: id.ClusterName,
		Generation: id.Generation, Seq: s.hive.Seq(), APIAddr: s.cfg.APIAddr}
	if p, _ := staging.Pending(s.cfg.DataDir); p != nil {
		st.RestorePending = p.BackupID
	}
	s.mu.RLock()
	st.Evicted = s.evicted
	f, r := s.fsm, s.raft
	s.mu.RUnlock()
	if r == nil || f == nil {
		return st
	}
	st.RaftAddr = s.raftAdvertise()
	st.RaftState = r.State().String()
	_, lid := r.LeaderWithID()
	st.LeaderID = string(lid)
	st.Applied = f.Index()
	st.Commit = r.CommitIndex()
	st.LastIndex = r.LastIndex()
	if fut := r.GetConfiguration(); fut.Error() == nil {
		for _, srv := range fut.Configuration().Servers {
			if string(srv.ID) == id.NodeID && srv.Suffrage == raft.Voter {
				st.Voter = true
			}
		}
	}
	return st
}

// LeaderAPI returns the API address of the current leader, as recorded.
func (s *Service) LeaderAPI() (string, error) {
	r, err := s.currentRaft()
	if err != nil {
		return "", err
	}
	_, lid := r.LeaderWithID()
	if lid == "" {
		return "", ErrNoLeader
	}
	if string(lid) == s.Identity().NodeID {
		// This node leads but was asked to forward: it has not finished
		// becoming leader. The caller retries.
		return "", ErrNotReady
	}
	// One value, read on every forwarded request: not the whole member list.
	v, err := s.hive.GetValue(nodePath(string(lid)), "APIAddr")
	if err != nil {
		return "", fmt.Errorf("leader %s: %w: %v", lid, ErrUnknownNode, err)
	}
	return v.String, nil
}

type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

var _ net.Addr = tcpAddr("")
