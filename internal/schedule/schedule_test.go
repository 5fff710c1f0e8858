package schedule

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestSpecNext(t *testing.T) {
	cases := []struct{ spec, from, want string }{
		{"@every 6h", "2026-11-25T05:59:00Z", "2026-11-25T06:00:00Z"},
		{"@every 6h", "2026-11-25T06:00:00Z", "2026-11-25T12:00:00Z"},
		{"@daily", "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z"},
		{"30 3 * * *", "2026-11-25T03:30:00Z", "2026-11-26T03:30:00Z"},
		{"*/15 * * * *", "2026-11-25T10:07:10Z", "2026-11-25T10:15:00Z"},
		{"0 9-17/4 * * 1-5", "2026-11-27T17:00:00Z", "2026-11-30T09:00:00Z"}, // Friday 17:00 -> Monday 09:00
		{"0 0 1 * *", "2026-12-15T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"0 0 * * 7", "2026-11-25T00:00:00Z", "2026-11-29T00:00:00Z"},  // 7 is Sunday
		{"0 0 13 * 5", "2026-11-25T00:00:00Z", "2026-11-27T00:00:00Z"}, // the 13th or a Friday
		{"0 0 31 2 *", "2026-11-25T00:00:00Z", "0001-01-01T00:00:00Z"}, // never
	}
	for _, c := range cases {
		s, err := ParseSpec(c.spec)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if got := s.Next(at(c.from)); !got.Equal(at(c.want)) {
			t.Errorf("%s after %s: %s, want %s", c.spec, c.from, got.Format(time.RFC3339), c.want)
		}
	}
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *", "5-1 * * * *", "@every 10ms", "@every soon", "@yearly-ish"} {
		if _, err := ParseSpec(bad); !errors.Is(err, ErrBadSpec) {
			t.Errorf("ParseSpec(%q) = %v, want ErrBadSpec", bad, err)
		}
	}
}

func TestDecide(t *testing.T) {
	hourly, _ := ParseSpec("@every 1h")
	cfg := Config{Spec: "@every 1h", Target: "/b"}
	now := at("2026-11-25T10:30:00Z")
	done := func(slot string) State {
		return State{Last: Run{Slot: at(slot), Runner: "a", Started: at(slot), Ended: at(slot).Add(time.Minute), Result: OK}}
	}
	cases := []struct {
		name    string
		cfg     Config
		st      State
		runNow  string
		run     bool
		abandon bool
		slot    string
	}{
		{"first run takes the latest slot", cfg, State{}, "", true, false, "2026-11-25T10:00:00Z"},
		{"nothing due", cfg, done("2026-11-25T10:00:00Z"), "", false, false, ""},
		{"five missed slots are one run", cfg, done("2026-11-25T05:00:00Z"), "", true, false, "2026-11-25T10:00:00Z"},
		{"paused", Config{Spec: "@every 1h", Target: "/b", Paused: true}, done("2026-11-25T05:00:00Z"), "", false, false, ""},
		{"another node's run is left alone while its lease lives", cfg,
			State{Last: Run{Slot: at("2026-11-25T10:00:00Z"), Runner: "b", Started: at("2026-11-25T10:00:01Z"), Heartbeat: at("2026-11-25T10:29:50Z"), Result: Running}}, "", false, false, ""},
		{"a run whose lease expired is abandoned, not run at once", cfg,
			State{Last: Run{Slot: at("2026-11-25T10:00:00Z"), Runner: "b", Started: at("2026-11-25T10:00:01Z"), Heartbeat: at("2026-11-25T10:20:00Z"), Result: Running}}, "", false, true, "2026-11-25T10:00:00Z"},
		{"this node's own unfinished run (it restarted) is abandoned", cfg,
			State{Last: Run{Slot: at("2026-11-25T10:00:00Z"), Runner: "a", Started: at("2026-11-25T10:29:59Z"), Heartbeat: at("2026-11-25T10:29:59Z"), Result: Running}}, "", false, true, "2026-11-25T10:00:00Z"},
		{"a failed run waits for its retry", cfg,
			State{Last: Run{Slot: at("2026-11-25T10:00:00Z"), Result: Failed}, Failures: 1, RetryAt: at("2026-11-25T10:31:00Z")}, "", false, false, ""},
		{"a failed run is retried", cfg,
			State{Last: Run{Slot: at("2026-11-25T10:00:00Z"), Result: Failed}, Failures: 1, RetryAt: at("2026-11-25T10:29:00Z")}, "", true, false, "2026-11-25T10:00:00Z"},
		{"a new slot wins over a retry", cfg,
			State{Last: Run{Slot: at("2026-11-25T09:00:00Z"), Result: Failed}, Failures: 3, RetryAt: at("2026-11-25T11:00:00Z")}, "", true, false, "2026-11-25T10:00:00Z"},
		{"run-now", cfg, done("2026-11-25T10:00:00Z"), "2026-11-25T10:20:00Z", true, false, "2026-11-25T10:30:00Z"},
		{"run-now taken already, whatever the clocks", cfg, State{Last: Run{Slot: at("2026-11-25T10:00:00Z"), Started: at("2026-11-25T10:00:01Z"), Result: OK}, RunNowTaken: "2026-11-25T11:20:00Z"}, "2026-11-25T11:20:00Z", false, false, ""},
	}
	for _, c := range cases {
		a := Decide(c.cfg, hourly, c.st, c.runNow, "a", now)
		if a.Run != c.run || a.Abandon != c.abandon || ((c.run || c.abandon) && !a.Slot.Equal(at(c.slot))) {
			t.Errorf("%s: %+v, want run=%v abandon=%v slot %s", c.name, a, c.run, c.abandon, c.slot)
		}
	}
	if backoff(1) != 30*time.Second || backoff(2) != time.Minute || backoff(20) != 30*time.Minute {
		t.Errorf("backoff: %v %v %v", backoff(1), backoff(2), backoff(20))
	}
}

