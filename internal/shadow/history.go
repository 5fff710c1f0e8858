package shadow

import (
	"sync"
	"time"
)

// Results of a session.
const (
	ResultRunning   = "running"
	ResultCompleted = "completed"
	ResultFailed    = "failed"
)

// Session kinds.
const (
	KindBackup  = "backup"
	KindRestore = "restore"
)

// maxHistory is how many ended sessions the coordinator remembers.
const maxHistory = 50

// SessionRecord is what the coordinator remembers of a backup or restore
// it served.
type SessionRecord struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // KindBackup or KindRestore
	// Type is the backup type (full or copy) of a backup.
	Type BackupType `json:"type,omitempty"`
	// Target is where the requester said it keeps the set ("" unsaid).
	Target  string    `json:"target,omitempty"`
	Started time.Time `json:"started"`
	// Ended is zero while the session runs.
	Ended time.Time `json:"ended,omitzero"`
	// Result is ResultRunning, ResultCompleted or ResultFailed (an
	// abort, by the requester, a failed step or the session timeout).
	Result string `json:"result"`
	// Bytes and Items are what the snapshot set of a backup held.
	Bytes int64 `json:"bytes"`
	Items int   `json:"items"`
	// Frozen is how long the writers were frozen.
	Frozen time.Duration `json:"frozen_ns,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// Duration is how long the session ran (until now, while it runs).
func (r SessionRecord) Duration() time.Duration {
	if r.Ended.IsZero() {
		return time.Since(r.Started)
	}
	return r.Ended.Sub(r.Started)
}

// SessionCounts are the sessions of one kind since the coordinator began.
type SessionCounts struct {
	Started, Completed, Failed uint64
}

// History is what a coordinator served: counts per kind, the last ended
// backup and the last completed one, and the recent sessions, newest first
// (the running one, if any, first of all).
type History struct {
	Counts              map[string]SessionCounts `json:"counts"`
	LastBackup          *SessionRecord           `json:"last_backup,omitempty"`
	LastCompletedBackup *SessionRecord           `json:"last_completed_backup,omitempty"`
	Recent              []SessionRecord          `json:"recent"`
}

// history keeps the records; it has its own lock so that readers never
// wait for a session's writer calls.
type history struct {
	mu      sync.Mutex
	counts  map[string]SessionCounts
	running *SessionRecord
	ended   []SessionRecord // oldest first, at most maxHistory
	last    *SessionRecord  // the last backup that ended
	lastOK  *SessionRecord  // the last backup that completed
}

func (h *history) start(rec SessionRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = map[string]SessionCounts{}
	}
	c := h.counts[rec.Kind]
	c.Started++
	h.counts[rec.Kind] = c
	rec.Result = ResultRunning
	h.running = &rec
}

func (h *history) end(id string, result string, set *SnapshotSet, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running == nil || h.running.ID != id {
		return
	}
	rec := *h.running
	h.running = nil
	rec.Ended, rec.Result = time.Now().UTC(), result
	if err != nil {
		rec.Error = err.Error()
	}
	if set != nil {
		rec.Items, rec.Frozen = len(set.Items), set.Frozen
		for _, it := range set.Items {
			rec.Bytes += it.Size
		}
	}
	c := h.counts[rec.Kind]
	if result == ResultCompleted {
		c.Completed++
	} else {
		c.Failed++
	}
	h.counts[rec.Kind] = c
	h.ended = append(h.ended, rec)
	if len(h.ended) > maxHistory {
		h.ended = append([]SessionRecord(nil), h.ended[len(h.ended)-maxHistory:]...)
	}
	if rec.Kind == KindBackup {
		last := rec
		h.last = &last
		if result == ResultCompleted {
			h.lastOK = &last
		}
	}
}

// History reports the sessions this coordinator served.
func (c *Coordinator) History() History {
	h := &c.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	out := History{Counts: map[string]SessionCounts{}, Recent: make([]SessionRecord, 0, len(h.ended)+1)}
	for _, k := range []string{KindBackup, KindRestore} {
		out.Counts[k] = h.counts[k]
	}
	if h.last != nil {
		last := *h.last
		out.LastBackup = &last
	}
	if h.lastOK != nil {
		last := *h.lastOK
		out.LastCompletedBackup = &last
	}
	if h.running != nil {
		out.Recent = append(out.Recent, *h.running)
	}
	for i := len(h.ended) - 1; i >= 0; i-- {
		out.Recent = append(out.Recent, h.ended[i])
	}
	return out
}
