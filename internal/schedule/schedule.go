package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backupset"
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
	if _, err := backupset.ParseRecipients(c.Recipients, nil); err != nil {
		return fmt.Errorf("schedule: %w", err)
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
	// Target is where the run backed up to (the schedule's target when it
	// was claimed; empty in runs recorded before it was kept).
	Target string `json:"target,omitempty"`
	// Bytes is the size of the set's stored files.
	Bytes int64 `json:"bytes,omitempty"`
	// Heartbeat is renewed while the run goes on: a running run whose
	// heartbeat is older than Lease is taken to have died with its node.
	Heartbeat time.Time `json:"heartbeat,omitzero"`
	// Warning tells what went wrong after the set was made (retention).
	Warning string `json:"warning,omitempty"`
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
	// ByTarget counts the same runs per target: a schedule that moves to
	// another target starts that target's counts at zero.
	ByTarget map[string]Counts `json:"by_target,omitempty"`
	// RunNowTaken is the run-now request last taken (its recorded text):
	// a request is taken once, whatever the clocks of the nodes say.
	RunNowTaken string `json:"run_now_taken,omitempty"`
	History     []Run  `json:"history,omitempty"`
}

// Counts are a target's ended runs by result.
type Counts struct {
	OK     int64 `json:"ok,omitempty"`
	Failed int64 `json:"failed,omitempty"`
}

// count counts an ended run, in all and for its target.
func (st *State) count(r Run) {
	c := st.ByTarget[r.Target]
	if r.Result == OK {
		st.Succeeded++
		c.OK++
	} else {
		st.FailedRuns++
		c.Failed++
	}
	if r.Target == "" {
		return // a run claimed before runs named their target
	}
	if st.ByTarget == nil {
		st.ByTarget = map[string]Counts{}
	}
	st.ByTarget[r.Target] = c
}

// RunsByTarget are the ended runs' counts per target. Counts recorded
// before they were kept per target are the target's of the last run
// (else the schedule's, current).
func (st State) RunsByTarget(current string) map[string]Counts {
	out := map[string]Counts{}
	var ok, failed int64
	for t, c := range st.ByTarget {
		out[t] = c
		ok, failed = ok+c.OK, failed+c.Failed
	}
	if ok < st.Succeeded || failed < st.FailedRuns {
		t := st.Last.Target
		if t == "" {
			t = current
		}
		c := out[t]
		c.OK += st.Succeeded - ok
		c.Failed += st.FailedRuns - failed
		out[t] = c
	}
	return out
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
	// Abandon: the running run's lease expired; record it as failed (it
	// is retried after the backoff) rather than run.
	Abandon bool
}

// Lease is how long a running run lives without a heartbeat; its runner
// renews it every Lease/3, and stops the run at once when it stops leading.
const Lease = 30 * time.Second

// backoff is how long after its nth failure (n >= 1) a run is retried.
func backoff(n int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < n && d < 30*time.Minute; i++ {
		d *= 2
	}
	return min(d, 30*time.Minute)
}

