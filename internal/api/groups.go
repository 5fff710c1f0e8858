package api

// The resource manager's endpoints: the nodes' lease renewals (member
// nodes only), the groups' status as the leader sees it, and the
// operator's online, offline and move.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

func (s *Server) groupsRoutes() []route {
	return []route{
		{"POST /v1/roles/lease", accessNode, s.renewLease},
		{"GET /v1/groups/status", accessRead, s.leaderOnly(s.groupsStatus)},
		{"POST /v1/groups/{name}/{action}", accessOperator, s.leaderOnly(rolesErrors(s.groupAction))},
	}
}

// renewLease grants the calling node its lease; a node renews only its
// own. It is answered by the leader only (no forwarding: the node asks the
// leader itself, and a forwarded call would come from another node).
func (s *Server) renewLease(w http.ResponseWriter, r *http.Request) {
	if s.ops.placement == nil {
		writeError(w, fmt.Errorf("%w: this node runs no placement engine", cluster.ErrNotLeader))
		return
	}
	var rep placement.NodeReport
	if err := decodeBody(r, &rep); err != nil {
		writeError(w, err)
		return
	}
	if c := callerOf(r); c.node != rep.Node {
		writeError(w, fmt.Errorf("%w: node %s may renew only its own lease, not node %s's", ErrForbidden, c.node, rep.Node))
		return
	}
	g, err := s.ops.placement.Renew(r.Context(), rep)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// groupsStatus answers on the leader, which holds the nodes' reports.
func (s *Server) groupsStatus(w http.ResponseWriter, r *http.Request) error {
	if s.svc.ReadyTerm() == 0 || s.ops.placement == nil {
		return cluster.ErrNotLeader
	}
	out, err := s.groupStatuses(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// groupStatuses composes every group's status from the recorded
// configuration and placements and the owners' reports. Leader only.
func (s *Server) groupStatuses(ctx context.Context) ([]placement.GroupStatus, error) {
	if _, err := s.svc.ReadIndex(ctx); err != nil {
		return nil, err
	}
	out, owners, err := s.recordedGroups()
	if err != nil {
		return nil, err
	}
	reports := s.ops.placement.Reports()
	for i, st := range out {
		if l, ok := s.ops.placement.LeaseOf(owners[i]); ok && owners[i] != "" && l.Unreachable {
			out[i].OwnerUnreachable, out[i].OwnerLeaseEnds, out[i].OwnerLastHeard = true, l.Ends, l.LastHeard
		}
		rep, ok := reports[owners[i]]
		if !ok || owners[i] == "" {
			continue
		}
		for _, gr := range rep.Groups {
			if strings.EqualFold(gr.Group, st.Name) && gr.Epoch == st.Epoch {
				out[i].OwnerReport, out[i].Resources = gr.State, gr.Resources
			}
		}
	}
	return out, nil
}

// recordedGroups are the groups as this node's hive records them: their
// configuration and placements, without what the owners report (they
// report to the leader only); owners are their owners' node ids, which
// the reports name.
func (s *Server) recordedGroups() (out []placement.GroupStatus, owners []string, err error) {
	rr, err := s.svc.Roles()
	if err != nil {
		return nil, nil, err
	}
	texts, err := s.svc.Placements()
	if err != nil {
		return nil, nil, err
	}
	out = []placement.GroupStatus{}
	for _, g := range rr.Groups {
		g.Normalize()
		rec, err := placement.ParseRecord(texts[strings.ToLower(g.Name)])
		if err != nil {
			return nil, nil, err
		}
		st := placement.GroupStatus{Name: g.Name, Wanted: g.Wanted, State: rec.State, Reason: rec.Reason, Owner: rec.OwnerName,
			Next: rec.NextName, Epoch: rec.Epoch, FailoverThreshold: g.FailoverThreshold, FailoverPeriod: g.FailoverPeriod,
			Held: rec.Held, LastFailure: rec.LastFailure, LastFailureAt: rec.LastFailureAt, Changed: rec.Changed}
		since := time.Now().Add(-time.Duration(g.FailoverPeriod))
		for _, t := range rec.Failovers {
			if t.After(since) {
				st.Failovers++
			}
		}
		out = append(out, st)
		owners = append(owners, rec.Owner)
	}
	return out, owners, nil
}

// groupAction is online, offline or move.
func (s *Server) groupAction(w http.ResponseWriter, r *http.Request) error {
	name, action := r.PathValue("name"), r.PathValue("action")
	if _, err := s.svc.ReadIndex(r.Context()); err != nil {
		return err
	}
	rr, err := s.svc.Roles()
	if err != nil {
		return err
	}
	var g roles.Group
	found := false
	for _, x := range rr.Groups {
		if strings.EqualFold(x.Name, name) {
			g, found = x, true
		}
	}
	if !found {
		return fmt.Errorf("group %s: %w", name, cluster.ErrNoGroup)
	}
	switch action {
	case "online":
		if err := s.runnable(g, rr, ""); err != nil {
			return err
		}
		// Bringing a group online clears what held it offline.
		if err := s.updatePlacement(r.Context(), g.Name, func(rec *placement.Record) error {
			if rec.Held != "" {
				rec.Held, rec.Failovers = "", nil
				rec.State, rec.Reason = placement.StatePending, "brought online again by the operator"
			}
			return nil
		}); err != nil {
			return err
		}
		err = s.setWanted(r.Context(), g, roles.WantedOnline)
	case "offline":
		err = s.setWanted(r.Context(), g, roles.WantedOffline)
	case "move":
		var req wire.MoveRequest
		if r.ContentLength != 0 {
			if err := decodeBody(r, &req); err != nil {
				return err
			}
		}
		err = s.requestMove(r.Context(), g, rr, req.Node)
	default:
		return fmt.Errorf("%w: unknown group action %q (want online, offline or move)", errInvalidRequest, action)
	}
	if err != nil {
		return err
	}
	out, err := s.groupStatuses(r.Context())
	if err != nil {
		return err
	}
	for _, st := range out {
		if strings.EqualFold(st.Name, g.Name) {
			writeJSON(w, http.StatusOK, st)
			return nil
		}
	}
	return fmt.Errorf("group %s: %w", name, cluster.ErrNoGroup)
}

func (s *Server) setWanted(ctx context.Context, g roles.Group, wanted string) error {
	if g.Wanted == wanted {
		return nil
	}
	g.Wanted = wanted
	return s.svc.PutGroup(ctx, g, cluster.PutReplace)
}

// requestMove checks a move and records it for the placement engine.
func (s *Server) requestMove(ctx context.Context, g roles.Group, rr reserved.Roles, node string) error {
	if g.Wanted != roles.WantedOnline {
		return fmt.Errorf("%w: group %s is offline: bring it online (group online) rather than move it", errInvalidRequest, g.Name)
	}
	target := placement.MoveAnywhere
	if node != "" {
		m, err := s.svc.Member(node)
		if err != nil {
			return fmt.Errorf("%w: move group %s: %w", errInvalidRequest, g.Name, err)
		}
		if len(g.PossibleOwners) > 0 && !containsFold(g.PossibleOwners, m.Name) {
			return fmt.Errorf("%w: move group %s: node %s is not among its possible owners (%s)", errInvalidRequest, g.Name, m.Name, strings.Join(g.PossibleOwners, ", "))
		}
		if m.Paused {
			return fmt.Errorf("%w: move group %s: node %s is paused", errInvalidRequest, g.Name, m.Name)
		}
		if err := s.runnable(g, rr, m.ID); err != nil {
			return err
		}
		target = m.ID
	}
	return s.updatePlacement(ctx, g.Name, func(rec *placement.Record) error {
		if rec.Owner == "" || !rec.Run {
			return fmt.Errorf("%w: group %s runs nowhere now (%s): nothing to move", errInvalidRequest, g.Name, rec.State)
		}
		if rec.Owner == target {
			return fmt.Errorf("%w: group %s runs on %s already", errInvalidRequest, g.Name, rec.OwnerName)
		}
		rec.Move, rec.Reason = target, "a move was asked for"
		return nil
	})
}

// runnable refuses group g when no node (or not node, when given) that
// reported to this leader can run the types of its resources, as recorded
// in rr. It says nothing before any node reported (a leader just elected).
func (s *Server) runnable(g roles.Group, rr reserved.Roles, node string) error {
	if s.ops.placement == nil {
		return nil
	}
	reports := s.ops.placement.Reports()
	var why []string
	for id, rep := range reports {
		if node != "" && id != node {
			continue
		}
		m, err := s.svc.Member(id)
		if err != nil || (len(g.PossibleOwners) > 0 && !containsFold(g.PossibleOwners, m.Name)) {
			continue
		}
		missing := ""
		for _, name := range g.Resources {
			for _, res := range rr.Resources {
				if strings.EqualFold(res.Name, name) && rep.Unavailable[res.Type] != "" && missing == "" {
					missing = fmt.Sprintf("%s cannot run %s resources (%s)", m.Name, res.Type, rep.Unavailable[res.Type])
				}
			}
		}
		if missing == "" {
			return nil
		}
		why = append(why, missing)
	}
	if len(why) == 0 {
		return nil
	}
	sort.Strings(why)
	return fmt.Errorf("%w: group %s: %s", errInvalidRequest, g.Name, strings.Join(why, "; "))
}

// updatePlacement changes a group's placement record with f, retrying
// when the engine changed it meanwhile. Leader only.
func (s *Server) updatePlacement(ctx context.Context, group string, f func(*placement.Record) error) error {
	for range 10 {
		old, err := s.svc.Placement(group)
		if err != nil {
			return err
		}
		rec, err := placement.ParseRecord(old)
		if err != nil {
			return err
		}
		if err := f(&rec); err != nil {
			return err
		}
		rec.Changed = time.Now().UTC()
		if same(rec, old) {
			return nil
		}
		err = s.svc.SwapPlacement(ctx, group, old, rec.Encode())
		if !errors.Is(err, cluster.ErrPlacementChanged) {
			return err
		}
	}
	return fmt.Errorf("group %s: %w", group, cluster.ErrRolesBusy)
}

// same says whether rec changes nothing of the stored record old.
func same(rec placement.Record, old string) bool {
	prev, _ := placement.ParseRecord(old)
	rec.Changed, prev.Changed = time.Time{}, time.Time{}
	return rec.Encode() == prev.Encode()
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
