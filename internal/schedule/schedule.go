package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"
)

// Config is a schedule: when, where to, what to keep.
type Config struct {
	Spec   string `json:"spec"`
	Target string `json:"target"`
	// Retention, applied after each successful run (zero: not applied).
	KeepLast    int `json:"keep_last,omitempty"`
	KeepDaily   int `json:"keep_daily,omitempty"`
	KeepWeekly  int `json:"keep_weekly,omitempty"`
	KeepMonthly int `json:"keep_monthly,omitempty"`
	// Recipients encrypt every set (age public keys).
	Recipients []string `json:"recipients,omitempty"`
	Paused     bool     `json:"paused,omitempty"`
}

// Validate checks a configuration before it is recorded.
func (c Config) Validate() error {
	if _, err := ParseSpec(c.Spec); err != nil {
		return err
	}
	if c.Target == "" {
		return errors.New("schedule: no target (--to)")
	}
	if !strings.HasPrefix(c.Target, "s3://") && !filepath.IsAbs(c.Target) {
		return fmt.Errorf("schedule: target %q is a relative path: give an absolute one (a directory on the leader's host) or s3://bucket/prefix", c.Target)
	}
	for _, k := range []int{c.KeepLast, c.KeepDaily, c.KeepWeekly, c.KeepMonthly} {
		if k < 0 {
			return errors.New("schedule: a --keep-* count is negative")
		}
	}
	return nil
}

// Results of a run.
const (
	Running = "running"
	OK      = "ok"
	Failed  = "failed"
)

// Run is one run of the schedule.
type Run struct {
	Slot    time.Time `json:"slot"`   // when it was due
	Runner  string    `json:"runner"` // the node id that took it
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	Result  string    `json:"result"`
	Error   string    `json:"error,omitempty"`
	Path    string    `json:"path,omitempty"` // the set made
	// Bytes is the size of the set's stored files.
	Bytes int64 `json:"bytes,omitempty"`
}

// historyLen is how many runs the state keeps.
const historyLen = 20

