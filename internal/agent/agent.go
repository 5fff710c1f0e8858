// Package agent runs one node: it opens the cluster service on a data
// directory, serves the cluster API, and creates or joins a cluster when the
// node is in none. It is what `clusterkeep agent` calls; it holds no logic
// of the cluster or of backups itself.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/api"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/metrics"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/clusterkeep/clusterkeep/internal/writers"
)

// ExitStorageFailure is the agent's exit status when its storage failed
// under it (a full disk, a failed fsync): see cluster.Config's
// OnStorageFailure.
const ExitStorageFailure = 75

// Agent is a running node.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	svc   *cluster.Service
	srv   *http.Server
	local *http.Server
	ln    net.Listener
	coord *shadow.Coordinator
	done  chan error
	// joining is the background join, cancelled and awaited by Close.
	joinMu     sync.Mutex
	closed     bool
	cancelJoin context.CancelFunc
	joining    sync.WaitGroup
	// The scheduled backups' runner, stopped by Close.
	stopSchedule context.CancelFunc
	scheduling   sync.WaitGroup
	// metrics serves GET /metrics over plain HTTP (--metrics), if set.
	metrics *http.Server
	// The resource manager: the placement engine and this node's groups.
	engine   *placement.Engine
	roles    *roleRunner
	roleData *rolesStore // the roles and placements, read for both
}

// Start opens the node and serves its API. It returns once the API listens;
// creating or joining a cluster continues in the background.
func Start(ctx context.Context, cfg Config, log *slog.Logger, raftLog io.Writer) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.API)
	if err != nil {
		return nil, fmt.Errorf("listen for the API on %s: %w", cfg.API, err)
	}
	adv := cfg.APIAdvertise
	if adv == "" {
		adv = ln.Addr().String()
	}
	a := &Agent{cfg: cfg, log: log, ln: ln, done: make(chan error, 1)}
	ca, err := cfg.authority()
	if err != nil {
		ln.Close()
		return nil, err
	}
	var metricsLn net.Listener
	if cfg.Metrics != "" {
		if metricsLn, err = net.Listen("tcp", cfg.Metrics); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen for metrics on %s: %w", cfg.Metrics, err)
		}
	}
	closeListeners := func() {
		ln.Close()
		if metricsLn != nil {
			metricsLn.Close()
		}
	}
	reg := metrics.New()
	hb, _ := duration("", cfg.HeartbeatTimeout)
	el, _ := duration("", cfg.ElectionTimeout)
	ll, _ := duration("", cfg.LeaderLease)
	svc, err := cluster.Open(cluster.Config{
		DataDir: cfg.DataDir, NodeName: cfg.Name, RaftBind: cfg.Raft, RaftAdvertise: cfg.RaftAdvertise, APIAddr: adv,
		Logger: log, RaftLog: raftLog, HeartbeatTimeout: hb, ElectionTimeout: el, LeaderLeaseTimeout: ll,
		SnapshotThreshold: cfg.SnapshotThreshold,
		OnStale:           func(api string) { a.startJoin([]string{api}) },
		CreateCA:          ca, JoinSecret: cfg.JoinToken, AdminToken: cfg.AdminToken,
		OnApply: reg.ObserveWrite,
		// Fail-stop, as after any storage failure: never serve on as if
		// the applied entries were safe. The service manager restarts
		// the node (Restart=on-failure), which replays them from its log.
		OnStorageFailure: func(err error) {
			log.Error("stopping: the node cannot store what it applied; it replays it from its consensus log when it starts again", "err", err)
			os.Exit(ExitStorageFailure)
		},
	})
	if err != nil {
		closeListeners()
		return nil, err
	}
	a.svc = svc
	coord, err := a.coordinator()
	if err != nil {
		svc.Close()
		closeListeners()
		return nil, err
	}
	a.coord = coord
	lc, _ := cfg.leaseConfig()
	a.roleData = newRolesStore(svc)
	a.engine = placement.NewEngine(lc, a.roleData, log.With("part", "placement"))
	handler := api.NewServer(svc, coord, log, api.WithMetrics(reg.Handler()), api.WithBackupSource(scheduleRuns{svc}),
		api.WithBackupSource(scheduleSets{svc}), api.WithPeerHistory(a.peerHistory), api.WithPlacement(a.engine))
	if err := errors.Join(reg.Attach(metrics.Sources{Cluster: svc, Shadow: coord, Members: handler.Members, Groups: svc}),
		reg.AttachSchedule(svc.ScheduleRecord), reg.AttachAside(cfg.DataDir)); err != nil {
		coord.Close(ctx)
		svc.Close()
		closeListeners()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	// The HTTP server's own errors (TLS handshakes refused, say) go to the
	// agent's log, not to bare stderr.
	a.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	a.local = &http.Server{Handler: handler.Local(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	serve := map[*http.Server]net.Listener{a.srv: tls.NewListener(ln, svc.Credentials().APIServer())}
	if sock, err := listenSocket(cfg.socket()); err != nil {
		// The TCP API serves everything the socket would; the operator is
		// told, and can set "socket" to a shorter path.
		log.Warn("no local API socket", "err", err)
	} else {
		serve[a.local] = sock
	}
	a.metrics = &http.Server{Handler: metricsOnly(reg.Handler()), ReadHeaderTimeout: 10 * time.Second}
	if metricsLn != nil {
		serve[a.metrics] = metricsLn
		log.Info("serving metrics over plain HTTP", "addr", metricsLn.Addr().String())
	}
	log.Info("agent started", "node", svc.Identity().NodeName, "api", adv, "data_dir", cfg.DataDir)
	if pending := svc.PendingJoin(); len(pending) > 0 {
		// A join killed before the cluster added this node (one that set
		// a stale state aside, or was started with --join) goes on first,
		// with the members it was asking: --create must not make a new
		// cluster of a node that was on its way into one.
		log.Warn("resuming a join that did not finish", "members", strings.Join(pending, ","))
		a.startJoin(pending)
	} else if !svc.Identity().Configured() {
		switch {
		case cfg.Create != "":
			// Serving starts once the cluster's records (its authority
			// and first token) are in place: until then the node could
			// only refuse every caller.
			if err := svc.Create(ctx, cfg.Create); err != nil {
				for _, l := range serve {
					l.Close()
				}
				a.coord.Close(ctx)
				svc.Close()
				return nil, err
			}
		case len(cfg.Join) > 0:
			a.startJoin(cfg.Join)
		default:
			log.Warn("node is in no cluster: start it with --create NAME or --join ADDR")
		}
	}
	for srv, l := range serve {
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.done <- err
			}
		}()
	}
	a.startSchedule()
	if err := a.startRoles(lc); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// coordinator sets up the shadow-copy coordinator with the writers that
// ship and the configured application writers. Snapshot sets a crash left
// behind are removed first.
func (a *Agent) coordinator() (*shadow.Coordinator, error) {
	stage := filepath.Join(a.cfg.DataDir, "shadow")
	if err := os.RemoveAll(stage); err != nil {
		return nil, fmt.Errorf("clear leftover snapshot sets: %w", err)
	}
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return nil, err
	}
	window, _ := duration("", a.cfg.FreezeWindow)
	session, _ := duration("", a.cfg.SessionTimeout)
	c := shadow.NewCoordinator(shadow.Config{StageDir: stage, FreezeWindow: window, SessionTimeout: session, Log: a.log})
	c.Register(writers.NewClusterDB(a.svc, a.barrier))
	c.Register(writers.NewRegistry(a.cfg.DataDir))
	for _, wc := range a.cfg.Writers {
		w, err := writers.NewExec(wc)
		if err != nil {
			return nil, err
		}
		c.Register(w)
	}
	return c, nil
}

