// Package agent runs one node: it opens the cluster service on a data
// directory, serves the cluster API, and creates or joins a cluster when the
// node is in none. It is what `clusterkeep agent` calls; it holds no logic
// of the cluster or of backups itself.
package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
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
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/dashboard"
	"github.com/clusterkeep/clusterkeep/internal/metrics"
	"github.com/clusterkeep/clusterkeep/internal/placement"
	"github.com/clusterkeep/clusterkeep/internal/retention"
	"github.com/clusterkeep/clusterkeep/internal/schedule"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/clusterkeep/clusterkeep/internal/writers"
	"golang.org/x/sys/unix"
)

// Config is an agent's configuration, from flags or a JSON file whose keys
// are the json names below.
type Config struct {
	DataDir string `json:"data_dir"`
	Name    string `json:"name"`
	// API is the address the cluster API listens on; APIAdvertise, when
	// set, the one recorded for clients and peers (default: API).
	API          string `json:"api"`
	APIAdvertise string `json:"api_advertise,omitempty"`
	// Raft is the peer address; RaftAdvertise as for the API.
	Raft          string `json:"raft"`
	RaftAdvertise string `json:"raft_advertise,omitempty"`
	// Create names a cluster to create when the node is in none.
	Create string `json:"create,omitempty"`
	// Join lists API addresses of members to join when the node is in none.
	Join []string `json:"join,omitempty"`
	// Timing of consensus (Go durations); empty keeps raft's defaults.
	HeartbeatTimeout string `json:"heartbeat_timeout,omitempty"`
	ElectionTimeout  string `json:"election_timeout,omitempty"`
	LeaderLease      string `json:"leader_lease,omitempty"`
	// SnapshotThreshold is how many log entries trigger a raft snapshot.
	SnapshotThreshold uint64 `json:"snapshot_threshold,omitempty"`
	// FreezeWindow bounds how long writers stay frozen in a backup (Go
	// duration, default 60s).
	FreezeWindow string `json:"freeze_window,omitempty"`
	// SessionTimeout aborts a backup or restore whose requester has been
	// silent this long (Go duration, default 60s).
	SessionTimeout string `json:"session_timeout,omitempty"`
	// The group lease (Go durations; see internal/placement): how long a
	// lease holds, how long before its end a node that could not renew it
	// stops its groups, and how often it is renewed. The leader's settings
	// hold for the whole cluster; give every node the same.
	GroupLease       string `json:"group_lease,omitempty"`
	GroupLeaseMargin string `json:"group_lease_margin,omitempty"`
	GroupLeaseRenew  string `json:"group_lease_renew,omitempty"`
	// Writers are the application writers of this node.
	Writers []writers.ExecConfig `json:"writers,omitempty"`

	// JoinToken is the cluster's join secret: a joining node presents it;
	// a creating node makes it the cluster's (default: a new random one).
	// AdminToken is the first API token of a created cluster, with the
	// operator and backup roles (default: a new random one). The creating
	// node writes both to DATA_DIR/join-token and DATA_DIR/admin-token.
	JoinToken  string `json:"join_token,omitempty"`
	AdminToken string `json:"admin_token,omitempty"`
	// CACert and CAKey are PEM files of an authority of the operator's own
	// for a created cluster (default: the cluster makes its own).
	CACert string `json:"ca_cert,omitempty"`
	CAKey  string `json:"ca_key,omitempty"`
	// Socket is the local API socket (default DATA_DIR/api.sock, 0600):
	// whoever can open it may do anything, as root can on the node anyway.
	Socket string `json:"socket,omitempty"`
	// Metrics, when set, is an address where the Prometheus metrics are
	// served over plain HTTP without a token (GET /metrics only), for a
	// scraper on loopback or a private network. The API serves them
	// always, over TLS to the read role.
	Metrics string `json:"metrics,omitempty"`
}

// SocketFile is the local API socket's name in the data directory.
const SocketFile = client.SocketFile

