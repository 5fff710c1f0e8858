package metrics_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/agent"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/security"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape is one parsed answer of /metrics.
type scrape map[string]*dto.MetricFamily

// value finds the sample of name whose labels include the given pairs
// ("k", "v", ...); ok is false when there is none.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	mf := s[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func (s scrape) must(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.value(name, labels...)
	if !ok {
		t.Fatalf("metric %s%v missing", name, labels)
	}
	return v
}

// get fetches and parses url's metrics; token, when set, is sent as a
// bearer token.
func get(ctx context.Context, hc *http.Client, url, token string) (scrape, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("parse %s: %w", url, err)
	}
	return scrape(mfs), resp.StatusCode, nil
}

// The metrics of a three-node cluster, scraped over the TLS API with a
// token and over the plain --metrics listener, change with a write and
// with a backup; the TLS endpoint refuses a caller without a token.
func TestMetricsFollowWritesAndBackups(t *testing.T) {
	nodes := tc.InProcessWith(t, 3, func(i int, cfg *agent.Config) { cfg.Metrics = tc.FreeAddr(t) })
	ctx := tc.Context(t)
	tr := tc.UseTrust(t)
	ca, err := client.LoadCA(tr.CACert)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: security.HTTPTransport(func() (*tls.Config, error) { return security.ClientConfig(ca, nil), nil })}
	overTLS := func(nd *tc.Node) (scrape, error) {
		s, _, err := get(ctx, hc, "https://"+nd.API()+"/metrics", tr.AdminToken)
		return s, err
	}
	plain := func(nd *tc.Node) (scrape, error) {
		s, _, err := get(ctx, http.DefaultClient, "http://"+nd.Cfg.Metrics+"/metrics", "")
		return s, err
	}

	// Without a token the TLS endpoint answers 401; the plain listener
	// serves /metrics and nothing else.
	if _, code, err := get(ctx, hc, "https://"+nodes[0].API()+"/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("TLS /metrics without a token: %d %v, want 401", code, err)
	}
	if resp, err := http.Get("http://" + nodes[0].Cfg.Metrics + "/v1/cluster"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("plain listener serves /v1/cluster: %s, want 404", resp.Status)
	}

	c := tc.Open(t, nodes[0].API())
	info, err := c.GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*tc.Node{}
	for _, nd := range nodes {
		byName[nd.Cfg.Name] = nd
	}
	leader := byName[info.Leader]
	if leader == nil {
		t.Fatalf("no leader in %+v", info)
	}

	before, err := overTLS(leader)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		name   string
		labels []string
		value  float64
	}{
		{"clusterkeep_raft_is_leader", nil, 1},
		{"clusterkeep_raft_state", []string{"state", "Leader"}, 1},
		{"clusterkeep_raft_state", []string{"state", "Follower"}, 0},
		{"clusterkeep_raft_voter", nil, 1},
		{"clusterkeep_cluster_generation", nil, float64(info.Generation)},
		{"clusterkeep_cluster_members", nil, 3},
		{"clusterkeep_cluster_members_up", nil, 3},
		{"clusterkeep_shadow_sessions_started_total", []string{"kind", "backup"}, 0},
		{"clusterkeep_node_info", []string{"node", leader.Cfg.Name, "cluster", "inproc"}, 1},
	} {
		if got := before.must(t, want.name, want.labels...); got != want.value {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.value)
		}
	}
	for _, name := range []string{"clusterkeep_raft_term", "clusterkeep_raft_commit_index", "clusterkeep_raft_applied_index",
		"clusterkeep_raft_last_log_index", "clusterkeep_raft_leader_changes_total", "clusterkeep_hive_size_bytes"} {
		if v := before.must(t, name); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if _, ok := before.value("go_goroutines"); !ok {
		t.Error("no Go runtime metrics")
	}
	if _, ok := before.value("process_resident_memory_bytes"); !ok {
		t.Error("no process metrics")
	}
	if _, ok := before.value("clusterkeep_backup_last_completion_timestamp_seconds"); ok {
		t.Error("a last backup time before any backup")
	}

	// A write: the sequence number and the writes applied move on every
	// node, and the leader observed the write's latency.
	seq, err := c.SetValue(ctx, "Apps/Metrics", wire.Uint32Value("Port", 9400))
	if err != nil {
		t.Fatal(err)
	}
	after, err := overTLS(leader)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.must(t, "clusterkeep_hive_sequence"); got != float64(seq) || got <= before.must(t, "clusterkeep_hive_sequence") {
		t.Errorf("hive_sequence %v after the write of seq %d (before %v)", got, seq, before.must(t, "clusterkeep_hive_sequence"))
	}
	if got, was := after.must(t, "clusterkeep_hive_writes_applied_total"), before.must(t, "clusterkeep_hive_writes_applied_total"); got < was+1 {
		t.Errorf("hive_writes_applied_total %v, was %v", got, was)
	}
	if got, was := after.must(t, "clusterkeep_hive_write_duration_seconds"), before.must(t, "clusterkeep_hive_write_duration_seconds"); got < was+1 {
		t.Errorf("hive_write_duration_seconds count %v, was %v", got, was)
	}
	for _, nd := range nodes {
		tc.Eventually(t, nd.Cfg.Name+"'s sequence over the plain listener", func() error {
			s, err := plain(nd)
			if err != nil {
				return err
			}
			if got := s.must(t, "clusterkeep_hive_sequence"); got != float64(seq) {
				return fmt.Errorf("hive_sequence %v, want %d", got, seq)
			}
			return nil
		})
	}

	// A backup through a follower: its coordinator's counters and the last
	// backup's time, size and duration.
	var follower *tc.Node
	for _, nd := range nodes {
		if nd != leader {
			follower = nd
			break
		}
	}
	start := time.Now()
	res, err := backup.Create(ctx, backup.Options{DataDir: follower.Cfg.DataDir, To: t.TempDir(), Node: follower.Cfg.Name})
	if err != nil {
		t.Fatal(err)
	}
	if res.Node != follower.Cfg.Name {
		t.Fatalf("backup taken on %s, asked for %s", res.Node, follower.Cfg.Name)
	}
	for name, get := range map[string]func(*tc.Node) (scrape, error){"TLS": overTLS, "plain": plain} {
		s, err := get(follower)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct {
			name   string
			labels []string
			value  float64
		}{
			{"clusterkeep_shadow_sessions_started_total", []string{"kind", "backup"}, 1},
			{"clusterkeep_shadow_sessions_completed_total", []string{"kind", "backup"}, 1},
			{"clusterkeep_shadow_sessions_failed_total", []string{"kind", "backup"}, 0},
			{"clusterkeep_shadow_sessions_started_total", []string{"kind", "restore"}, 0},
			{"clusterkeep_backup_last_success", nil, 1},
		} {
			if got := s.must(t, want.name, want.labels...); got != want.value {
				t.Errorf("%s: %s%v = %v, want %v", name, want.name, want.labels, got, want.value)
			}
		}
		if at := s.must(t, "clusterkeep_backup_last_completion_timestamp_seconds"); at < float64(start.Unix()) || at > float64(time.Now().Unix()+1) {
			t.Errorf("%s: last backup completed at %v, the backup ran from %v to now", name, at, start.Unix())
		}
		if n := s.must(t, "clusterkeep_backup_last_size_bytes"); n <= 0 {
			t.Errorf("%s: last backup size %v", name, n)
		}
		if d := s.must(t, "clusterkeep_backup_last_duration_seconds"); d <= 0 {
			t.Errorf("%s: last backup duration %v", name, d)
		}
	}
	// The leader served no backup.
	s, err := overTLS(leader)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.must(t, "clusterkeep_shadow_sessions_started_total", "kind", "backup"); got != 0 {
		t.Errorf("leader's backup sessions: %v, want 0", got)
	}
	if got := s.must(t, "clusterkeep_restore_events_total", "event", "started"); got != 0 {
		t.Errorf("restore events: %v, want 0", got)
	}
}
