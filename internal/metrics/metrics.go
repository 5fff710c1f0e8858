// Package metrics is an agent's Prometheus metrics: its own registry (not
// the process-wide default), the collectors that read the node's state at
// scrape time (consensus, hive, membership, the shadow-copy coordinator's
// sessions, the resource groups' placement records), the few figures that
// must be observed as they happen (write latency), and the Go runtime and
// process collectors.
//
// Every name follows the Prometheus conventions: clusterkeep_ prefix, base
// units (_seconds, _bytes), _total for counters.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/clusterkeep/clusterkeep/internal/version"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric of clusterkeep.
const Namespace = "clusterkeep"

// memberTimeout bounds asking the members for their states in one scrape.
const memberTimeout = 3 * time.Second

// ClusterSource is what the state collector reads of the cluster service
// (*cluster.Service is one): the node's own view and raft's figures.
type ClusterSource interface {
	Status() wire.LocalStatus
	Stats() cluster.Stats
}

// Sources are what the state collector reads at scrape time.
type Sources struct {
	Cluster ClusterSource
	Shadow  *shadow.Coordinator
	// Members, when set, counts the cluster's members and those Up, as
	// this node sees them (it asks each member).
	Members func(ctx context.Context) (total, up int, err error)
	// Groups, when set, reports the resource groups from their records
	// in this node's hive.
	Groups GroupSource
}

// Metrics is one agent's registry and the metrics observed as they happen.
type Metrics struct {
	reg          *prometheus.Registry
	writeSeconds prometheus.Histogram
	writeErrors  prometheus.Counter
}

// New returns a registry holding the Go runtime and process collectors and
// the write-latency metrics; Attach adds the node's state.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "hive", Name: "write_duration_seconds",
			Help:    "Time a client write took to be committed by the cluster and applied, observed on the leader that handled it.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "hive", Name: "write_errors_total",
			Help: "Client writes handled on this node as leader that failed (precondition failed, invalid, or not committed).",
		}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.writeSeconds, m.writeErrors)
	return m
}

// ObserveWrite records a client write the leader handled (cluster.Config.OnApply).
func (m *Metrics) ObserveWrite(d time.Duration, err error) {
	m.writeSeconds.Observe(d.Seconds())
	if err != nil {
		m.writeErrors.Inc()
	}
}

// Attach adds the collectors of the node's state.
func (m *Metrics) Attach(src Sources) error {
	if err := m.reg.Register(newStateCollector(src)); err != nil {
		return err
	}
	if src.Groups == nil {
		return nil
	}
	return m.reg.Register(newGroupCollector(src.Groups))
}

// Register adds another collector: the hook for parts that keep figures of
// their own (backup targets, schedules).
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Registry is the agent's registry (for tests and other exporters).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text (or negotiated) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// desc makes a metric's description.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
}

// Raft states as the raft_state metric labels them ("None": in no cluster).
var raftStates = []string{"Leader", "Follower", "Candidate", "Shutdown", "None"}

// stateCollector reads the node's state at every scrape.
type stateCollector struct {
	src Sources

	info, raftState, term, commit, applied, last, isLeader, voter, leaderChanges *prometheus.Desc
	hiveBytes, seq, writesApplied, writesRejected, snapshotsInstalled            *prometheus.Desc
	generation, members, membersUp                                               *prometheus.Desc
	sessionsStarted, sessionsCompleted, sessionsFailed                           *prometheus.Desc
	backupLastTime, backupLastBytes, backupLastSeconds, backupLastSuccess        *prometheus.Desc
	targetLastTime, targetLastBytes, targetLastSeconds, targetLastSuccess        *prometheus.Desc
	restoreEvents, restorePending                                                *prometheus.Desc
}

