package api

// The roles' endpoints: resources and groups as the cluster records them,
// read with the read role and changed with the operator role. Nothing acts
// on them yet (the resource manager comes later).

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

func (s *Server) rolesRoutes() []route {
	return []route{
		{"GET /v1/resources", accessRead, s.listResources},
		{"PUT /v1/resources/{name}", accessOperator, s.leaderOnly(rolesErrors(s.putResource))},
		{"DELETE /v1/resources/{name}", accessOperator, s.leaderOnly(rolesErrors(s.deleteResource))},
		{"GET /v1/groups", accessRead, s.listGroups},
		{"PUT /v1/groups/{name}", accessOperator, s.leaderOnly(rolesErrors(s.putGroup))},
		{"DELETE /v1/groups/{name}", accessOperator, s.leaderOnly(rolesErrors(s.deleteGroup))},
	}
}

// rolesErrors gives the roles' errors their status and code; the rest
// (not leader above all, which forwards) pass on.
func rolesErrors(h func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		err := h(w, r)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, roles.ErrInvalid):
			return fmt.Errorf("%w: %w", errInvalidRequest, err)
		case errors.Is(err, cluster.ErrNoResource), errors.Is(err, cluster.ErrNoGroup):
			writeJSON(w, http.StatusNotFound, wire.Error{Code: wire.CodeNotFound, Message: err.Error()})
			return nil
		case errors.Is(err, cluster.ErrResourceExists), errors.Is(err, cluster.ErrGroupExists),
			errors.Is(err, cluster.ErrResourceInUse), errors.Is(err, cluster.ErrRolesBusy):
			writeJSON(w, http.StatusConflict, wire.Error{Code: wire.CodeConflict, Message: err.Error()})
			return nil
		}
		return err
	}
}

func putMode(r *http.Request) (cluster.PutMode, error) {
	switch m := r.URL.Query().Get("mode"); m {
	case "":
		return cluster.PutAny, nil
	case wire.PutCreate:
		return cluster.PutCreate, nil
	case wire.PutReplace:
		return cluster.PutReplace, nil
	default:
		return 0, fmt.Errorf("%w: mode %q: use %s or %s", errInvalidRequest, m, wire.PutCreate, wire.PutReplace)
	}
}

// nameFromPath fills an empty name from the path and refuses another one.
func nameFromPath(r *http.Request, name *string) error {
	p := r.PathValue("name")
	if *name == "" {
		*name = p
	}
	if *name != p {
		return fmt.Errorf("%w: the body names %q, the path %q", errInvalidRequest, *name, p)
	}
	return nil
}

func (s *Server) listResources(w http.ResponseWriter, r *http.Request) {
	if !s.consistent(w, r) {
		return
	}
	rr, err := s.svc.Roles()
	if err != nil {
		writeError(w, err)
		return
	}
	out := []roles.ResourceInfo{}
	for _, res := range rr.Resources {
		out = append(out, resourceInfo(res, rr))
	}
	writeJSON(w, http.StatusOK, out)
}

// resourceInfo describes res as recorded in rr, and says whether this
// node can run its type.
func resourceInfo(res roles.Resource, rr reserved.Roles) roles.ResourceInfo {
	ri := roles.ResourceInfo{Resource: res, Group: rr.GroupOf(res.Name)}
	if t, err := roles.Lookup(res.Type); err != nil {
		ri.Unavailable = err.Error()
	} else if err := t.Available(); err != nil {
		ri.Unavailable = err.Error()
	}
	return ri
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	if !s.consistent(w, r) {
		return
	}
	rr, err := s.svc.Roles()
	if err != nil {
		writeError(w, err)
		return
	}
	out := rr.Groups
	if out == nil {
		out = []roles.Group{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) putResource(w http.ResponseWriter, r *http.Request) error {
	mode, err := putMode(r)
	if err != nil {
		return err
	}
	var res roles.Resource
	if err := decodeBody(r, &res); err != nil {
		return err
	}
	if err := nameFromPath(r, &res.Name); err != nil {
		return err
	}
	if err := s.svc.PutResource(r.Context(), res, mode); err != nil {
		return err
	}
	res.Normalize()
	rr, err := s.svc.Roles()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resourceInfo(res, rr))
	return nil
}

func (s *Server) deleteResource(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.RemoveResource(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"removed": true})
	return nil
}

func (s *Server) putGroup(w http.ResponseWriter, r *http.Request) error {
	mode, err := putMode(r)
	if err != nil {
		return err
	}
	var g roles.Group
	if err := decodeBody(r, &g); err != nil {
		return err
	}
	if err := nameFromPath(r, &g.Name); err != nil {
		return err
	}
	if g.Wanted == roles.WantedOnline {
		rr, err := s.svc.Roles()
		if err != nil {
			return err
		}
		if err := s.runnable(g, rr, ""); err != nil {
			return err
		}
	}
	if err := s.svc.PutGroup(r.Context(), g, mode); err != nil {
		return err
	}
	g.Normalize()
	writeJSON(w, http.StatusOK, g)
	return nil
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.RemoveGroup(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"removed": true})
	return nil
}
