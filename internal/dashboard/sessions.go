package dashboard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

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
	where := ""
	if s.Node != nil {
		where = s.Node()
	}
	return sessionRows(s.Coord.History(), where), nil
}

func sessionRows(h shadow.History, where string) []Backup {
	out := make([]Backup, 0, len(h.Recent))
	for _, r := range h.Recent {
		out = append(out, Backup{ID: r.ID, Kind: r.Kind, Type: string(r.Type), Where: where, Started: r.Started,
			Ended: r.Ended, Result: r.Result, Bytes: r.Bytes, Error: r.Error})
	}
	return out
}

// Peer is a member whose coordinator ClusterSessions asks.
type Peer struct {
	Name    string
	APIAddr string
}

// ClusterSessions lists the recent backups and restores of every member's
// shadow-copy coordinator: a backup is taken through any node, and the
// page is served by one. This node's own sessions come from Own; the
// others' are fetched from each member, and a member that does not answer
// is named in the table's error, its sessions missing.
type ClusterSessions struct {
	Own   Sessions
	Self  func() string
	Peers func() ([]Peer, error)
	// Fetch asks the member at addr for its coordinator's history.
	Fetch func(ctx context.Context, addr string) (shadow.History, error)
}

// peerWait bounds how long the page waits for a member's answer.
const peerWait = 3 * time.Second

// Name titles the table.
func (s ClusterSessions) Name() string {
	return "Sessions served by the nodes' shadow-copy coordinators (every node)"
}

// Backups lists every member's recent sessions, newest first.
func (s ClusterSessions) Backups(ctx context.Context) ([]Backup, error) {
	out, _ := s.Own.Backups(ctx)
	peers, err := s.Peers()
	if err != nil {
		return out, fmt.Errorf("list the members: %w", err)
	}
	self := s.Self()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for _, p := range peers {
		if p.Name == self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, peerWait)
			defer cancel()
			h, err := s.Fetch(pctx, p.APIAddr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s did not answer, its sessions are missing: %w", p.Name, err))
				return
			}
			out = append(out, sessionRows(h, p.Name)...)
		}()
	}
	wg.Wait()
	slices.SortStableFunc(out, func(a, b Backup) int { return b.Started.Compare(a.Started) })
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return out, errors.Join(errs...)
}