func newStateCollector(src Sources) *stateCollector {
	return &stateCollector{
		src:                src,
		info:               desc("node_info", "The node and its cluster (value 1).", "node", "node_id", "cluster", "cluster_id", "version"),
		raftState:          desc("raft_state", "The node's consensus state: 1 for the current one.", "state"),
		term:               desc("raft_term", "The current consensus term."),
		commit:             desc("raft_commit_index", "The highest log index known to be committed."),
		applied:            desc("raft_applied_index", "The last log index applied to this node's hive."),
		last:               desc("raft_last_log_index", "The last index in this node's consensus log."),
		isLeader:           desc("raft_is_leader", "1 when this node is the leader."),
		voter:              desc("raft_voter", "1 when this node is a voter in the consensus configuration."),
		leaderChanges:      desc("raft_leader_changes_total", "Changes of leader this node observed since it started."),
		hiveBytes:          desc("hive_size_bytes", "Size of this node's hive file (clusdb)."),
		seq:                desc("hive_sequence", "The hive's sequence number: the last committed transaction's."),
		writesApplied:      desc("hive_writes_applied_total", "Transactions committed to this node's hive since the agent started."),
		writesRejected:     desc("hive_writes_rejected_total", "Committed transactions that changed nothing (a precondition failed) since the agent started."),
		snapshotsInstalled: desc("snapshots_installed_total", "Whole hives received from a leader since the agent started, because the entries this node lacked were no longer in the log."),
		generation:         desc("cluster_generation", "The cluster generation (raised by every authoritative restore)."),
		members:            desc("cluster_members", "Members of the cluster, as this node records them."),
		membersUp:          desc("cluster_members_up", "Members in state Up, as this node sees them."),
		sessionsStarted:    desc("shadow_sessions_started_total", "Backup and restore sessions this node's shadow-copy coordinator started.", "kind"),
		sessionsCompleted:  desc("shadow_sessions_completed_total", "Sessions that completed.", "kind"),
		sessionsFailed:     desc("shadow_sessions_failed_total", "Sessions that failed or were aborted.", "kind"),
		backupLastTime:     desc("backup_last_completion_timestamp_seconds", "When the last backup served by this node completed (Unix time)."),
		backupLastBytes:    desc("backup_last_size_bytes", "Size of the snapshot set of the last completed backup."),
		backupLastSeconds:  desc("backup_last_duration_seconds", "Duration of the last completed backup, from start to completion."),
		backupLastSuccess:  desc("backup_last_success", "1 when the last backup served by this node completed, 0 when it failed."),
		targetLastTime:     desc("backup_target_last_completion_timestamp_seconds", "When the last backup to the target that this node served (of those it remembers) completed (Unix time).", "target"),
		targetLastBytes:    desc("backup_target_last_size_bytes", "Size of the snapshot set of the last completed backup to the target that this node served.", "target"),
		targetLastSeconds:  desc("backup_target_last_duration_seconds", "Duration of the last completed backup to the target that this node served.", "target"),
		targetLastSuccess:  desc("backup_target_last_success", "1 when the last backup to the target that this node served completed, 0 when it failed.", "target"),
		restoreEvents:      desc("restore_events_total", "Restore events on this node: sessions started, completed, failed; a staged restore applied at the service's start.", "event"),
		restorePending:     desc("restore_pending", "1 when a restore is staged for the service's next start."),
	}
}

// Describe lists every metric the collector may send (without collecting:
// collecting asks the other members).
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.raftState, c.term, c.commit, c.applied, c.last, c.isLeader, c.voter,
		c.leaderChanges, c.hiveBytes, c.seq, c.writesApplied, c.writesRejected, c.snapshotsInstalled, c.generation, c.members, c.membersUp,
		c.sessionsStarted, c.sessionsCompleted, c.sessionsFailed, c.backupLastTime, c.backupLastBytes, c.backupLastSeconds,
		c.backupLastSuccess, c.targetLastTime, c.targetLastBytes, c.targetLastSeconds, c.targetLastSuccess,
		c.restoreEvents, c.restorePending} {
		ch <- d
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if svc := c.src.Cluster; svc != nil {
		c.collectCluster(ch, svc)
	}
	if c.src.Members != nil {
		ctx, cancel := context.WithTimeout(context.Background(), memberTimeout)
		total, up, err := c.src.Members(ctx)
		cancel()
		if err == nil {
			gauge(ch, c.members, float64(total))
			gauge(ch, c.membersUp, float64(up))
		}
	}
	if c.src.Shadow != nil {
		c.collectShadow(ch, c.src.Shadow.History())
	}
}

