package shadow

import (
	"context"
	"testing"
	"time"
)

// The coordinator remembers what it served: a completed backup with its
// snapshot set's size, a failed one with why, a restore; counts per kind.
func TestHistoryRecordsSessions(t *testing.T) {
	w1, w2, w3 := threeWriters(t)
	c, _ := testCoordinator(t, time.Minute, w1, w2, w3)
	ctx := context.Background()
	if h := c.History(); h.LastBackup != nil || len(h.Recent) != 0 || h.Counts[KindBackup] != (SessionCounts{}) {
		t.Fatalf("history before any session: %+v", h)
	}
	b, set, err := runBackup(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if h := c.History(); len(h.Recent) != 1 || h.Recent[0].Result != ResultRunning || h.Recent[0].ID != b.ID() {
		t.Fatalf("history while the backup runs: %+v", h.Recent)
	}
	if err := b.BackupComplete(ctx); err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, it := range set.Items {
		size += it.Size
	}
	h := c.History()
	ok := h.LastCompletedBackup
	if ok == nil || ok.ID != b.ID() || ok.Result != ResultCompleted || ok.Bytes != size || ok.Items != len(set.Items) || ok.Ended.IsZero() || ok.Duration() <= 0 {
		t.Fatalf("last completed backup %+v, want %s of %d bytes", ok, b.ID(), size)
	}

	// A backup that fails at a writer's freeze: failed, with the cause.
	w2.failAt = PhaseFreeze
	failed, _, err := runBackup(ctx, c)
	if err == nil {
		t.Fatal("the backup did not fail")
	}
	w2.failAt = ""
	h = c.History()
	if h.LastBackup == nil || h.LastBackup.ID != failed.ID() || h.LastBackup.Result != ResultFailed || h.LastBackup.Error == "" {
		t.Fatalf("last backup %+v, want the failed one with its error", h.LastBackup)
	}
	if h.LastCompletedBackup.ID != b.ID() {
		t.Fatalf("last completed backup is %s, want %s", h.LastCompletedBackup.ID, b.ID())
	}
	if got := h.Counts[KindBackup]; got != (SessionCounts{Started: 2, Completed: 1, Failed: 1}) {
		t.Fatalf("backup counts %+v", got)
	}

	// A restore, aborted by its requester.
	r, err := c.StartRestore(ctx, b.Document())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	h = c.History()
	if got := h.Counts[KindRestore]; got != (SessionCounts{Started: 1, Failed: 1}) {
		t.Fatalf("restore counts %+v", got)
	}
	if len(h.Recent) != 3 || h.Recent[0].Kind != KindRestore || h.Recent[1].ID != failed.ID() || h.Recent[2].ID != b.ID() {
		t.Fatalf("recent sessions, newest first: %+v", h.Recent)
	}
}
