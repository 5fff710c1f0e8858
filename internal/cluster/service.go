// Package cluster is the cluster service that runs on every node: it
// replicates the hive through hashicorp/raft, keeps membership (create,
// join, leave, evict), pause state, the leader, and the cluster identity
// (name, id, generation), and fences peers of another cluster or generation
// at the transport handshake.
//
// It serves Go callers inside the agent; the HTTP API is internal/api. It
// never forwards requests to other nodes itself: a caller that gets
// ErrNotLeader asks the leader.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/staging"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Errors callers branch on.
var (
	ErrNotLeader      = errors.New("this node is not the leader")
	ErrNoLeader       = errors.New("the cluster has no leader")
	ErrNotConfigured  = errors.New("this node is not a member of a cluster")
	ErrAlreadyMember  = errors.New("this node is already a member of a cluster")
	ErrUnknownNode    = errors.New("no such node in the cluster")
	ErrEvicted        = errors.New("node was evicted from the cluster")
	ErrNameTaken      = errors.New("node name already used by another member")
	ErrLastMember     = errors.New("cannot remove the last member of the cluster")
	ErrNotReady       = errors.New("leader not yet ready for consistent reads")
	ErrServiceStopped = errors.New("cluster service stopped")
	// ErrUncertain: the change was proposed but the leader lost its place
	// before it learnt the outcome; it may or may not be committed.
	ErrUncertain = errors.New("outcome unknown: leadership was lost after the change was proposed")
)

// Config configures a Service.
type Config struct {
	DataDir  string
	NodeName string // used when the data directory is new
	// RaftBind is the peer address to listen on; RaftAdvertise, when set,
	// the one peers dial. APIAddr is the node's advertised API address,
	// recorded so clients and peers can find it.
	RaftBind      string
	RaftAdvertise string
	APIAddr       string
	Logger        *slog.Logger
	// RaftLog receives raft's own log lines (warnings and errors); default stderr.
	RaftLog io.Writer

	// Timing; zero values take raft's defaults.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	SnapshotThreshold  uint64
	// SnapshotInterval is how often raft checks whether to snapshot.
	SnapshotInterval time.Duration
	TrailingLogs     uint64
	// ApplyTimeout bounds how long a write waits to be committed.
	ApplyTimeout time.Duration
	// OnStale is told the API address of a member of a higher generation
	// of this node's cluster, after this node moved its own state aside:
	// the agent rejoins there.
	OnStale func(apiAddr string)
}

// Service is one node's cluster service.
type Service struct {
	cfg  Config
	log  *slog.Logger
	lock *noderegistry.Lock
	hive *hive.Hive

	mu       sync.RWMutex
	id       noderegistry.Identity
	raft     *raft.Raft
	fsm      *fsm
	stream   *StreamLayer
	trans    *raft.NetworkTransport
	store    *raftboltdb.BoltStore
	notifyCh chan bool
	// readyTerm is the term in which this node, as leader, applied its
	// no-op: only in that term may it serve reads by read index.
	readyTerm uint64
	opMu      sync.Mutex // serializes start, stop, forget and close
	stopped   bool
	evicted   bool // a peer told this node it was evicted
	stale     bool // moving aside a state of an older generation
	stopWG    sync.WaitGroup
	stopCh    chan struct{}
}

