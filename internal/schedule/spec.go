// Package schedule runs the cluster's scheduled backups. The schedule (a
// cron expression or an interval), its target, its retention and its state
// live in the hive under Cluster/Schedule, so they are replicated, backed
// up and restored with the rest. Only the leader takes a run, and it claims
// the run in the hive (a conditional write that a deposed leader cannot
// commit) before it begins; a run missed while the cluster was down is
// taken once when it comes back; a failed run is retried with backoff and
// reported in the state.
package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrBadSpec: a schedule that is neither a cron expression nor an interval.
var ErrBadSpec = errors.New("bad schedule")

// Spec is when runs are due: every Every from the Unix epoch, or the
// minutes a five-field cron expression names (in UTC).
type Spec struct {
	text  string
	every time.Duration
	// cron fields: allowed values as bit sets.
	min, hour, dom, mon, dow uint64
	domStar, dowStar         bool
}

func (s Spec) String() string { return s.text }

// ParseSpec reads "@every DURATION" (at least a minute... or a second, for
// tests: at least 1s), "@hourly", "@daily", "@weekly", "@monthly", or
// "MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK" with *, lists, ranges and
// steps (times are UTC).
func ParseSpec(text string) (Spec, error) {
	t := strings.TrimSpace(text)
	s := Spec{text: t}
	switch t {
	case "@hourly":
		t = "0 * * * *"
	case "@daily", "@midnight":
		t = "0 0 * * *"
	case "@weekly":
		t = "0 0 * * 0"
	case "@monthly":
		t = "0 0 1 * *"
	}
	if d, ok := strings.CutPrefix(t, "@every "); ok {
		every, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil || every < time.Second {
			return s, fmt.Errorf("%w %q: @every needs a duration of at least 1s", ErrBadSpec, text)
		}
		s.every = every
		return s, nil
	}
	f := strings.Fields(t)
	if len(f) != 5 {
		return s, fmt.Errorf("%w %q: want @every DURATION, @hourly, @daily, @weekly, @monthly or five cron fields (minute hour day-of-month month day-of-week)", ErrBadSpec, text)
	}
	var err error
	parts := []struct {
		dst      *uint64
		lo, hi   int
		name     string
		wildcard *bool
	}{{&s.min, 0, 59, "minute", nil}, {&s.hour, 0, 23, "hour", nil}, {&s.dom, 1, 31, "day of month", &s.domStar},
		{&s.mon, 1, 12, "month", nil}, {&s.dow, 0, 7, "day of week", &s.dowStar}}
	for i, p := range parts {
		if *p.dst, err = parseField(f[i], p.lo, p.hi); err != nil {
			return s, fmt.Errorf("%w %q: %s: %w", ErrBadSpec, text, p.name, err)
		}
		if p.wildcard != nil {
			*p.wildcard = f[i] == "*"
		}
	}
	if s.dow&(1<<7) != 0 { // 7 is Sunday too
		s.dow |= 1
	}
	return s, nil
}

func parseField(f string, lo, hi int) (uint64, error) {
	var bits uint64
	for _, part := range strings.Split(f, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("step %q", stepText)
			}
			step = n
		}
		a, b := lo, hi
		if rng != "*" {
			x, y, isRange := strings.Cut(rng, "-")
			var err error
			if a, err = strconv.Atoi(x); err != nil {
				return 0, fmt.Errorf("value %q", x)
			}
			b = a
			if isRange {
				if b, err = strconv.Atoi(y); err != nil {
					return 0, fmt.Errorf("value %q", y)
				}
			} else if hasStep {
				b = hi
			}
		}
		if a < lo || b > hi || a > b {
			return 0, fmt.Errorf("%q is outside %d-%d", part, lo, hi)
		}
		for v := a; v <= b; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

// Next is the first time a run is due strictly after t.
func (s Spec) Next(t time.Time) time.Time {
	t = t.UTC()
	if s.every > 0 {
		return s.slot(t).Add(s.every)
	}
	t = t.Truncate(time.Minute).Add(time.Minute)
	// At most about 5 years of minutes are ever looked at: a spec that
	// names no real day (31 February) never fires.
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		switch {
		case s.mon&(1<<uint(t.Month())) == 0:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !s.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
		case s.hour&(1<<uint(t.Hour())) == 0:
			t = t.Truncate(time.Hour).Add(time.Hour)
		case s.min&(1<<uint(t.Minute())) == 0:
			t = t.Add(time.Minute)
		default:
			return t
		}
	}
	return time.Time{}
}

// dayMatches is cron's rule: when both day fields are restricted, either
// matching is enough.
func (s Spec) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	switch {
	case s.domStar && s.dowStar:
		return true
	case s.domStar:
		return dow
	case s.dowStar:
		return dom
	default:
		return dom || dow
	}
}

// Latest is the last time a run was due at or before now, after since
// (zero when none was).
func (s Spec) Latest(since, now time.Time) time.Time {
	// Look back at most a year: older slots do not matter, one run is
	// taken for all that were missed.
	from := since
	if floor := now.AddDate(-1, 0, 0); from.Before(floor) {
		from = floor
	}
	if s.every > 0 {
		if l := s.slot(now.UTC()); l.After(from) {
			return l
		}
		return time.Time{}
	}
	var last time.Time
	for t := s.Next(from); !t.IsZero() && !t.After(now); t = s.Next(t) {
		last = t
	}
	return last
}

// slot is the last @every slot at or before t, counted from the Unix epoch.
func (s Spec) slot(t time.Time) time.Time {
	n := t.UnixNano()
	e := s.every.Nanoseconds()
	return time.Unix(0, n-((n%e)+e)%e).UTC()
}
