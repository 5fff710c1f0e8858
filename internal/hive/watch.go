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

// watchHistory is how many recent events are kept for watchers.
const watchHistory = 8192

type watchers struct {
	mu      sync.Mutex
	events  []Event       // the most recent events, oldest first
	floor   uint64        // events at or below floor may be missing
	changed chan struct{} // closed and replaced at every publish
	closed  bool
}

func newWatchers() *watchers { return &watchers{changed: make(chan struct{})} }

// setFloor says that changes at or below seq are not in the history.
func (w *watchers) setFloor(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = nil
	w.floor = seq
	if !w.closed {
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

func (w *watchers) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, evs...)
	if over := len(w.events) - watchHistory; over > 0 {
		w.floor = w.events[over-1].Seq
		w.events = append([]Event(nil), w.events[over:]...)
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
// and returns them. It returns ErrCompacted when changes after `after` may
// have been forgotten (the caller re-reads and watches from the new Seq).
func (h *Hive) Watch(ctx context.Context, path string, after uint64) ([]Event, error) {
	p, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	if cur := h.Seq(); after > cur {
		// A watcher from before a restore rolled the hive back.
		return nil, ErrCompacted
	}
	w := h.watch
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return nil, ErrClosed
		}
		if after < w.floor {
			w.mu.Unlock()
			return nil, ErrCompacted
		}
		var out []Event
		for _, e := range w.events {
			if e.Seq > after && p.Related(MustPath(e.Key)) {
				out = append(out, e)
			}
		}
		ch := w.changed
		w.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		}
	}
}
