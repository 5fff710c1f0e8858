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
	"errors"
	"fmt"
	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/staging"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Errors callers branch on.
var (
	ErrNotLeader      = errors.New("this node is not the leader")
	ErrNoLeader       = errors.New("the cluster has no leader")
	ErrNotConfigured  = noderegistry.ErrNotConfigured
	ErrAlreadyMember  = errors.New("this node is already a member of a cluster")
	ErrUnknownNode    = errors.New("no such node in the cluster")
	ErrEvicted        = errors.New("node was evicted from the cluster")
	ErrNameTaken      = errors.New("node name already used by another member")
	ErrLastMember     = errors.New("cannot remove the last member of the cluster")
	ErrNotReady       = errors.New("leader not yet ready for consistent reads")
	ErrServiceStopped = errors.New("cluster service stopped")
	// ErrInvalidInput: a name, id or address given is not valid (the
	// message says which).
	ErrInvalidInput = errors.New("invalid input")
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

	// Trust of a cluster this node creates: the authority (default: a new
	// one), the join secret and the first admin token (default: new
	// random ones, written to DATA_DIR/join-token and admin-token).
	CreateCA   *security.CA
	JoinSecret string
	AdminToken string

	// OnApply, when set, is told how long each client write this node
	// handled as leader took to commit and apply, and its error.
	OnApply func(d time.Duration, err error)

	// OnStorageFailure, when set, is told that the hive could not commit
	// what the node applied (a full disk, a failed fsync): the node must
	// stop, and a restart replays those entries from the consensus log.
	// The default panics.
	OnStorageFailure func(error)

	// Inmem, when set, carries consensus traffic in memory instead of
	// over TLS sockets (tests; see InmemNetwork).
	Inmem *InmemNetwork
}

// Service is one node's cluster service.
type Service struct {
	cfg  Config
	log  *slog.Logger
	lock *noderegistry.Lock
	hive *hive.Hive
	// creds are the node's TLS credentials (DATA_DIR/tls).
	creds *security.Store

	mu       sync.RWMutex
	id       noderegistry.Identity
	raft     *raft.Raft
	fsm      *fsm
	stream   *StreamLayer
	trans    raftTransport
	store    logStore
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
	counters  counters
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
	// What an earlier version or a looser umask left readable to others
	// (raft's snapshots hold the secrets subtree) becomes the owner's only.
	if err := fsutil.MakePrivate(cfg.DataDir); err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("open cluster service: %w", err)
	}
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
		s.counters.restoredAtOpen.Store(true)
		s.log.Warn("applied the restore staged for this start", "backup", p.BackupID, "authoritative", p.Authoritative, "generation", p.Identity.Generation)
	}
	id, err := noderegistry.Load(cfg.DataDir)
	switch {
	case errors.Is(err, noderegistry.ErrNotInstalled):
		name := cfg.NodeName
		if name == "" {
			name, _ = os.Hostname()
		}
		if err := validateName("node", name); err != nil {
			return fail(fmt.Errorf("open cluster service: %w", err))
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
	if s.hive, err = hive.Open(filepath.Join(cfg.DataDir, hive.FileName), hive.Options{Log: s.log, OnCommitError: cfg.OnStorageFailure}); err != nil {
		return fail(err)
	}
	if s.creds, err = security.OpenStore(cfg.DataDir); err != nil {
		return fail(err)
	}
	if err := s.ensureCert(); err != nil {
		return fail(fmt.Errorf("open cluster service: %w", err))
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
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: s.cfg.RaftLog})
	var stream *StreamLayer
	var trans raftTransport
	if s.cfg.Inmem != nil {
		trans = s.cfg.Inmem.transport(s.cfg.RaftBind)
	} else {
		var err error
		if stream, err = NewStreamLayer(s.cfg.RaftBind, s.creds, s.peerIdentity, s.admit, s.onRefused, s.log); err != nil {
			return fmt.Errorf("start raft: %w", err)
		}
		// A higher generation of this cluster dialling in means this
		// node's state is stale, as much as being refused by one does.
		stream.higher = s.noticeStale
		if s.cfg.RaftAdvertise != "" {
			stream.advertise = tcpAddr(s.cfg.RaftAdvertise)
		}
		trans = &guardedTransport{NetworkTransport: raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: stream, MaxPool: 4, Timeout: 10 * time.Second, Logger: hlog})}
	}
	// A cluster restored authoritatively starts its history at its hive
	// (startHistory); a new cluster's starts at raft's bootstrap entry.
	restored := bootstrap && s.id.Bootstrap
	store, hs, err := s.openConsensusState(hlog, restored, trans.LocalAddr())
	if err != nil {
		trans.Close()
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
	f.counters = &s.counters
	f.storageFailure = s.cfg.OnStorageFailure
	f.beforeReplace = hs.abortStreams
	// The leader reads back each entry it sends to a follower: the newest
	// are kept in memory (as Consul does), so a send is not a read of the log.
	logs, err := raft.NewLogCache(logCacheEntries, store)
	if err != nil {
		trans.Close()
		store.Close()
		return fmt.Errorf("start raft: %w", err)
	}
	r, err := raft.NewRaft(rc, f, logs, store, hs, trans)
	if err != nil {
		trans.Close()
		store.Close()
		return fmt.Errorf("start raft: %w", err)
	}
	if bootstrap && !restored {
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
	s.observeLeaders(r, s.stopCh)
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
			b, _ := encodeCommand(command{Noop: true})
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
	start := time.Now()
	seq, err := s.apply(ctx, command{Txn: t})
	s.observeApply(start, err)
	return seq, err
}

func (s *Service) applySystem(ctx context.Context, t hive.Txn) (uint64, error) {
	return s.apply(ctx, command{Txn: t, System: true})
}

func (s *Service) apply(ctx context.Context, c command) (uint64, error) {
	r, err := s.leaderRaft()
	if err != nil {
		return 0, err
	}
	b, err := encodeCommand(c)
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