// memStore is the schedule's record in memory, with the cluster's
// compare-and-swap rule.
type memStore struct {
	mu                 sync.Mutex
	cfg, state, runNow string
	leader             bool
	id                 string
}

func (m *memStore) ScheduleRecord() (string, string, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg, m.state, m.runNow, nil
}

func (m *memStore) SwapScheduleState(_ context.Context, config, old, next string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.leader {
		return errors.New("not the leader")
	}
	if m.state != old || m.cfg != config {
		return errors.New("state changed")
	}
	m.state = next
	return nil
}
func (m *memStore) Leader() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leader
}
func (m *memStore) NodeID() string { return m.id }

func TestRunnerRecordsRunsFailuresAndRetries(t *testing.T) {
	clock := at("2026-11-25T10:30:00Z")
	st := &memStore{cfg: `{"spec":"@every 1h","target":"/b"}`, leader: true, id: "a"}
	fail := true
	var runs int
	r := &Runner{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return clock },
		Backup: func(context.Context, Config) (Outcome, error) {
			runs++
			if fail {
				return Outcome{}, errors.New("disk full")
			}
			return Outcome{Path: "/b/set", Bytes: 42}, nil
		}}
	ctx := context.Background()
	if err := r.Once(ctx); err == nil {
		t.Fatal("a failed run reported no error")
	}
	s, _ := ParseState(st.state)
	if s.Last.Result != Failed || s.Failures != 1 || !s.RetryAt.Equal(clock.Add(30*time.Second)) || s.Last.Error != "disk full" {
		t.Fatalf("after a failure: %+v", s)
	}
	r.Once(ctx) // before the retry time: nothing
	if runs != 1 {
		t.Fatalf("retried before its time: %d runs", runs)
	}
	clock = clock.Add(31 * time.Second)
	fail = false
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	s, _ = ParseState(st.state)
	if runs != 2 || s.Last.Result != OK || s.Failures != 0 || s.Last.Path != "/b/set" || s.Last.Bytes != 42 || len(s.History) != 2 || s.Succeeded != 1 || s.FailedRuns != 1 {
		t.Fatalf("after the retry: runs %d, %+v", runs, s)
	}
	for _, h := range s.History {
		if h.Target != "/b" {
			t.Fatalf("a run does not record its target: %+v", h)
		}
	}
	if c := s.ByTarget["/b"]; c.OK != 1 || c.Failed != 1 || len(s.ByTarget) != 1 {
		t.Fatalf("runs counted per target: %+v, want /b: 1 ok, 1 failed", s.ByTarget)
	}
	// A follower takes nothing.
	st.leader = false
	clock = clock.Add(2 * time.Hour)
	r.Once(ctx)
	if runs != 2 {
		t.Fatal("a follower took a run")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Spec: "@every 1h", Target: "/backups"},
		{Spec: "0 3 * * *", Target: "s3://bucket/cluster", KeepDaily: 7},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, c := range []Config{
		{Spec: "@every 1h", Target: "backups"},
		{Spec: "@every 1h"},
		{Spec: "hourly", Target: "/b"},
		{Spec: "@every 1h", Target: "/b", KeepLast: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
}

// A run stops the moment its node stops leading, and stays recorded as
// running (for the next leader to take once its lease expires): it is
// never recorded as done by a node that no longer leads.
func TestRunStopsWhenLeadershipIsLost(t *testing.T) {
	st := &memStore{cfg: `{"spec":"@every 1h","target":"/b"}`, leader: true, id: "a"}
	started := make(chan struct{})
	r := &Runner{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Backup: func(ctx context.Context, _ Config) (Outcome, error) {
			close(started)
			<-ctx.Done() // a backup that would go on for ever
			return Outcome{}, ctx.Err()
		}}
	go func() {
		<-started
		st.mu.Lock()
		st.leader = false
		st.mu.Unlock()
	}()
	if err := r.Once(context.Background()); err == nil {
		t.Fatal("a run cut short by the loss of leadership reported no error")
	}
	s, _ := ParseState(st.state)
	if s.Last.Result != Running || s.Last.Runner != "a" {
		t.Fatalf("state after the loss of leadership: %+v", s.Last)
	}
}