// Open locks the data directory, reads or creates the node registry, opens
// the hive and, when the node is a member of a cluster, starts raft.
func Open(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RaftLog == nil {
		cfg.RaftLog = os.Stderr
	}
	if cfg.ApplyTimeout == 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("open cluster service: no data directory given")
	}
	lock, err := noderegistry.LockService(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open cluster service: %w", err)
	}
	s := &Service{cfg: cfg, log: cfg.Logger, lock: lock}
	fail := func(err error) (*Service, error) {
		if s.hive != nil {
			s.hive.Close()
		}
		lock.Unlock()
		return nil, err
	}
	if done, err := finishForget(cfg.DataDir); err != nil {
		return fail(fmt.Errorf("open cluster service: finish moving cluster data aside: %w", err))
	} else if done {
		s.log.Warn("finished moving cluster data aside, interrupted before")
	}
	// A restore staged while the service ran is applied now, before the
	// hive and raft open (RESTORE_AT_REBOOT).
	if p, err := staging.Apply(cfg.DataDir); err != nil {
		return fail(fmt.Errorf("open cluster service: %w", err))
	} else if p != nil {
		s.log.Warn("applied the restore staged for this start", "backup", p.BackupID, "authoritative", p.Authoritative, "generation", p.Identity.Generation)
	}
	id, err := noderegistry.Load(cfg.DataDir)
	switch {
	case errors.Is(err, noderegistry.ErrNotInstalled):
		name := cfg.NodeName
		if name == "" {
			name, _ = os.Hostname()
		}
		if err := validateClusterName(name); err != nil {
			return fail(fmt.Errorf("open cluster service: node %w", err))
		}
		id = noderegistry.Identity{NodeID: uuid.NewString(), NodeName: name, Created: time.Now().UTC()}
	case err != nil:
		return fail(err)
	}
	if cfg.NodeName != "" && id.NodeName != cfg.NodeName {
		return fail(fmt.Errorf("open cluster service: data directory %s belongs to node %q, not %q", cfg.DataDir, id.NodeName, cfg.NodeName))
	}
	id.APIAddr = cfg.APIAddr
	if err := noderegistry.Save(cfg.DataDir, id); err != nil {
		return fail(err)
	}
	s.id = id
	if s.hive, err = hive.Open(filepath.Join(cfg.DataDir, hive.FileName), hive.Options{}); err != nil {
		return fail(err)
	}
	if id.Configured() {
		if err := s.startRaft(id.Bootstrap); err != nil {
			return fail(err)
		}
		if id.Bootstrap {
			// An authoritative restore: this node now is a cluster of one
			// at a new generation.
			if err := s.sealRestoredState(); err != nil {
				s.Close()
				return nil, fmt.Errorf("open cluster service: start the restored cluster: %w", err)
			}
			if s.id, err = noderegistry.Update(cfg.DataDir, func(i *noderegistry.Identity) error { i.Bootstrap = false; return nil }); err != nil {
				s.Close()
				return nil, err
			}
			s.log.Warn("started as a cluster of one after an authoritative restore", "cluster", id.ClusterName, "generation", id.Generation)
		}
	}
	return s, nil
}

// sealRestoredState makes the restored hive the start of the new
// consensus history: this node records itself as it is today, then takes
// a consensus snapshot and drops the log before it, so that every member
// that joins receives the whole restored state as that snapshot (the log
// of the new history does not hold it).
func (s *Service) sealRestoredState() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := s.WaitLeader(ctx)
		if err == nil {
			self := s.self()
			txn := hive.Txn{Ops: append(nodeRecordOps(self), hive.SetValue(namePath(self.Name), hive.StringValue("Id", self.ID)))}
			if _, err = s.applySystem(ctx, txn); err == nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("record this node: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	r, err := s.currentRaft()
	if err != nil {
		return err
	}
	rc := r.ReloadableConfig()
	keep := rc.TrailingLogs
	rc.TrailingLogs = 0
	if err := r.ReloadConfig(rc); err != nil {
		return err
	}
	err = r.Snapshot().Error()
	rc.TrailingLogs = keep
	if rerr := r.ReloadConfig(rc); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("snapshot the restored state: %w", err)
	}
	return nil
}

// Hive is the node's local cluster database. Reads from it are stale reads.
func (s *Service) Hive() *hive.Hive { return s.hive }

// Identity returns the node's registry identity.
func (s *Service) Identity() noderegistry.Identity {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.id
}

func (s *Service) peerIdentity() PeerIdentity {
	id := s.Identity()
	return PeerIdentity{ClusterID: id.ClusterID, Generation: id.Generation, NodeID: id.NodeID, APIAddr: s.cfg.APIAddr}
}

