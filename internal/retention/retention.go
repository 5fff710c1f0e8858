// Package retention decides which backups a retention policy keeps, as
// restic's forget --keep-* does: a backup is kept if any rule keeps it.
// Keep-last keeps the N newest; keep-daily, keep-weekly and keep-monthly
// keep the newest backup of each of the N most recent days, ISO weeks and
// months that have backups. When there are fewer such days (weeks, months)
// than N, the oldest backup is kept as well, as restic 0.16 and later do:
// a young history keeps its longest reach. Days, weeks and months are UTC
// ones.
//
// It is a pure function of the history, for a scheduler and for
// clusterkeep backup prune alike.
package retention

import (
	"fmt"
	"sort"
	"time"
)

// Policy is how many backups each rule keeps; 0 disables a rule.
type Policy struct {
	Last    int `json:"keep_last,omitempty"`
	Daily   int `json:"keep_daily,omitempty"`
	Weekly  int `json:"keep_weekly,omitempty"`
	Monthly int `json:"keep_monthly,omitempty"`
}

// Empty says whether no rule is set: such a policy keeps nothing, and
// callers refuse it rather than remove every backup.
func (p Policy) Empty() bool { return p.Last <= 0 && p.Daily <= 0 && p.Weekly <= 0 && p.Monthly <= 0 }

// Validate refuses negative counts.
func (p Policy) Validate() error {
	if p.Last < 0 || p.Daily < 0 || p.Weekly < 0 || p.Monthly < 0 {
		return fmt.Errorf("retention policy: counts cannot be negative (%+v)", p)
	}
	return nil
}

// Item is one backup of the history.
type Item struct {
	ID   string
	Time time.Time
}

// Decision is what the policy says of one backup.
type Decision struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Keep    bool      `json:"keep"`
	Reasons []string  `json:"reasons,omitempty"` // why it is kept
}

type rule struct {
	name   string
	count  int // as the policy says
	left   int
	bucket func(t time.Time) string
	last   string
	seen   bool
}

// Apply decides for every item, and returns the decisions newest first.
// protect names items kept whatever the policy, with the reason (the
// newest verified backup).
func Apply(items []Item, p Policy, protect map[string]string) []Decision {
	sorted := append([]Item(nil), items...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].Time.Equal(sorted[j].Time) {
			return sorted[i].Time.After(sorted[j].Time)
		}
		return sorted[i].ID > sorted[j].ID
	})
	n := 0
	rules := []*rule{
		{name: "last", count: p.Last, bucket: func(time.Time) string { n++; return fmt.Sprint(n) }},
		{name: "daily", count: p.Daily, bucket: func(t time.Time) string { return t.UTC().Format("2006-01-02") }},
		{name: "weekly", count: p.Weekly, bucket: func(t time.Time) string {
			y, w := t.UTC().ISOWeek()
			return fmt.Sprintf("%04d-W%02d", y, w)
		}},
		{name: "monthly", count: p.Monthly, bucket: func(t time.Time) string { return t.UTC().Format("2006-01") }},
	}
	for _, r := range rules {
		r.left = r.count
	}
	out := make([]Decision, 0, len(sorted))
	for i, it := range sorted {
		d := Decision{ID: it.ID, Time: it.Time}
		oldest := i == len(sorted)-1
		for _, r := range rules {
			if r.left <= 0 {
				continue
			}
			b := r.bucket(it.Time)
			switch {
			case !r.seen || b != r.last:
				if r.name == "last" {
					d.Reasons = append(d.Reasons, fmt.Sprintf("last %d of %d", r.count-r.left+1, r.count))
				} else {
					d.Reasons = append(d.Reasons, fmt.Sprintf("%s %s", r.name, b))
				}
			case oldest:
				// The rule has counts left when the history ends: the
				// oldest backup is kept too, though a newer one of its
				// bucket is (restic >= 0.16).
				d.Reasons = append(d.Reasons, fmt.Sprintf("oldest (%s: %d of %d filled)", r.name, r.count-r.left, r.count))
			default:
				continue
			}
			r.left--
			r.last, r.seen = b, true
			d.Keep = true
		}
		if why, ok := protect[it.ID]; ok {
			d.Keep = true
			d.Reasons = append(d.Reasons, why)
		}
		out = append(out, d)
	}
	return out
}
