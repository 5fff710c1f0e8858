package dashboard

import (
	"context"

	"github.com/clusterkeep/clusterkeep/internal/shadow"
)

// Sessions lists the backups and restores this node's shadow-copy
// coordinator served (the backups clients took through this node).
type Sessions struct {
	Coord *shadow.Coordinator
	Node  func() string // the node's name
}

// Name titles the table.
func (s Sessions) Name() string { return "Sessions served by this node's shadow-copy coordinator" }

// Backups lists the recent sessions, newest first.
func (s Sessions) Backups(ctx context.Context) ([]Backup, error) {
	h := s.Coord.History()
	where := ""
	if s.Node != nil {
		where = s.Node()
	}
	out := make([]Backup, 0, len(h.Recent))
	for _, r := range h.Recent {
		out = append(out, Backup{ID: r.ID, Kind: r.Kind, Type: string(r.Type), Where: where, Started: r.Started,
			Ended: r.Ended, Result: r.Result, Bytes: r.Bytes, Error: r.Error})
	}
	return out, nil
}