// admit refuses evicted nodes.
func (s *Service) admit(p PeerIdentity) (string, string) {
	if _, err := s.hive.Get(evictedPath(p.NodeID)); err == nil {
		return RefusedEvicted, fmt.Sprintf("node %s was evicted from this cluster", p.NodeID)
	}
	return "", ""
}

func (s *Service) onRefused(e *RefusedError) {
	switch e.Reason {
	case RefusedEvicted:
		s.noticeEvicted("peer " + e.Peer + " refused this node as evicted")
	case RefusedGeneration:
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

func (s *Service) raftDir() string { return filepath.Join(s.cfg.DataDir, "raft") }

// startRaft starts raft on the registry's identity; bootstrap makes this
// node a cluster of one.
func (s *Service) startRaft(bootstrap bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrServiceStopped
	}
	if s.raft != nil {
		return nil
	}
	if err := os.MkdirAll(s.raftDir(), 0o700); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	stream, err := NewStreamLayer(s.cfg.RaftBind, s.peerIdentity, s.admit, s.onRefused, s.log)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	// A higher generation of this cluster dialling in means this node's
	// state is stale, as much as being refused by one does.
	stream.higher = s.noticeStale
	if s.cfg.RaftAdvertise != "" {
		stream.advertise = tcpAddr(s.cfg.RaftAdvertise)
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: s.cfg.RaftLog})
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: stream, MaxPool: 4, Timeout: 10 * time.Second, Logger: hlog})
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(s.raftDir(), "raft.db")})
	if err != nil {
		trans.Close()
		return fmt.Errorf("start raft: open log store: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(s.raftDir(), 2, hlog)
	if err != nil {
		trans.Close()
		store.Close()
		return fmt.Errorf("start raft: open snapshot store: %w", err)
	}
	if err := s.catchUpFromSnapshot(snaps); err != nil {
		trans.Close()
		store.Close()
		return fmt.Errorf("start raft: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.id.NodeID)
	rc.Logger = hlog
	rc.NoSnapshotRestoreOnStart = true // the hive is durable on its own
	if s.cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = s.cfg.HeartbeatTimeout
	}
	if s.cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = s.cfg.ElectionTimeout
	}
	if s.cfg.LeaderLeaseTimeout > 0 {
		rc.LeaderLeaseTimeout = s.cfg.LeaderLeaseTimeout
	}
	if s.cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = s.cfg.SnapshotThreshold
	}
	if s.cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = s.cfg.SnapshotInterval
	}
	if s.cfg.TrailingLogs > 0 {
		rc.TrailingLogs = s.cfg.TrailingLogs
	}
	notify := make(chan bool, 8)
	rc.NotifyCh = notify
	f := newFSM(s.hive)
	r, err := raft.NewRaft(rc, f, store, store, snaps, trans)
	if err != nil {
		trans.Close()
		store.Close()
		return fmt.Errorf("start raft: %w", err)
	}
	if bootstrap {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}
		if err := r.BootstrapCluster(cfg).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			r.Shutdown().Error()
			trans.Close()
			store.Close()
			return fmt.Errorf("bootstrap cluster: %w", err)
		}
	}
	s.raft, s.fsm, s.stream, s.trans, s.store, s.notifyCh = r, f, stream, trans, store, notify
	s.readyTerm = 0
	s.stopCh = make(chan struct{})
	s.stopWG.Add(1)
	go s.watchLeadership(r, notify, s.stopCh)
	return nil
}

// catchUpFromSnapshot restores the hive from the newest consensus snapshot
// when the hive is behind it. Raft is told not to re-read snapshots at
// start (the hive is durable on its own), but a snapshot installed from the
// leader is stored before it is applied: a crash in between, or a failed
// replace, leaves the hive behind a snapshot whose entries are compacted
// away, and only the snapshot can bring it forward.
func (s *Service) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	newest := list[0]
	if newest.Index <= s.hive.Applied() {
		return nil
	}
	s.log.Warn("hive is behind the newest consensus snapshot: restoring it", "hive_index", s.hive.Applied(), "snapshot_index", newest.Index)
	_, rc, err := snaps.Open(newest.ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", newest.ID, err)
	}
	defer rc.Close()
	if err := s.hive.Replace(rc); err != nil {
		return fmt.Errorf("restore hive from snapshot %s: %w", newest.ID, err)
	}
	return nil
}