// barrier waits until this node's hive holds every change the cluster
// acknowledged before the call: the leader's read index, applied here.
func (a *Agent) barrier(ctx context.Context) error {
	for {
		_, err := a.svc.ReadIndex(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, cluster.ErrNotLeader) {
			var leader string
			if leader, err = a.svc.LeaderAPI(); err == nil {
				var idx uint64
				if idx, err = client.Node(leader, a.nodeCreds()).ReadIndex(ctx); err == nil {
					return a.svc.WaitApplied(ctx, idx)
				}
			}
		}
		if !errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, cluster.ErrNotReady) && !errors.Is(err, cluster.ErrNoLeader) && !errors.Is(err, client.ErrUnavailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consensus barrier: %w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Done reports a fatal serving error.
func (a *Agent) Done() <-chan error { return a.done }

// Close stops serving and closes the node gracefully; it keeps its membership.
func (a *Agent) Close() error {
	// Stop taking requests, close the node (which ends pending watches),
	// then wait for the requests in flight.
	a.joinMu.Lock()
	a.closed = true
	if a.cancelJoin != nil {
		a.cancelJoin()
	}
	a.joinMu.Unlock()
	a.joining.Wait()
	// The groups stop first, while the cluster can still be told.
	a.stopRoles()
	if a.stopSchedule != nil {
		a.stopSchedule()
		a.scheduling.Wait()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stopped := make(chan struct{})
	go func() { a.srv.Shutdown(ctx); a.local.Shutdown(ctx); a.metrics.Shutdown(ctx); close(stopped) }()
	// A backup in progress holds a read of the hive: abort it, or closing
	// the hive would wait for it.
	if err := a.coord.Close(ctx); err != nil {
		a.log.Warn("abort the backup in progress", "err", err)
	}
	err := a.svc.Close()
	<-stopped
	return err
}

// metricsOnly serves h at GET /metrics and nothing else: the plain-HTTP
// metrics listener carries no token, so it serves no other route.
func metricsOnly(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return mux
}
