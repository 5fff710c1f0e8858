package hive

import (
	"context"
	"sync"
)

// Event is one change a committed transaction made.
type Event struct {
	Seq  uint64 `json:"seq"`
	Kind OpKind `json:"op"`
	Key  string `json:"key"`
	Name string `json:"name,omitempty"`
}

// watchHistory is how many recent events, at least, are kept for
// watchers; up to twice as many are kept, so that the history is trimmed
// once per watchHistory events and not at every publish.
const watchHistory = 8192

type watchers struct {
	mu      sync.Mutex
	events  []Event       // the most recent events, oldest first
	floor   uint64        // events at or below floor may be missing
	seq     uint64        // the highest sequence number published
	epoch   uint64        // raised when the hive is replaced as a whole
	changed chan struct{} // closed and replaced at every publish
	closed  bool
}

func newWatchers() *watchers { return &watchers{changed: make(chan struct{})} }

// setFloor says that changes at or below seq are not in the history.
func (w *watchers) setFloor(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = nil
	w.floor, w.seq = seq, seq
	w.epoch++
	if !w.closed {
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// publish records a committed batch: its events and the sequence number
// the hive reached.
func (w *watchers) publish(evs []Event, seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq > w.seq {
		w.seq = seq
	}
	if len(evs) == 0 {
		return
	}
	w.events = append(w.events, evs...)
	if len(w.events) > 2*watchHistory {
		// Watch copies what it returns, so the events move in place.
		over := len(w.events) - watchHistory
		w.floor = w.events[over-1].Seq
		n := copy(w.events, w.events[over:])
		clear(w.events[n:])
		w.events = w.events[:n]
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *watchers) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.changed)
	}
}

// Watch waits for the changes after sequence number after that touch the
// subtree at path (a change above it, such as deleting an ancestor, counts),
// and returns them with the sequence number it has seen up to: a watcher
// continues from that number, even when no event came before ctx ended. It
// returns ErrCompacted when changes after `after` may have been forgotten,
// or the hive was replaced under the watcher (the caller re-reads). An
// `after` beyond this hive's sequence number waits: this copy lags.
func (h *Hive) Watch(ctx context.Context, path string, after uint64) ([]Event, uint64, error) {
	p, err := ParsePath(path)
	if err != nil {
		return nil, 0, err
	}
	w := h.watch
	w.mu.Lock()
	epoch := w.epoch
	w.mu.Unlock()
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return nil, 0, ErrClosed
		}
		if after < w.floor || w.epoch != epoch {
			w.mu.Unlock()
			return nil, 0, ErrCompacted
		}
		var out []Event
		for _, e := range w.events {
			if e.Seq > after && p.Related(MustPath(e.Key)) {
				out = append(out, e)
			}
		}
		ch, seen := w.changed, w.seq
		w.mu.Unlock()
		if len(out) > 0 {
			return out, seen, nil
		}
		select {
		case <-ctx.Done():
			return nil, seen, ctx.Err()
		case <-ch:
		}
	}
}
