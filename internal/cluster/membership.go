package cluster

// Membership: creating a cluster, joining one, adding, evicting and pausing members.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/google/uuid"
	"github.com/hashicorp/raft"
)

// Create makes this node a new cluster of one named name.
func (s *Service) Create(ctx context.Context, name string) error {
	if err := validateClusterName(name); err != nil {
		return err
	}
	id := s.Identity()
	if id.Configured() {
		return fmt.Errorf("create cluster %q: %w (%s)", name, ErrAlreadyMember, id.ClusterName)
	}
	ca, joinSecret, adminToken := s.cfg.CreateCA, s.cfg.JoinSecret, s.cfg.AdminToken
	var err error
	if ca == nil {
		if ca, err = security.NewCA(name); err != nil {
			return fmt.Errorf("create cluster %q: %w", name, err)
		}
	}
	for _, sec := range []*string{&joinSecret, &adminToken} {
		if *sec == "" {
			if *sec, err = security.NewSecret(); err != nil {
				return fmt.Errorf("create cluster %q: %w", name, err)
			}
		}
	}
	trust, err := trustOps(ca, joinSecret, adminToken)
	if err != nil {
		return fmt.Errorf("create cluster %q: %w", name, err)
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	// The node's certificate first: raft's transport presents it.
	cert, err := ca.IssueNode(s.creds.PublicKey(), id.NodeID, id.NodeName, s.hosts())
	if err != nil {
		return fmt.Errorf("create cluster %q: %w", name, err)
	}
	if err := s.creds.Install(ca.Cert.Raw, cert); err != nil {
		return fmt.Errorf("create cluster %q: %w", name, err)
	}
	id, err = noderegistry.Update(s.cfg.DataDir, func(i *noderegistry.Identity) error {
		i.ClusterID, i.ClusterName, i.Generation = uuid.NewString(), name, 1
		i.RaftAddr = s.raftAdvertise()
		return nil
	})
	if err != nil {
		return fmt.Errorf("create cluster %q: %w", name, err)
	}
	s.mu.Lock()
	s.id, s.evicted = id, false
	s.mu.Unlock()
	if err := s.startRaft(true); err != nil {
		s.unconfigure()
		return fmt.Errorf("create cluster %q: %w", name, err)
	}
	if err := s.WaitLeader(ctx); err != nil {
		return fmt.Errorf("create cluster %q: %w", name, err)
	}
	txn := hive.Txn{Ops: reserved.IdentityOps(name, id.ClusterID)}
	txn.Ops = append(txn.Ops, nodeRecordOps(Member{ID: id.NodeID, Name: id.NodeName, RaftAddr: s.raftAdvertise(), APIAddr: s.cfg.APIAddr})...)
	txn.Ops = append(txn.Ops, hive.SetValue(namePath(id.NodeName), hive.StringValue("Id", id.NodeID)))
	txn.Ops = append(txn.Ops, trust...)
	if _, err := s.applySystem(ctx, txn); err != nil {
		return fmt.Errorf("create cluster %q: record cluster: %w", name, err)
	}
	for f, secret := range map[string]string{JoinTokenFile: joinSecret, AdminTokenFile: adminToken} {
		if err := writeSecretFile(s.cfg.DataDir, f, secret); err != nil {
			return fmt.Errorf("create cluster %q: %w", name, err)
		}
	}
	s.log.Info("created cluster", "cluster", name, "id", id.ClusterID)
	return nil
}

func (s *Service) raftAdvertise() string {
	if s.cfg.RaftAdvertise != "" {
		return s.cfg.RaftAdvertise
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.stream != nil {
		return s.stream.Addr().String()
	}
	return s.cfg.RaftBind
}

// JoinInfo is what a joining node learns from a member before it joins.
type JoinInfo = wire.JoinInfo

// PrepareJoin records the cluster this node is about to join and starts
// raft without a configuration; the leader then adds it (AddMember).
func (s *Service) PrepareJoin(info JoinInfo) (Member, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	id := s.Identity()
	if id.Configured() {
		if id.ClusterID == info.ClusterID && id.Generation < info.Generation {
			// Not a retried join: this node holds a state the cluster
			// rolled back past. It meets the restored generation through
			// its own raft, sets that state aside and is in no cluster;
			// the join's next try goes on from there.
			return Member{}, fmt.Errorf("join cluster %q: this node holds generation %d and the cluster is at %d: its state is to be set aside first", info.ClusterName, id.Generation, info.Generation)
		}
		if id.ClusterID == info.ClusterID {
			// A retried join: make sure raft runs, then ask again.
			if err := s.startRaft(false); err != nil {
				return Member{}, err
			}
			return s.self(), nil
		}
		return Member{}, fmt.Errorf("join cluster %q: %w (%s)", info.ClusterName, ErrAlreadyMember, id.ClusterName)
	}
	if info.ClusterID == "" || info.Generation == 0 {
		return Member{}, fmt.Errorf("join cluster: the member asked gave no cluster id or generation")
	}
	id, err := noderegistry.Update(s.cfg.DataDir, func(i *noderegistry.Identity) error {
		i.ClusterID, i.ClusterName, i.Generation = info.ClusterID, info.ClusterName, info.Generation
		return nil
	})
	if err != nil {
		return Member{}, err
	}
	s.mu.Lock()
	s.id, s.evicted = id, false
	s.mu.Unlock()
	if err := s.startRaft(false); err != nil {
		s.unconfigure()
		return Member{}, err
	}
	if _, err := noderegistry.Update(s.cfg.DataDir, func(i *noderegistry.Identity) error {
		i.RaftAddr = s.raftAdvertise()
		return nil
	}); err != nil {
		return Member{}, err
	}
	return s.self(), nil
}

// unconfigure takes back a registry change whose raft did not start.
func (s *Service) unconfigure() {
	id, err := noderegistry.Update(s.cfg.DataDir, func(i *noderegistry.Identity) error {
		i.ClusterID, i.ClusterName, i.Generation = "", "", 0
		return nil
	})
	if err != nil {
		s.log.Error("take back registry change", "err", err)
		return
	}
	s.mu.Lock()
	s.id = id
	s.mu.Unlock()
}

func (s *Service) self() Member {
	id := s.Identity()
	return Member{ID: id.NodeID, Name: id.NodeName, RaftAddr: s.raftAdvertise(), APIAddr: s.cfg.APIAddr}
}

// JoinInfo returns what a node needs to prepare a join to this cluster.
func (s *Service) JoinInfo() (JoinInfo, error) {
	id := s.Identity()
	if !id.Configured() {
		return JoinInfo{}, ErrNotConfigured
	}
	return JoinInfo{ClusterID: id.ClusterID, ClusterName: id.ClusterName, Generation: id.Generation}, nil
}

// AddMember adds a prepared node to the cluster. Leader only. Adding a
// node again with the same identity is harmless (a retried join).
func (s *Service) AddMember(ctx context.Context, m Member) error {
	r, err := s.leaderRaft()
	if err != nil {
		return err
	}
	if err := checkNewMember(m); err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	if err := (hive.Txn{Ops: nodeRecordOps(m)}).Validate(true); err != nil {
		return fmt.Errorf("add member %s: %w", m.ID, err)
	}
	// What this node's hive says of the node must be current: a retried
	// join whose first try committed under the previous leader finds
	// itself recorded, instead of its own name taken.
	if _, err := s.ReadIndex(ctx); err != nil {
		return fmt.Errorf("add member %s: %w", m.Name, err)
	}
	if _, err := s.hive.Get(evictedPath(m.ID)); err == nil {
		return fmt.Errorf("add member %s (%s): %w; wipe its data directory to add the machine as a new node", m.Name, m.ID, ErrEvicted)
	}
	// The name index makes names unique inside the transaction itself, so
	// two joins racing for one name cannot both win.
	var conds []hive.Cond
	if old, err := s.Member(m.ID); err == nil {
		if !strings.EqualFold(old.Name, m.Name) || old.RaftAddr != m.RaftAddr {
			return fmt.Errorf("add member %s: %w: it is recorded as %q at %s", m.ID, ErrNameTaken, old.Name, old.RaftAddr)
		}
		conds = append(conds, hive.Cond{Kind: hive.CondValueEquals, Key: namePath(m.Name), Value: &hive.Value{Name: "Id", Type: hive.TypeString, String: m.ID}})
	} else {
		conds = append(conds, hive.Cond{Kind: hive.CondKeyMissing, Key: namePath(m.Name)}, hive.Cond{Kind: hive.CondKeyMissing, Key: nodePath(m.ID)})
	}
	txn := hive.Txn{Conds: conds, Ops: append(nodeRecordOps(m), hive.SetValue(namePath(m.Name), hive.StringValue("Id", m.ID)))}
	if _, err := s.applySystem(ctx, txn); err != nil {
		if errors.Is(err, hive.ErrPreconditionFailed) {
			return fmt.Errorf("add member %q: %w", m.Name, ErrNameTaken)
		}
		return fmt.Errorf("add member %s: record: %w", m.Name, err)
	}
	if err := r.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("add member %s: %w", m.Name, mapRaftErr(err))
	}
	s.log.Info("added member", "node", m.Name, "id", m.ID)
	return nil
}

// RemoveMember evicts a node: its record moves to the evicted list (which
// reaches the node itself, so it knows), it leaves the consensus
// configuration, and its peer connections are refused from then on.
// Leader only. A retry after a lost leader finishes the job.
func (s *Service) RemoveMember(ctx context.Context, nodeID string) error {
	r, err := s.leaderRaft()
	if err != nil {
		return err
	}
	fut := r.GetConfiguration()
	if err := fut.Error(); err != nil {
		return mapRaftErr(err)
	}
	servers := fut.Configuration().Servers
	m, err := s.Member(nodeID)
	if errors.Is(err, ErrUnknownNode) {
		// Recorded as evicted, but maybe still in the configuration.
		for _, srv := range servers {
			if string(srv.ID) == nodeID {
				if _, rerr := s.hive.Get(evictedPath(nodeID)); rerr == nil {
					return mapRaftErr(r.RemoveServer(srv.ID, 0, s.cfg.ApplyTimeout).Error())
				}
			}
		}
	}
	if err != nil {
		return err
	}
	if len(servers) == 1 && string(servers[0].ID) == m.ID {
		return fmt.Errorf("evict %s: %w", m.Name, ErrLastMember)
	}
	txn := hive.Txn{Ops: []hive.Op{
		hive.DeleteKey(nodePath(m.ID)),
		hive.DeleteKey(namePath(m.Name)),
		hive.SetValue(evictedPath(m.ID), hive.StringValue("Name", m.Name)),
		hive.SetValue(evictedPath(m.ID), hive.StringValue("Time", time.Now().UTC().Format(time.RFC3339))),
	}}
	if _, err := s.applySystem(ctx, txn); err != nil {
		return fmt.Errorf("evict %s: record: %w", m.Name, err)
	}
	if err := r.RemoveServer(raft.ServerID(m.ID), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("evict %s: %w", m.Name, mapRaftErr(err))
	}
	s.log.Info("evicted member", "node", m.Name, "id", m.ID)
	return nil
}

// SetPaused pauses or resumes a node. A paused node keeps the groups it
// runs and is given no new one; drain (with paused) has its groups moved
// away as well. Resuming clears both. Leader only.
func (s *Service) SetPaused(ctx context.Context, nodeID string, paused, drain bool) error {
	m, err := s.Member(nodeID)
	if err != nil {
		return err
	}
	var v, d uint32
	if paused {
		v = 1
		if drain {
			d = 1
		}
	}
	_, err = s.applySystem(ctx, hive.Txn{
		Conds: []hive.Cond{{Kind: hive.CondKeyExists, Key: nodePath(m.ID)}},
		Ops: []hive.Op{hive.SetValue(nodePath(m.ID), hive.Uint32Value("Paused", v)),
			hive.SetValue(nodePath(m.ID), hive.Uint32Value("Drain", d))},
	})
	return err
}

func validateClusterName(n string) error { return validateName("cluster", n) }

// validateName checks the name of a cluster, node or token (what names
// it): 1 to 63 letters, digits, '-', '_' and '.'.
func validateName(what, n string) error {
	if n == "" || len(n) > 63 {
		return fmt.Errorf("%w: %s name %q: must be 1 to 63 characters", ErrInvalidInput, what, n)
	}
	for _, r := range n {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("%w: %s name %q: only letters, digits, '-', '_' and '.' are allowed", ErrInvalidInput, what, n)
		}
	}
	return nil
}

// checkNewMember checks what a joining node says of itself.
func checkNewMember(m Member) error {
	if _, err := uuid.Parse(m.ID); err != nil {
		return fmt.Errorf("%w: node id %q is not a UUID", ErrInvalidInput, m.ID)
	}
	if m.RaftAddr == "" {
		return fmt.Errorf("%w: node %s gives no raft address", ErrInvalidInput, m.ID)
	}
	return validateName("node", m.Name)
}