func (c *stateCollector) collectCluster(ch chan<- prometheus.Metric, svc ClusterSource) {
	st, stats := svc.Status(), svc.Stats()
	gauge(ch, c.info, 1, st.NodeName, st.NodeID, st.ClusterName, st.ClusterID, version.Version)
	state := st.RaftState
	if state == "" {
		state = "None"
	}
	for _, s := range raftStates {
		gauge(ch, c.raftState, b2f(s == state), s)
	}
	gauge(ch, c.term, float64(stats.Term))
	gauge(ch, c.commit, float64(st.Commit))
	gauge(ch, c.applied, float64(st.Applied))
	gauge(ch, c.last, float64(st.LastIndex))
	gauge(ch, c.isLeader, b2f(state == "Leader"))
	gauge(ch, c.voter, b2f(st.Voter))
	counter(ch, c.leaderChanges, float64(stats.LeaderChanges))
	gauge(ch, c.hiveBytes, float64(stats.HiveBytes))
	gauge(ch, c.seq, float64(st.Seq))
	counter(ch, c.writesApplied, float64(stats.WritesApplied))
	counter(ch, c.writesRejected, float64(stats.WritesRejected))
	counter(ch, c.snapshotsInstalled, float64(stats.SnapshotsInstalled))
	gauge(ch, c.generation, float64(st.Generation))
	gauge(ch, c.restorePending, b2f(st.RestorePending != ""))
	counter(ch, c.restoreEvents, b2f(stats.RestoreAppliedAtStart), "applied_at_start")
}

func (c *stateCollector) collectShadow(ch chan<- prometheus.Metric, h shadow.History) {
	for _, kind := range []string{shadow.KindBackup, shadow.KindRestore} {
		n := h.Counts[kind]
		counter(ch, c.sessionsStarted, float64(n.Started), kind)
		counter(ch, c.sessionsCompleted, float64(n.Completed), kind)
		counter(ch, c.sessionsFailed, float64(n.Failed), kind)
	}
	r := h.Counts[shadow.KindRestore]
	counter(ch, c.restoreEvents, float64(r.Started), "started")
	counter(ch, c.restoreEvents, float64(r.Completed), "completed")
	counter(ch, c.restoreEvents, float64(r.Failed), "failed")
	if last := h.LastBackup; last != nil {
		gauge(ch, c.backupLastSuccess, b2f(last.Result == shadow.ResultCompleted))
	}
	if ok := h.LastCompletedBackup; ok != nil {
		gauge(ch, c.backupLastTime, float64(ok.Ended.UnixNano())/1e9)
		gauge(ch, c.backupLastBytes, float64(ok.Bytes))
		gauge(ch, c.backupLastSeconds, ok.Duration().Seconds())
	}
	// Per target, from the sessions this node remembers (the requester
	// names its target; older requesters do not).
	last, lastOK := map[string]shadow.SessionRecord{}, map[string]shadow.SessionRecord{}
	for _, r := range h.Recent {
		if r.Kind != shadow.KindBackup || r.Target == "" || r.Ended.IsZero() {
			continue
		}
		if p, seen := last[r.Target]; !seen || r.Ended.After(p.Ended) {
			last[r.Target] = r
		}
		if p, seen := lastOK[r.Target]; r.Result == shadow.ResultCompleted && (!seen || r.Ended.After(p.Ended)) {
			lastOK[r.Target] = r
		}
	}
	for t, r := range last {
		gauge(ch, c.targetLastSuccess, b2f(r.Result == shadow.ResultCompleted), t)
	}
	for t, r := range lastOK {
		gauge(ch, c.targetLastTime, float64(r.Ended.UnixNano())/1e9, t)
		gauge(ch, c.targetLastBytes, float64(r.Bytes), t)
		gauge(ch, c.targetLastSeconds, r.Duration().Seconds(), t)
	}
}