// Decide says whether the leader (node self, running no run of the
// schedule itself) takes a run now. runNow is the recorded run-now request
// ("" when none). A run another node claimed is left alone while its lease
// lives (that node stops it when it stops leading); after that it counts as
// failed and is retried after the backoff, like any failed run.
func Decide(c Config, spec Spec, st State, runNow string, self string, now time.Time) Action {
	if c.Paused {
		return Action{}
	}
	if st.Last.Result == Running {
		beat := st.Last.Heartbeat
		if beat.IsZero() {
			beat = st.Last.Started
		}
		if now.Sub(beat) < Lease && st.Last.Runner != self {
			return Action{}
		}
		who := "node " + st.Last.Runner
		if st.Last.Runner == self {
			who = "this node (before it restarted)"
		}
		return Action{Abandon: true, Slot: st.Last.Slot, Why: fmt.Sprintf("the run due at %s, taken by %s, did not finish", st.Last.Slot.Format(time.RFC3339), who)}
	}
	if runNow != "" && runNow != st.RunNowTaken {
		return Action{Run: true, Slot: now, Why: "asked for (run-now)"}
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
	// ScheduleRecord reads the configuration, the state and the run-now
	// request ("" when unset).
	ScheduleRecord() (config, state, runNow string, err error)
	// SwapScheduleState replaces the state old by next only if it is still
	// old and the configuration is still config.
	SwapScheduleState(ctx context.Context, config, old, next string) error
	// Leader reports whether this node leads (and may claim runs).
	Leader() bool
	// NodeID is this node's id.
	NodeID() string
}

// Outcome is what a run's backup made.
type Outcome struct {
	Path  string
	Bytes int64
	// Warning: the set is made, but what followed (retention) failed.
	Warning string
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
	if r.Now == nil {
		r.Now = time.Now
	}
	if !r.Store.Leader() {
		return nil
	}
	cs, ss, runNow, err := r.Store.ScheduleRecord()
	if err != nil || cs == "" {
		return err
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
	if a.Abandon {
		// The run died with its node: it counts as failed, and is retried
		// after the backoff.
		st.Last.Result, st.Last.Error, st.Last.Ended = Failed, "did not finish: its node stopped leading or restarted", now
		st.History = appendRun(st.History, st.Last)
		st.Failures++
		st.count(st.Last)
		st.RetryAt = now.Add(backoff(st.Failures))
		r.Log.Warn("scheduled backup did not finish", "slot", a.Slot, "why", a.Why, "retry_at", st.RetryAt)
		return r.Store.SwapScheduleState(ctx, cs, ss, st.encode())
	}
	if !a.Run {
		return nil
	}
	claimed := st
	claimed.Last = Run{Slot: a.Slot, Runner: r.Store.NodeID(), Target: c.Target, Started: now, Heartbeat: now, Result: Running}
	if runNow != "" {
		claimed.RunNowTaken = runNow
	}
	if err := r.Store.SwapScheduleState(ctx, cs, ss, claimed.encode()); err != nil {
		return fmt.Errorf("claim the run due at %s: %w", a.Slot.Format(time.RFC3339), err)
	}
	r.Log.Info("scheduled backup", "slot", a.Slot, "why", a.Why, "target", c.Target)
	out, current, berr := r.runLeased(ctx, c, cs, claimed)
	done, _ := ParseState(current)
	if ctx.Err() != nil {
		// The agent is stopping: the run is recorded as interrupted, not
		// counted as a failure, and may be taken again at once by the
		// next leader (without waiting for its lease).
		done.Last.Result, done.Last.Error, done.Last.Ended = Failed, "interrupted: the agent stopped", r.Now().UTC()
		done.RetryAt = done.Last.Ended
		done.History = appendRun(done.History, done.Last)
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Store.SwapScheduleState(rctx, cs, current, done.encode()); err != nil {
			return fmt.Errorf("record the interrupted run due at %s: %w", a.Slot.Format(time.RFC3339), err)
		}
		return ctx.Err()
	}
	done.Last.Ended, done.Last.Path, done.Last.Bytes, done.Last.Warning = r.Now().UTC(), out.Path, out.Bytes, out.Warning
	if berr != nil {
		done.Last.Result, done.Last.Error = Failed, berr.Error()
		done.Failures++
		done.count(done.Last)
		done.RetryAt = done.Last.Ended.Add(backoff(done.Failures))
		r.Log.Error("scheduled backup failed", "slot", a.Slot, "err", berr, "failures", done.Failures, "retry_at", done.RetryAt)
	} else {
		done.Last.Result = OK
		done.Failures, done.RetryAt, done.LastSuccess = 0, time.Time{}, done.Last.Ended
		done.count(done.Last)
		if out.Warning != "" {
			r.Log.Warn("scheduled backup made its set, then", "warning", out.Warning)
		}
	}
	done.History = appendRun(done.History, done.Last)
	// Recording the outcome fails if leadership was lost meanwhile: the
	// next leader sees the run unfinished once its lease expires.
	if err := r.Store.SwapScheduleState(ctx, cs, current, done.encode()); err != nil {
		return fmt.Errorf("record the run due at %s: %w", a.Slot.Format(time.RFC3339), err)
	}
	return berr
}

// runLeased runs the backup while renewing the run's heartbeat every
// Lease/3, and cancels it the moment this node stops leading or a renewal
// fails (another node may then take the run once the lease expires, never
// before). It returns the backup's outcome, the state as last recorded and
// the backup's error.
func (r *Runner) runLeased(ctx context.Context, c Config, cs string, claimed State) (Outcome, string, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	current := claimed.encode()
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		poll := time.NewTicker(200 * time.Millisecond)
		defer poll.Stop()
		renewAt := r.Now().Add(Lease / 3)
		for {
			select {
			case <-stop:
				return
			case <-runCtx.Done():
				return
			case <-poll.C:
			}
			if !r.Store.Leader() {
				cancel()
				return
			}
			if r.Now().Before(renewAt) {
				continue
			}
			mu.Lock()
			st, _ := ParseState(current)
			st.Last.Heartbeat = r.Now().UTC()
			next := st.encode()
			err := r.Store.SwapScheduleState(runCtx, cs, current, next)
			if err == nil {
				current = next
			}
			mu.Unlock()
			if err != nil {
				cancel()
				return
			}
			renewAt = r.Now().Add(Lease / 3)
		}
	}()
	out, err := r.Backup(runCtx, c)
	close(stop)
	<-watched
	if err == nil && runCtx.Err() != nil && ctx.Err() == nil {
		err = errors.New("this node stopped leading during the run")
	}
	mu.Lock()
	defer mu.Unlock()
	return out, current, err
}

func appendRun(h []Run, r Run) []Run {
	h = append(h, r)
	if len(h) > historyLen {
		h = h[len(h)-historyLen:]
	}
	return h
}
