package api

// The scheduled backups' endpoints: the schedule is read with the read
// role and changed with the backup role; the leader's runner acts on it.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/schedule"
)

func (s *Server) scheduleRoutes() []route {
	return []route{
		{"GET /v1/schedule", accessRead, s.getSchedule},
		{"PUT /v1/schedule", accessBackup, s.leaderOnly(s.putSchedule)},
		{"DELETE /v1/schedule", accessBackup, s.leaderOnly(s.deleteSchedule)},
		{"POST /v1/schedule/run", accessBackup, s.leaderOnly(s.runSchedule)},
	}
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) {
	if !s.consistent(w, r) {
		return
	}
	cs, ss, rn, err := s.svc.ScheduleRecord()
	if err != nil {
		writeError(w, err)
		return
	}
	if cs == "" {
		writeError(w, cluster.ErrNoSchedule)
		return
	}
	out := schedule.Status{RunNow: rn, Nodes: map[string]string{}}
	if ms, err := s.svc.Members(); err == nil {
		for _, m := range ms {
			out.Nodes[m.ID] = m.Name
		}
	}
	if out.Config, err = schedule.ParseConfig(cs); err == nil {
		out.State, err = schedule.ParseState(ss)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if spec, err := schedule.ParseSpec(out.Config.Spec); err == nil && !out.Config.Paused {
		out.NextRun = spec.Next(time.Now())
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) putSchedule(w http.ResponseWriter, r *http.Request) error {
	var c schedule.Config
	if err := decodeBody(r, &c); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errInvalidRequest, err)
	}
	b, _ := json.Marshal(c)
	if err := s.svc.SetSchedule(r.Context(), string(b)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.SetSchedule(r.Context(), ""); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"removed": true})
	return nil
}

func (s *Server) runSchedule(w http.ResponseWriter, r *http.Request) error {
	cs, _, _, err := s.svc.ScheduleRecord()
	if err != nil {
		return err
	}
	if cs == "" {
		return cluster.ErrNoSchedule
	}
	if c, err := schedule.ParseConfig(cs); err == nil && c.Paused {
		return fmt.Errorf("%w: the schedule is paused: set it without --paused first", errInvalidRequest)
	}
	t := time.Now().UTC().Format(time.RFC3339Nano)
	if err := s.svc.AskScheduledRun(r.Context(), t); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"asked": t})
	return nil
}