// State is the schedule's record of its runs.
type State struct {
	// Last is the run claimed last (it may still run).
	Last Run `json:"last"`
	// Failures counts the failed runs since the last success; RetryAt is
	// when a failed run is tried again.
	Failures    int       `json:"failures,omitempty"`
	RetryAt     time.Time `json:"retry_at,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Succeeded and FailedRuns count every run since the schedule began,
	// whichever node took it.
	Succeeded  int64 `json:"succeeded,omitempty"`
	FailedRuns int64 `json:"failed_runs,omitempty"`
	History    []Run `json:"history,omitempty"`
}

func (st State) encode() string {
	b, _ := json.Marshal(st)
	return string(b)
}

// ParseState reads a recorded state ("" is the empty state).
func ParseState(s string) (State, error) {
	var st State
	if s == "" {
		return st, nil
	}
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return st, fmt.Errorf("read the schedule's state: %w", err)
	}
	return st, nil
}

// ParseConfig reads a recorded configuration.
func ParseConfig(s string) (Config, error) {
	var c Config
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("read the schedule: %w", err)
	}
	return c, nil
}

// Action is what the leader should do now.
type Action struct {
	Run  bool
	Slot time.Time
	Why  string
}

// backoff is how long after its nth failure (n >= 1) a run is retried.
func backoff(n int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < n && d < 30*time.Minute; i++ {
		d *= 2
	}
	return min(d, 30*time.Minute)
}

// Decide says whether the leader (node self, running no run of the
// schedule itself) takes a run now. A run that another node claimed and
// did not finish is taken again: that node is no longer the leader.
func Decide(c Config, spec Spec, st State, runNow time.Time, self string, now time.Time) Action {
	if c.Paused {
		return Action{}
	}
	if st.Last.Result == Running {
		who := "node " + st.Last.Runner
		if st.Last.Runner == self {
			who = "this node (before it restarted)"
		}
		return Action{Run: true, Slot: st.Last.Slot, Why: fmt.Sprintf("the run due at %s, taken by %s, did not finish", st.Last.Slot.Format(time.RFC3339), who)}
	}
	if !runNow.IsZero() && runNow.After(st.Last.Started) {
		return Action{Run: true, Slot: runNow, Why: "asked for (run-now)"}
	}
	if latest := spec.Latest(st.Last.Slot, now); !latest.IsZero() && latest.After(st.Last.Slot) {
		why := "due"
		if !st.Last.Slot.IsZero() && spec.Next(st.Last.Slot).Before(latest) {
			why = "due; the runs missed since " + st.Last.Slot.Format(time.RFC3339) + " are taken as this one"
		}
		return Action{Run: true, Slot: latest, Why: why}
	}
	if st.Last.Result == Failed && !st.RetryAt.IsZero() && !now.Before(st.RetryAt) {
		return Action{Run: true, Slot: st.Last.Slot, Why: fmt.Sprintf("retry %d of the run due at %s", st.Failures, st.Last.Slot.Format(time.RFC3339))}
	}
	return Action{}
}

// Store is the schedule's record in the cluster.
type Store interface {
	// ScheduleRecord reads the configuration, the state and when a run
	// was last asked for ("" when unset).
	ScheduleRecord() (config, state, runNow string, err error)
	// SwapScheduleState replaces old by next only if it is still old.
	SwapScheduleState(ctx context.Context, old, next string) error
	// Leader reports whether this node leads (and may claim runs).
	Leader() bool
	// NodeID is this node's id.
	NodeID() string
}

// Outcome is what a run's backup made.
type Outcome struct {
	Path  string
	Bytes int64
}

// Backup takes one run's backup and applies the retention.
type Backup func(ctx context.Context, c Config) (Outcome, error)

// Runner takes the schedule's runs on the leader.
type Runner struct {
	Store  Store
	Backup Backup
	Log    *slog.Logger
	// Tick is how often the leader looks at the schedule (default 1s).
	Tick time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Run looks at the schedule every Tick until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	tick := r.Tick
	if tick == 0 {
		tick = time.Second
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.Log.Warn("scheduled backup", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once takes a run if one is due and this node leads.
func (r *Runner) Once(ctx context.Context) error {
	if !r.Store.Leader() {
		return nil
	}
	cs, ss, rn, err := r.Store.ScheduleRecord()
	if err != nil || cs == "" {
		return err
	}
	var runNow time.Time
	if rn != "" {
		if runNow, err = time.Parse(time.RFC3339Nano, rn); err != nil {
			return fmt.Errorf("read the schedule's run-now: %w", err)
		}
	}
	c, err := ParseConfig(cs)
	if err != nil {
		return err
	}
	spec, err := ParseSpec(c.Spec)
	if err != nil {
		return err
	}
	st, err := ParseState(ss)
	if err != nil {
		return err
	}
	now := r.Now().UTC()
	a := Decide(c, spec, st, runNow, r.Store.NodeID(), now)
	if !a.Run {
		return nil
	}
	if st.Last.Result == Running {
		// The run that did not finish counts as failed.
		st.Last.Result, st.Last.Error, st.Last.Ended = Failed, "did not finish: its node stopped leading or restarted", now
		st.History = appendRun(st.History, st.Last)
		st.Failures++
		st.FailedRuns++
	}
	claimed := st
	claimed.Last = Run{Slot: a.Slot, Runner: r.Store.NodeID(), Started: now, Result: Running}
	if err := r.Store.SwapScheduleState(ctx, ss, claimed.encode()); err != nil {
		return fmt.Errorf("claim the run due at %s: %w", a.Slot.Format(time.RFC3339), err)
	}
	r.Log.Info("scheduled backup", "slot", a.Slot, "why", a.Why, "target", c.Target)
	out, berr := r.Backup(ctx, c)
	done := claimed
	done.Last.Ended, done.Last.Path, done.Last.Bytes = r.Now().UTC(), out.Path, out.Bytes
	if berr != nil {
		done.Last.Result, done.Last.Error = Failed, berr.Error()
		done.Failures++
		done.FailedRuns++
		done.RetryAt = done.Last.Ended.Add(backoff(done.Failures))
		r.Log.Error("scheduled backup failed", "slot", a.Slot, "err", berr, "failures", done.Failures, "retry_at", done.RetryAt)
	} else {
		done.Last.Result = OK
		done.Failures, done.RetryAt, done.LastSuccess = 0, time.Time{}, done.Last.Ended
		done.Succeeded++
	}
	done.History = appendRun(done.History, done.Last)
	// Recording the outcome may fail if leadership was lost: the next
	// leader then sees the run as unfinished and takes it again.
	if err := r.Store.SwapScheduleState(ctx, claimed.encode(), done.encode()); err != nil {
		return fmt.Errorf("record the run due at %s: %w", a.Slot.Format(time.RFC3339), err)
	}
	return berr
}

func appendRun(h []Run, r Run) []Run {
	h = append(h, r)
	if len(h) > historyLen {
		h = h[len(h)-historyLen:]
	}
	return h
}
