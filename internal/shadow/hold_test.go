package shadow

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// A requester whose held call ends before its session (its connection
// closed: it died) has its session aborted at once, long before the
// session timeout, with a cause saying it is gone; a held call of a
// session that ends normally just returns.
func TestHoldAbortsTheSessionOfARequesterThatIsGone(t *testing.T) {
	w1, w2, w3 := threeWriters(t)
	c, stage := testCoordinator(t, time.Minute, w1, w2, w3)
	c.cfg.SessionTimeout = time.Hour
	b, _, err := runBackup(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, gone := context.WithCancel(context.Background())
	held := make(chan error, 1)
	go func() { held <- c.Hold(ctx, KindBackup, b.ID()) }()
	gone()
	if err := <-held; err != nil {
		t.Fatalf("hold: %v", err)
	}
	if _, err := c.ActiveBackup(b.ID()); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("the session of a requester that is gone is still active: %v", err)
	}
	h := c.History()
	if len(h.Recent) == 0 || h.Recent[0].Result != ResultFailed || !strings.Contains(h.Recent[0].Error, ErrRequesterGone.Error()) {
		t.Fatalf("history: %+v", h.Recent)
	}
	if entries, _ := os.ReadDir(stage); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
	if !w1.released {
		t.Fatal("writer not aborted")
	}

	// A session that completes: the held call returns, nothing aborted.
	b, _, err = runBackup(context.Background(), c)
	if err != nil {
		t.Fatalf("the next backup: %v", err)
	}
	go func() { held <- c.Hold(context.Background(), KindBackup, b.ID()) }()
	if err := b.BackupComplete(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The call may come in before the session ends or after.
	if err := <-held; err != nil && !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("hold of a completed session: %v", err)
	}
	if h := c.History(); h.Recent[0].Result != ResultCompleted {
		t.Fatalf("history: %+v", h.Recent[0])
	}
	if err := c.Hold(context.Background(), KindBackup, b.ID()); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("hold of an ended session: %v", err)
	}
}
