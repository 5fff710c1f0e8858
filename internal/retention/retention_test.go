package retention

import (
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// history is a synthetic history of backups, in no order. ISO weeks:
// Mar 9-10 2026 are in W11, Mar 8 in W10, Mar 1 and Feb 27 in W09, Feb 15
// in W07, Jan 20 in W04, and Dec 31 2025 in 2026-W01.
func history() []Item {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	items := []Item{
		{"A", at("2026-03-10T22:00:00Z")},
		{"B", at("2026-03-10T08:00:00Z")},
		{"C", at("2026-03-09T12:00:00Z")},
		{"D", at("2026-03-08T12:00:00Z")},
		{"E", at("2026-03-01T12:00:00Z")},
		{"F", at("2026-02-27T12:00:00Z")},
		{"G", at("2026-02-15T12:00:00Z")},
		{"H", at("2026-01-20T12:00:00Z")},
		{"I", at("2025-12-31T12:00:00Z")},
	}
	rand.New(rand.NewSource(1)).Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	return items
}

func TestApply(t *testing.T) {
	cases := []struct {
		name    string
		policy  Policy
		protect map[string]string
		kept    []string
		reasons map[string]string // joined with "; "
	}{
		{name: "empty policy keeps nothing", kept: nil},
		{name: "last 3", policy: Policy{Last: 3}, kept: []string{"A", "B", "C"},
			reasons: map[string]string{"A": "last 1 of 3", "C": "last 3 of 3"}},
		{name: "last more than there are", policy: Policy{Last: 20}, kept: []string{"A", "B", "C", "D", "E", "F", "G", "H", "I"}},
		{name: "daily 3: the newest of each day", policy: Policy{Daily: 3}, kept: []string{"A", "C", "D"},
			reasons: map[string]string{"A": "daily 2026-03-10", "C": "daily 2026-03-09", "D": "daily 2026-03-08"}},
		{name: "weekly 3: ISO weeks", policy: Policy{Weekly: 3}, kept: []string{"A", "D", "E"},
			reasons: map[string]string{"A": "weekly 2026-W11", "D": "weekly 2026-W10", "E": "weekly 2026-W09"}},
		{name: "weekly across the year: Dec 31 2025 is in 2026-W01", policy: Policy{Weekly: 10}, kept: []string{"A", "D", "E", "G", "H", "I"},
			reasons: map[string]string{"I": "weekly 2026-W01"}},
		{name: "monthly 2", policy: Policy{Monthly: 2}, kept: []string{"A", "F"},
			reasons: map[string]string{"F": "monthly 2026-02"}},
		{name: "monthly more than there are months", policy: Policy{Monthly: 12}, kept: []string{"A", "F", "H", "I"}},
		{name: "rules add up", policy: Policy{Last: 1, Daily: 2, Weekly: 2, Monthly: 3}, kept: []string{"A", "C", "D", "F", "H"},
			reasons: map[string]string{
				"A": "last 1 of 1; daily 2026-03-10; weekly 2026-W11; monthly 2026-03",
				"C": "daily 2026-03-09", "D": "weekly 2026-W10", "F": "monthly 2026-02", "H": "monthly 2026-01"}},
		{name: "protected kept whatever the policy", policy: Policy{Last: 1}, protect: map[string]string{"G": "newest verified backup"},
			kept: []string{"A", "G"}, reasons: map[string]string{"G": "newest verified backup"}},
		{name: "protected also kept by a rule", policy: Policy{Last: 1}, protect: map[string]string{"A": "newest verified backup"},
			kept: []string{"A"}, reasons: map[string]string{"A": "last 1 of 1; newest verified backup"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := Apply(history(), c.policy, c.protect)
			if len(ds) != 9 {
				t.Fatalf("%d decisions, want 9", len(ds))
			}
			var kept []string
			for i, d := range ds {
				if i > 0 && d.Time.After(ds[i-1].Time) {
					t.Fatalf("decisions are not newest first: %s after %s", d.ID, ds[i-1].ID)
				}
				if d.Keep {
					kept = append(kept, d.ID)
				}
				if d.Keep != (len(d.Reasons) > 0) {
					t.Errorf("%s: keep %v with reasons %q", d.ID, d.Keep, d.Reasons)
				}
				if want, ok := c.reasons[d.ID]; ok && strings.Join(d.Reasons, "; ") != want {
					t.Errorf("%s kept for %q, want %q", d.ID, strings.Join(d.Reasons, "; "), want)
				}
			}
			slices.Sort(kept)
			if !reflect.DeepEqual(kept, c.kept) {
				t.Errorf("kept %v, want %v", kept, c.kept)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	if err := (Policy{Daily: -1}).Validate(); err == nil {
		t.Error("a negative count was accepted")
	}
	if !(Policy{}).Empty() || (Policy{Monthly: 1}).Empty() {
		t.Error("Empty is wrong")
	}
}

// When a rule has counts left once every bucket of the history is taken,
// the oldest backup is kept as well, even when a newer one of its bucket
// is (restic >= 0.16's forget): a young history keeps its longest reach.
func TestApplyKeepsTheOldestWhenARuleIsNotFilled(t *testing.T) {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	// Four days, the oldest holding two backups; weeks: W11 (Mar 9-10),
	// W10 (Mar 8, Mar 7 twice); months: all March.
	items := []Item{
		{"n1", at("2026-03-10T22:00:00Z")},
		{"n2", at("2026-03-09T12:00:00Z")},
		{"n3", at("2026-03-08T12:00:00Z")},
		{"n4", at("2026-03-07T23:00:00Z")},
		{"o", at("2026-03-07T01:00:00Z")},
	}
	cases := []struct {
		name    string
		only    int // the newest only items (0: all)
		policy  Policy
		kept    []string
		reasons map[string]string
	}{
		{name: "daily 7 of 4 days: the oldest too", policy: Policy{Daily: 7}, kept: []string{"n1", "n2", "n3", "n4", "o"},
			reasons: map[string]string{"n4": "daily 2026-03-07", "o": "oldest (daily: 4 of 7 filled)"}},
		{name: "daily 4 of 4 days: filled, the oldest goes", policy: Policy{Daily: 4}, kept: []string{"n1", "n2", "n3", "n4"}},
		{name: "daily 3: filled before the oldest day", policy: Policy{Daily: 3}, kept: []string{"n1", "n2", "n3"}},
		{name: "weekly 4 of 2 weeks", policy: Policy{Weekly: 4}, kept: []string{"n1", "n3", "o"},
			reasons: map[string]string{"n3": "weekly 2026-W10", "o": "oldest (weekly: 2 of 4 filled)"}},
		{name: "monthly 12 of 1 month", policy: Policy{Monthly: 12}, kept: []string{"n1", "o"},
			reasons: map[string]string{"n1": "monthly 2026-03", "o": "oldest (monthly: 1 of 12 filled)"}},
		{name: "last is not affected", policy: Policy{Last: 2}, kept: []string{"n1", "n2"}},
		{name: "the rules' reasons add up on the oldest", policy: Policy{Last: 9, Weekly: 3, Monthly: 2}, kept: []string{"n1", "n2", "n3", "n4", "o"},
			reasons: map[string]string{"o": "last 5 of 9; oldest (weekly: 2 of 3 filled); oldest (monthly: 1 of 2 filled)"}},
		{name: "one backup", only: 1, policy: Policy{Daily: 7}, kept: []string{"n1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := items
			if c.only > 0 {
				in = items[:c.only]
			}
			var kept []string
			for _, d := range Apply(in, c.policy, nil) {
				if d.Keep {
					kept = append(kept, d.ID)
				}
				if want, ok := c.reasons[d.ID]; ok && strings.Join(d.Reasons, "; ") != want {
					t.Errorf("%s kept for %q, want %q", d.ID, strings.Join(d.Reasons, "; "), want)
				}
			}
			slices.Sort(kept)
			if !reflect.DeepEqual(kept, c.kept) {
				t.Errorf("kept %v, want %v", kept, c.kept)
			}
		})
	}
}
