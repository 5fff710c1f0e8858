package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/metrics"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
)

// hiveGroups is a node's hive as the group collector reads it: the
// groups' configuration and their placement records, which a test
// rewrites as a leader would.
type hiveGroups struct {
	mu      sync.Mutex
	groups  []roles.Group
	records map[string]string
}

func (h *hiveGroups) Roles() (reserved.Roles, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return reserved.Roles{Version: 1, Groups: append([]roles.Group(nil), h.groups...)}, nil
}

func (h *hiveGroups) Placements() (map[string]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]string{}
	for k, v := range h.records {
		out[k] = v
	}
	return out, nil
}

func (h *hiveGroups) place(group string, r placement.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records[group] = r.Encode()
}

// The group metrics follow a group's placement record as it changes: it
// starts on node2, runs there, fails over to node3 (one failover within
// the period; an older one no longer counts), and is held Failed once it
// failed over beyond its threshold; a group never placed is Offline with
// no owner. Scraped over HTTP and read with the Prometheus text parser.
func TestGroupMetricsFollowTheRecord(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	old := now.Add(-2 * time.Hour) // outside the one-hour period
	recent := now.Add(-time.Minute)
	src := &hiveGroups{records: map[string]string{},
		groups: []roles.Group{
			{Name: "Site", Resources: []string{"web"}, FailoverThreshold: 2, FailoverPeriod: roles.Duration(time.Hour), Wanted: roles.WantedOnline},
			{Name: "spare", Resources: []string{"db"}, FailoverThreshold: 1}, // defaults: offline, 6h
		}}
	m := metrics.New()
	if err := m.Attach(metrics.Sources{Groups: src}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	steps := []struct {
		name      string
		record    placement.Record
		state     string
		owner     string // "" for no owner series
		failovers float64
		last      time.Time // last failover; zero for no series
		held      float64
	}{
		{"being started on node2",
			placement.Record{Epoch: 1, Owner: "id2", OwnerName: "node2", Run: true, State: placement.StatePending, Failovers: []time.Time{old}},
			placement.StatePending, "node2", 0, old, 0},
		{"online on node2",
			placement.Record{Epoch: 1, Owner: "id2", OwnerName: "node2", Run: true, State: placement.StateOnline, Failovers: []time.Time{old}},
			placement.StateOnline, "node2", 0, old, 0},
		{"failed over to node3",
			placement.Record{Epoch: 2, Owner: "id3", OwnerName: "node3", Run: true, State: placement.StateOnline, Failovers: []time.Time{old, recent},
				LastFailure: "node node2 was lost", LastFailureAt: recent},
			placement.StateOnline, "node3", 1, recent, 0},
		{"held after failing over beyond the threshold",
			placement.Record{Epoch: 4, State: placement.StateFailed, Held: "failed over 3 times within 1h0m0s (threshold 2)",
				Failovers: []time.Time{recent, recent.Add(10 * time.Second), now}, LastFailure: "web failed", LastFailureAt: now},
			placement.StateFailed, "", 3, now, 1},
	}
	for _, step := range steps {
		src.place("site", step.record)
		s, _, err := get(ctx, http.DefaultClient, srv.URL, "")
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		for _, st := range []string{placement.StateOnline, placement.StatePending, placement.StateOffline, placement.StateFailed} {
			want := 0.0
			if st == step.state {
				want = 1
			}
			if got := s.must(t, "clusterkeep_group_state", "group", "Site", "state", st); got != want {
				t.Errorf("%s: group_state{state=%s} = %v, want %v", step.name, st, got, want)
			}
		}
		var owners []string
		for _, mm := range s["clusterkeep_group_owner_info"].GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "node" {
					owners = append(owners, l.GetValue())
				}
			}
			if mm.GetGauge().GetValue() != 1 {
				t.Errorf("%s: owner_info %v", step.name, mm)
			}
		}
		switch {
		case step.owner == "" && len(owners) != 0:
			t.Errorf("%s: owners %v, want none", step.name, owners)
		case step.owner != "" && (len(owners) != 1 || owners[0] != step.owner):
			t.Errorf("%s: owners %v, want %s only", step.name, owners, step.owner)
		}
		if got := s.must(t, "clusterkeep_group_failovers", "group", "Site"); got != step.failovers {
			t.Errorf("%s: group_failovers = %v, want %v", step.name, got, step.failovers)
		}
		if mf := s["clusterkeep_group_failovers"]; mf.GetType().String() != "GAUGE" {
			t.Errorf("group_failovers is a %s, want a gauge", mf.GetType())
		}
		if got, ok := s.value("clusterkeep_group_last_failover_timestamp_seconds", "group", "Site"); !ok || got != float64(step.last.Unix()) {
			t.Errorf("%s: last failover %v (reported %v), want %v", step.name, got, ok, step.last.Unix())
		}
		if got := s.must(t, "clusterkeep_group_held", "group", "Site"); got != step.held {
			t.Errorf("%s: group_held = %v, want %v", step.name, got, step.held)
		}
		if !step.record.LastFailureAt.IsZero() {
			if got := s.must(t, "clusterkeep_group_last_failure_timestamp_seconds", "group", "Site"); got != float64(step.record.LastFailureAt.Unix()) {
				t.Errorf("%s: last failure at %v, want %v", step.name, got, step.record.LastFailureAt.Unix())
			}
		}
		for _, want := range []struct {
			name  string
			group string
			value float64
		}{
			{"clusterkeep_group_wanted_online", "Site", 1},
			{"clusterkeep_group_failover_threshold", "Site", 2},
			{"clusterkeep_group_failover_period_seconds", "Site", 3600},
			// A group never placed: Offline, wanted offline, the default period.
			{"clusterkeep_group_wanted_online", "spare", 0},
			{"clusterkeep_group_failovers", "spare", 0},
			{"clusterkeep_group_failover_period_seconds", "spare", roles.DefaultFailoverPeriod.Seconds()},
		} {
			if got := s.must(t, want.name, "group", want.group); got != want.value {
				t.Errorf("%s: %s{group=%s} = %v, want %v", step.name, want.name, want.group, got, want.value)
			}
		}
		if got := s.must(t, "clusterkeep_group_state", "group", "spare", "state", placement.StateOffline); got != 1 {
			t.Errorf("%s: spare's Offline state = %v, want 1", step.name, got)
		}
		if _, ok := s.value("clusterkeep_group_last_failover_timestamp_seconds", "group", "spare"); ok {
			t.Errorf("%s: a last failover for a group never placed", step.name)
		}
		if _, ok := s.value("clusterkeep_group_failovers_total"); ok {
			t.Errorf("%s: a failover counter the record cannot back", step.name)
		}
	}
}