// LoadFile reads a JSON config file, refusing unknown keys.
func LoadFile(path string) (Config, error) {
	var c Config
	f, err := os.Open(path)
	if err != nil {
		return c, fmt.Errorf("read agent config: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("read agent config %s: %w", path, err)
	}
	return c, nil
}

func duration(name, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("agent config: %s %q is not a positive duration", name, s)
	}
	return d, nil
}

// Validate checks the configuration before anything is opened.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("agent config: data_dir (--data-dir) is required")
	case c.API == "":
		return errors.New("agent config: api (--api) is required")
	case c.Raft == "":
		return errors.New("agent config: raft (--raft) is required")
	case c.Create != "" && len(c.Join) > 0:
		return errors.New("agent config: create and join exclude each other")
	}
	addrs := append([]string{c.API, c.Raft}, c.Join...)
	if c.Metrics != "" {
		addrs = append(addrs, c.Metrics)
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("agent config: address %q: %w", a, err)
		}
	}
	for _, d := range [][2]string{{"heartbeat_timeout", c.HeartbeatTimeout}, {"election_timeout", c.ElectionTimeout}, {"leader_lease", c.LeaderLease}, {"freeze_window", c.FreezeWindow}, {"session_timeout", c.SessionTimeout}} {
		if _, err := duration(d[0], d[1]); err != nil {
			return err
		}
	}
	for _, sec := range [][2]string{{"join_token", c.JoinToken}, {"admin_token", c.AdminToken}} {
		if sec[1] != "" {
			if err := security.CheckSecret("agent config: "+sec[0], sec[1]); err != nil {
				return err
			}
		}
	}
	if (c.CACert == "") != (c.CAKey == "") {
		return errors.New("agent config: ca_cert and ca_key (--ca-cert, --ca-key) go together")
	}
	if c.CACert != "" && c.Create == "" {
		return errors.New("agent config: an authority of your own (--ca-cert) is given only when creating a cluster (--create)")
	}
	if _, err := c.leaseConfig(); err != nil {
		return err
	}
	names := map[string]bool{}
	for _, w := range c.Writers {
		if _, err := writers.NewExec(w); err != nil {
			return fmt.Errorf("agent config: %w", err)
		}
		if names[strings.ToLower(w.Name)] || strings.EqualFold(w.Name, writers.ClusterDBName) || strings.EqualFold(w.Name, writers.RegistryName) {
			return fmt.Errorf("agent config: writer name %q used twice", w.Name)
		}
		names[strings.ToLower(w.Name)] = true
	}
	return nil
}

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
	if !svc.Identity().Configured() {
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

// startSchedule runs the scheduled backups' runner: it acts only while this
// node leads.
func (a *Agent) startSchedule() {
	ctx, cancel := context.WithCancel(context.Background())
	a.stopSchedule = cancel
	r := &schedule.Runner{Store: a.svc, Backup: a.scheduledBackup, Log: a.log.With("part", "schedule")}
	a.scheduling.Add(1)
	go func() {
		defer a.scheduling.Done()
		r.Run(ctx)
	}()
}

// scheduledBackup takes a run's backup as `backup create` would, with this
// node's certificate.
func (a *Agent) scheduledBackup(ctx context.Context, c schedule.Config) (schedule.Outcome, error) {
	recipients, err := backupset.ParseRecipients(c.Recipients, nil)
	if err != nil {
		return schedule.Outcome{}, err
	}
	log := a.log.With("part", "schedule")
	res, err := backup.Create(ctx, backup.Options{DataDir: a.cfg.DataDir, To: c.Target, Recipients: recipients,
		Log: log, Client: []client.Option{a.nodeCreds()}})
	if err != nil {
		return schedule.Outcome{}, err
	}
	out := schedule.Outcome{Path: res.Path, Bytes: res.StoredBytes}
	// Retention after each success; prune keeps the newest set that
	// verifies.
	policy := retention.Policy{Last: c.KeepLast, Daily: c.KeepDaily, Weekly: c.KeepWeekly, Monthly: c.KeepMonthly}
	if !policy.Empty() {
		pr, err := backup.Prune(ctx, backup.PruneOptions{Target: c.Target, Policy: policy, Log: log})
		if err != nil {
			// The set is made and verified: the run succeeded, and the
			// next one prunes again (retrying would make another set).
			out.Warning = fmt.Sprintf("prune: %v", err)
			return out, nil
		}
		log.Info("pruned", "kept", len(pr.Kept), "removed", len(pr.Removed))
	}
	return out, nil
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

// startJoin joins the cluster of the members at addrs in the background.
func (a *Agent) startJoin(addrs []string) {
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	if a.closed {
		return
	}
	if a.cancelJoin != nil {
		a.cancelJoin()
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancelJoin = cancel
	a.joining.Add(1)
	go func() {
		defer a.joining.Done()
		a.joinLoop(ctx, addrs)
	}()
}

// joinLoop asks the given members to add this node until one does.
func (a *Agent) joinLoop(ctx context.Context, addrs []string) {
	for attempt := 0; ; attempt++ {
		err := a.joinOnce(ctx, addrs)
		if err == nil {
			a.log.Info("joined cluster", "cluster", a.svc.Identity().ClusterName)
			return
		}
		if errors.Is(err, errNoJoinToken) {
			a.log.Error("cannot join", "err", err)
			return
		}
		if errors.Is(err, cluster.ErrAlreadyMember) || errors.Is(err, client.ErrConflict) {
			a.log.Error("cannot join", "err", err)
			if ferr := a.svc.Forget("join-refused"); ferr != nil {
				a.log.Error("take back the join", "err", ferr)
			}
			return
		}
		if attempt%10 == 0 {
			a.log.Warn("join failed, retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (a *Agent) joinOnce(ctx context.Context, addrs []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	creds := a.svc.Credentials()
	if a.cfg.JoinToken != "" {
		// Learn the cluster's authority from a member that proves it knows
		// the join token, then get this node's certificate from it.
		var last error
		for _, addr := range addrs {
			info, ca, err := client.JoinHello(ctx, addr, a.cfg.JoinToken)
			if err != nil {
				last = err
				continue
			}
			m, err := a.svc.PrepareJoin(info)
			if err != nil {
				return err
			}
			// A retried join may hold its certificate already.
			if !creds.Valid(ca.Raw, m.ID) {
				cert, err := client.RequestCert(ctx, addr, ca, a.cfg.JoinToken, m, creds.PublicKeyDER())
				if err != nil {
					return err
				}
				if !bytes.Equal(cert.CA, ca.Raw) {
					return fmt.Errorf("join through %s: the certificate came with another authority than the one the member proved", addr)
				}
				if err := creds.Install(cert.CA, cert.Cert); err != nil {
					return err
				}
			}
			return a.addSelf(ctx, addrs, m)
		}
		return last
	}
	// No token: a node of the cluster already (one that moved a stale
	// state aside) rejoins with its certificate.
	if _, _, err := creds.Current(); err != nil {
		return fmt.Errorf("%w: joining a cluster needs its join token (--join-token, or %s; the creating node wrote it to DATA_DIR/%s)",
			errNoJoinToken, EnvJoinToken, cluster.JoinTokenFile)
	}
	c, err := client.OpenClusterWith(ctx, addrs, client.WithRetryWindow(5*time.Second), a.nodeCreds())
	if err != nil {
		return err
	}
	ji, err := c.JoinInfo(ctx)
	if err != nil {
		return err
	}
	m, err := a.svc.PrepareJoin(ji)
	if err != nil {
		return err
	}
	return c.AddMember(ctx, m)
}

// addSelf asks the cluster to add this node, proving who it is by its
// certificate.
func (a *Agent) addSelf(ctx context.Context, addrs []string, m cluster.Member) error {
	c, err := client.OpenClusterWith(ctx, addrs, client.WithRetryWindow(5*time.Second), a.nodeCreds())
	if err != nil {
		return err
	}
	return c.AddMember(ctx, m)
}

// nodeCreds makes a client present this node's certificate.
func (a *Agent) nodeCreds() client.Option {
	return client.WithCredentials(client.Credentials{TLS: a.svc.Credentials().Client})
}

// EnvJoinToken and EnvAdminToken are the environment variables the CLI
// reads the agent's secrets from when no flag gives them.
const (
	EnvJoinToken  = "CLUSTERKEEP_JOIN_TOKEN"
	EnvAdminToken = "CLUSTERKEEP_ADMIN_TOKEN"
	EnvCACert     = "CLUSTERKEEP_CA_CERT"
	EnvCAKey      = "CLUSTERKEEP_CA_KEY"
)

var errNoJoinToken = errors.New("no join token")

// maxSocketPath is what a unix socket address holds on Linux (108 with
// the terminating zero).
const maxSocketPath = 107

func (c Config) socket() string {
	if c.Socket != "" {
		return c.Socket
	}
	return filepath.Join(c.DataDir, SocketFile)
}

// authority reads the operator's own authority, if one is configured.
func (c Config) authority() (*security.CA, error) {
	if c.CACert == "" {
		return nil, nil
	}
	cert, err := os.ReadFile(c.CACert)
	if err != nil {
		return nil, fmt.Errorf("agent config: ca_cert: %w", err)
	}
	key, err := os.ReadFile(c.CAKey)
	if err != nil {
		return nil, fmt.Errorf("agent config: ca_key: %w", err)
	}
	ca, err := security.ParseCAPEM(cert, key)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	return ca, nil
}

// listenSocket opens the local API socket, readable and writable by its
// owner only. A socket left by a crashed agent is replaced: the data
// directory's service lock, held by now, proves no other agent uses it.
func listenSocket(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("local API socket: path %s is longer than the %d bytes a unix socket address holds", path, maxSocketPath)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	// The mode is set a moment after the socket appears: the peer's
	// credentials are checked as well, so nobody slips in meanwhile.
	return ownerOnly{ln.(*net.UnixListener)}, nil
}

// ownerOnly accepts connections from the agent's own user and root only.
type ownerOnly struct{ *net.UnixListener }

func (l ownerOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		if uid, err := peerUID(c); err == nil && (uid == 0 || uid == uint32(os.Getuid())) {
			return c, nil
		}
		c.Close()
	}
}

func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

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

// scheduleRuns shows the scheduled backups' runs on the dashboard's
// backups page. A run's set was verified when it was written (backup
// create verifies what it stored before it reports success).
type scheduleRuns struct{ svc *cluster.Service }

func (s scheduleRuns) Name() string {
	cs, _, _, err := s.svc.ScheduleRecord()
	if err != nil || cs == "" {
		return "Scheduled backups: none set"
	}
	c, err := schedule.ParseConfig(cs)
	if err != nil {
		return "Scheduled backups"
	}
	name := fmt.Sprintf("Scheduled backups: %s to %s", c.Spec, c.Target)
	if spec, err := schedule.ParseSpec(c.Spec); err == nil && !c.Paused {
		name += ", next " + spec.Next(time.Now()).Format(time.RFC3339)
	}
	return name
}

func (s scheduleRuns) Backups(context.Context) ([]dashboard.Backup, error) {
	_, ss, _, err := s.svc.ScheduleRecord()
	if err != nil {
		return nil, err
	}
	st, err := schedule.ParseState(ss)
	if err != nil {
		return nil, err
	}
	runs := st.History
	if st.Last.Result == schedule.Running {
		runs = append(runs, st.Last)
	}
	names := map[string]string{}
	if ms, err := s.svc.Members(); err == nil {
		for _, m := range ms {
			names[m.ID] = m.Name
		}
	}
	var out []dashboard.Backup
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		b := dashboard.Backup{ID: r.Slot.Format(time.RFC3339), Kind: "backup", Type: "scheduled", Where: r.Path,
			Started: r.Started, Ended: r.Ended, Result: r.Result, Bytes: r.Bytes, Error: r.Error}
		if n := names[r.Runner]; n != "" && b.Where == "" {
			b.Where = "by " + n
		}
		switch r.Result {
		case schedule.OK:
			b.Result, b.Verified = "completed", "verified"
		case schedule.Failed:
			b.Verified = "—"
		}
		out = append(out, b)
	}
	return out, nil
}