// watchLeadership makes a new leader apply a no-op before it serves reads
// by read index: once it is applied, every entry committed by earlier
// leaders is in the hive.
func (s *Service) watchLeadership(r *raft.Raft, notify chan bool, stop chan struct{}) {
	defer s.stopWG.Done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	self := evictedPath(s.Identity().NodeID)
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			// The leader replicates a node's eviction record to it before
			// it stops replicating to it: a node that sees its own record
			// knows it was evicted.
			if _, err := s.hive.Get(self); err == nil {
				s.noticeEvicted("its eviction record reached it")
			}
		case leader := <-notify:
			s.mu.Lock()
			s.readyTerm = 0
			s.mu.Unlock()
			if !leader {
				continue
			}
			s.log.Info("became leader", "node", s.cfg.NodeName)
			term := r.CurrentTerm()
			b, _ := json.Marshal(command{Noop: true})
			if err := r.Apply(b, s.cfg.ApplyTimeout).Error(); err != nil {
				s.log.Warn("leader no-op failed", "err", err)
				continue
			}
			s.mu.Lock()
			if r.State() == raft.Leader && r.CurrentTerm() == term {
				s.readyTerm = term
			}
			s.mu.Unlock()
		}
	}
}

// stopRaft shuts raft down and releases its files and listener.
func (s *Service) stopRaft() error {
	s.mu.Lock()
	r, trans, store, stop := s.raft, s.trans, s.store, s.stopCh
	s.raft, s.trans, s.store, s.stream = nil, nil, nil, nil
	s.readyTerm = 0
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	err := r.Shutdown().Error()
	close(stop)
	s.stopWG.Wait()
	trans.Close()
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops the service; the node keeps its membership and data.
func (s *Service) Close() error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	err := s.stopRaft()
	if herr := s.hive.Close(); err == nil {
		err = herr
	}
	s.lock.Unlock()
	return err
}

func (s *Service) currentRaft() (*raft.Raft, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.stopped {
		return nil, ErrServiceStopped
	}
	if s.raft == nil {
		return nil, ErrNotConfigured
	}
	return s.raft, nil
}

