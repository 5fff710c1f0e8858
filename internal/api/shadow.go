package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// The requester's sequence over HTTP, so a backup program on another host
// can drive this node's coordinator. These calls are this node's own: they
// are never forwarded.

func (s *Server) shadowRoutes() []route {
	return []route{
		{"GET /v1/shadow/writers", accessRead, s.writers},
		{"POST /v1/shadow/backups", accessBackup, s.startBackup},
		{"GET /v1/shadow/backups/{id}", accessBackup, s.backupStep("document")},
		{"POST /v1/shadow/backups/{id}/{step}", accessBackup, s.backupStep("")},
		{"GET /v1/shadow/backups/{id}/item", accessBackup, s.backupItem},
		{"GET /v1/shadow/backups/{id}/hold", accessBackup, s.hold(shadow.KindBackup)},
		{"GET /v1/shadow/restores/{id}/hold", accessBackup, s.hold(shadow.KindRestore)},
		{"POST /v1/shadow/restores", accessBackup, s.startRestore},
		{"GET /v1/shadow/restores/{id}", accessBackup, s.restoreStep("document")},
		{"POST /v1/shadow/restores/{id}/{step}", accessBackup, s.restoreStep("")},
	}
}

func (s *Server) writers(w http.ResponseWriter, r *http.Request) {
	st := s.coord.GatherWriterStatus()
	fresh, _ := strconv.ParseBool(r.URL.Query().Get("refresh"))
	for _, ws := range st {
		if ws.Metadata.ID == "" {
			fresh = true
		}
	}
	if fresh {
		// Errors are in each writer's status.
		s.coord.GatherWriterMetadata(r.Context())
		st = s.coord.GatherWriterStatus()
	}
	writeJSON(w, http.StatusOK, shadow.WritersResult{Node: s.svc.Identity().NodeName, Writers: st})
}

func (s *Server) startBackup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Type shadow.BackupType `json:"type"`
		// Target is where the requester keeps the set, for the history
		// and the metrics (no credentials: a path or s3://bucket/prefix).
		Target string `json:"target,omitempty"`
	}
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Type == "" {
		req.Type = shadow.BackupFull
	}
	if len(req.Target) > 1024 || strings.ContainsFunc(req.Target, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		writeError(w, fmt.Errorf("%w: target: at most 1024 printable characters", errInvalidRequest))
		return
	}
	b, err := s.coord.StartBackupFor(r.Context(), req.Type, req.Target)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, shadow.BackupStarted{ID: b.ID(), Writers: b.Metadata(), Node: s.svc.Status(), Document: b.Document()})
}

func (s *Server) backupStep(fixed string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := s.coord.ActiveBackup(r.PathValue("id"))
		if err != nil {
			writeError(w, err)
			return
		}
		step := fixed
		if step == "" {
			step = r.PathValue("step")
		}
		ctx := r.Context()
		switch step {
		case "document":
		case "components":
			var req wire.ComponentRequest
			if err = decodeBody(r, &req); err == nil {
				if req.All {
					err = b.AddAllComponents()
				} else {
					err = b.AddComponent(req.WriterID, req.LogicalPath, req.Name)
				}
			}
		case "prepare":
			err = b.PrepareForBackup(ctx)
		case "snapshot":
			var set *shadow.SnapshotSet
			if set, err = b.DoSnapshotSet(ctx); err == nil {
				writeJSON(w, http.StatusOK, set)
				return
			}
		case "complete":
			doc := b.Document()
			if err = b.BackupComplete(ctx); err == nil {
				writeJSON(w, http.StatusOK, doc)
				return
			}
		case "abort":
			err = b.AbortBackup(ctx)
		default:
			err = fmt.Errorf("%w: unknown backup step %q", errInvalidRequest, step)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, b.Document())
	}
}

// hold answers when the session ends. The requester keeps this call open
// for the whole session: when its connection closes first (the requester
// died), the request's context ends and the coordinator aborts the session
// at once, naming the requester as gone.
func (s *Server) hold(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := s.coord.Hold(r.Context(), kind, id); err != nil {
			if r.Context().Err() == nil {
				writeError(w, err)
			}
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "ended": true})
	}
}

// backupItem streams one captured item of the snapshot set.
func (s *Server) backupItem(w http.ResponseWriter, r *http.Request) {
	b, err := s.coord.ActiveBackup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	set, err := b.SnapshotSet()
	if err != nil {
		writeError(w, err)
		return
	}
	it, err := set.Item(r.URL.Query().Get("name"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, wire.Error{Code: wire.CodeInvalid, Message: err.Error()})
		return
	}
	rc, err := it.Open()
	if err != nil {
		writeError(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(it.Size, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(touchWriter{w, b}, rc); err != nil && r.Context().Err() != nil {
		// The requester went away in the middle of the copy: it will
		// not complete this backup, so release what it holds now.
		s.log.Warn("requester went away while reading the snapshot set: aborting", "backup", b.ID(), "err", err)
		b.AbortBackup(context.Background())
	}
}

// touchWriter keeps the backup alive while its items are read.
type touchWriter struct {
	w io.Writer
	b *shadow.Backup
}

func (t touchWriter) Write(p []byte) (int, error) {
	t.b.Touch()
	return t.w.Write(p)
}

func (s *Server) startRestore(w http.ResponseWriter, r *http.Request) {
	var doc shadow.BackupComponents
	if err := decodeBody(r, &doc); err != nil {
		writeError(w, err)
		return
	}
	rs, err := s.coord.StartRestore(r.Context(), doc)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, shadow.BackupStarted{ID: rs.ID(), Writers: rs.Metadata(), Node: s.svc.Status(), Document: rs.Document()})
}

func (s *Server) restoreStep(fixed string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs, err := s.coord.ActiveRestore(r.PathValue("id"))
		if err != nil {
			writeError(w, err)
			return
		}
		step := fixed
		if step == "" {
			step = r.PathValue("step")
		}
		switch step {
		case "document":
		case "select":
			var req wire.ComponentRequest
			if err = decodeBody(r, &req); err == nil {
				err = rs.SetSelectedForRestore(req.WriterID, req.LogicalPath, req.Name, req.Selected)
				if err == nil {
					err = rs.SetAuthoritativeRestore(req.WriterID, req.LogicalPath, req.Name, req.Authoritative)
				}
				if err == nil && req.RestoreTarget != "" {
					err = rs.SetRestoreTarget(req.WriterID, req.LogicalPath, req.Name, req.RestoreTarget)
				}
			}
		case "touch":
			rs.Touch()
		case "pre-restore":
			err = rs.PreRestore(r.Context())
		case "post-restore":
			doc := rs.Document()
			if err = rs.PostRestore(r.Context()); err == nil {
				writeJSON(w, http.StatusOK, doc)
				return
			}
		case "abort":
			err = rs.Abort(r.Context())
		default:
			err = fmt.Errorf("%w: unknown restore step %q", errInvalidRequest, step)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, rs.Document())
	}
}