// Create makes this node a new cluster of one named name.
func (s *Service) Create(ctx context.Context, name string) error {
	if err := validateClusterName(name); err != nil {
		return err
	}
	id := s.Identity()
	if id.Configured() {
		return fmt.Errorf("create cluster %q: %w (%s)", name, ErrAlreadyMember, id.ClusterName)
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	id, err := noderegistry.Update(s.cfg.DataDir, func(i *noderegistry.Identity) error {
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
	txn := hive.Txn{Ops: []hive.Op{
		hive.SetValue(hive.ReservedKey, hive.StringValue("Name", name)),
		hive.SetValue(hive.ReservedKey, hive.StringValue("Id", id.ClusterID)),
	}}
	txn.Ops = append(txn.Ops, nodeRecordOps(Member{ID: id.NodeID, Name: id.NodeName, RaftAddr: s.raftAdvertise(), APIAddr: s.cfg.APIAddr})...)
	txn.Ops = append(txn.Ops, hive.SetValue(namePath(id.NodeName), hive.StringValue("Id", id.NodeID)))
	if _, err := s.applySystem(ctx, txn); err != nil {
		return fmt.Errorf("create cluster %q: record cluster: %w", name, err)
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
type JoinInfo struct {
	ClusterID   string `json:"cluster_id"`
	ClusterName string `json:"cluster_name"`
	Generation  uint64 `json:"generation"`
}

// PrepareJoin records the cluster this node is about to join and starts
// raft without a configuration; the leader then adds it (AddMember).
func (s *Service) PrepareJoin(info JoinInfo) (Member, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	id := s.Identity()
	if id.Configured() {
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
	if _, err := uuid.Parse(m.ID); err != nil {
		return fmt.Errorf("add member: node id %q is not a UUID", m.ID)
	}
	if m.RaftAddr == "" {
		return fmt.Errorf("add member %s: no raft address", m.ID)
	}
	if err := validateClusterName(m.Name); err != nil {
		return fmt.Errorf("add member %s: node %w", m.ID, err)
	}
	if err := (hive.Txn{Ops: nodeRecordOps(m)}).Validate(true); err != nil {
		return fmt.Errorf("add member %s: %w", m.ID, err)
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
	aside := filepath.Join(s.cfg.DataDir, "aside", fmt.Sprintf("%s-%s", time.Now().UTC().Format("20060102T150405.000000000Z"), reason))
	if err := os.MkdirAll(aside, 0o700); err != nil {
		return fmt.Errorf("move cluster data aside: %w", err)
	}
	// The intent is written first: a node that dies half way finishes the
	// job at its next start, rather than starting with half its state.
	if err := fsutil.WriteFileAtomic(filepath.Join(s.cfg.DataDir, forgetMarker), strings.NewReader(aside)); err != nil {
		return fmt.Errorf("move cluster data aside: %w", err)
	}
	var snap strings.Builder
	if err := s.hive.Export(&snap, ""); err == nil {
		os.WriteFile(filepath.Join(aside, "clusdb.export"), []byte(snap.String()), 0o600)
	}
	if err := os.Rename(s.raftDir(), filepath.Join(aside, "raft")); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("move raft data aside: %w", err)
	}
	if err := copyFile(s.hive, filepath.Join(aside, hive.FileName)); err != nil {
		return fmt.Errorf("move hive aside: %w", err)
	}
	if err := s.hive.Replace(emptyHive(s.cfg.DataDir)); err != nil {
		return fmt.Errorf("reset hive: %w", err)
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
	s.log.Warn("cluster data moved aside", "dir", aside, "reason", reason)
	return nil
}

// forgetMarker names the file that records a move aside in progress.
const forgetMarker = "forgetting"

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
	aside := string(raw)
	if err := os.MkdirAll(aside, 0o700); err != nil {
		return false, err
	}
	moves := [][2]string{{filepath.Join(dataDir, "raft"), filepath.Join(aside, "raft")}}
	if _, err := os.Stat(filepath.Join(aside, hive.FileName)); err == nil {
		// The database was copied aside whole; what is in place is that
		// database still, or the empty one that replaced it.
		moves = append(moves, [2]string{filepath.Join(dataDir, hive.FileName), filepath.Join(aside, hive.FileName+".at-restart")})
	} else {
		moves = append(moves, [2]string{filepath.Join(dataDir, hive.FileName), filepath.Join(aside, hive.FileName)})
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

// copyFile copies the hive to dst, whole or not at all.
func copyFile(h *hive.Hive, dst string) error {
	snap, err := h.Snapshot()
	if err != nil {
		return err
	}
	defer snap.Close()
	pr, pw := io.Pipe()
	go func() {
		_, err := snap.WriteTo(pw)
		pw.CloseWithError(err)
	}()
	err = fsutil.WriteFileAtomic(dst, pr)
	pr.Close()
	return err
}

// emptyHive returns the bytes of a new, empty hive file.
func emptyHive(dir string) io.Reader {
	p := filepath.Join(dir, "empty.clusdb")
	os.Remove(p)
	h, err := hive.Open(p, hive.Options{NoSync: true})
	if err != nil {
		return strings.NewReader("")
	}
	snap, _ := h.Snapshot()
	pr, pw := io.Pipe()
	go func() {
		_, err := snap.WriteTo(pw)
		snap.Close()
		h.Close()
		os.Remove(p)
		pw.CloseWithError(err)
	}()
	return pr
}

// SetPaused pauses or resumes a node. Leader only.
func (s *Service) SetPaused(ctx context.Context, nodeID string, paused bool) error {
	m, err := s.Member(nodeID)
	if err != nil {
		return err
	}
	var v uint32
	if paused {
		v = 1
	}
	_, err = s.applySystem(ctx, hive.Txn{
		Conds: []hive.Cond{{Kind: hive.CondKeyExists, Key: nodePath(m.ID)}},
		Ops:   []hive.Op{hive.SetValue(nodePath(m.ID), hive.Uint32Value("Paused", v))},
	})
	return err
}

func (s *Service) leaderRaft() (*raft.Raft, error) {
	r, err := s.currentRaft()
	if err != nil {
		return nil, err
	}
	if r.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	return r, nil
}

// Apply commits a client transaction and returns its sequence number. It
// returns ErrNotLeader on a follower; the caller forwards to the leader.
func (s *Service) Apply(ctx context.Context, t hive.Txn) (uint64, error) {
	if err := t.Validate(false); err != nil {
		return 0, err
	}
	return s.apply(ctx, command{Txn: t})
}

func (s *Service) applySystem(ctx context.Context, t hive.Txn) (uint64, error) {
	return s.apply(ctx, command{Txn: t, System: true})
}

func (s *Service) apply(ctx context.Context, c command) (uint64, error) {
	r, err := s.leaderRaft()
	if err != nil {
		return 0, err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return 0, err
	}
	timeout := s.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	f := r.Apply(b, timeout)
	if err := f.Error(); err != nil {
		return 0, mapApplyErr(err)
	}
	res, ok := f.Response().(*applyResult)
	if !ok {
		return 0, fmt.Errorf("apply: unexpected response %T", f.Response())
	}
	return res.Seq, res.Err
}

// ReadIndex makes a linearizable read safe on this node: it confirms this
// node is still the leader and waits until the hive holds every entry
// committed before the call. Leader only.
func (s *Service) ReadIndex(ctx context.Context) (uint64, error) {
	r, err := s.leaderRaft()
	if err != nil {
		return 0, err
	}
	s.mu.RLock()
	readyTerm, f := s.readyTerm, s.fsm
	s.mu.RUnlock()
	// The read index is only safe in the term whose no-op this leader has
	// applied: the commit index then covers every earlier leader's entries.
	if readyTerm == 0 || r.CurrentTerm() != readyTerm {
		return 0, ErrNotReady
	}
	idx := r.CommitIndex()
	if err := r.VerifyLeader().Error(); err != nil {
		return 0, mapRaftErr(err)
	}
	if r.CurrentTerm() != readyTerm {
		return 0, ErrNotReady
	}
	return idx, f.waitIndex(ctx, idx)
}

// WaitApplied waits until this node's hive holds the entry at idx (a read
// index the leader gave). Every entry a ready leader's read index can name
// reaches the state machine, so the wait ends.
func (s *Service) WaitApplied(ctx context.Context, idx uint64) error {
	s.mu.RLock()
	f := s.fsm
	s.mu.RUnlock()
	if f == nil {
		return ErrNotConfigured
	}
	return f.waitIndex(ctx, idx)
}

// WaitLeader waits until the cluster has a leader known to this node.
func (s *Service) WaitLeader(ctx context.Context) error {
	for {
		r, err := s.currentRaft()
		if err != nil {
			return err
		}
		if addr, _ := r.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for a leader: %w", ErrNoLeader)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// mapRaftErr maps errors of calls that propose nothing, or that raft
// refused before proposing (ErrNotLeader is returned before an entry is
// appended): they are safe to retry elsewhere.
func mapRaftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %v", ErrServiceStopped, err)
	}
	return err
}

// mapApplyErr maps the error of a proposed entry: lost leadership and
// shutdown leave its outcome unknown, and it must not be retried blindly.
func mapApplyErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %v", ErrUncertain, err)
	}
	return err
}

func validateClusterName(n string) error {
	if n == "" || len(n) > 63 {
		return fmt.Errorf("cluster name %q: must be 1 to 63 characters", n)
	}
	for _, r := range n {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("cluster name %q: only letters, digits, '-', '_' and '.' are allowed", n)
		}
	}
	return nil
}
