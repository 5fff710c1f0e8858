package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// Writers gathers the writers of the node the handle talks to, with their
// states and last errors (GatherWriterStatus; refresh runs Identify first).
func (c *Cluster) Writers(ctx context.Context, refresh bool) (shadow.WritersResult, error) {
	var r shadow.WritersResult
	q := ""
	if refresh {
		q = "?refresh=true"
	}
	err := c.getJSON(ctx, "/v1/shadow/writers"+q, &r)
	return r, err
}

// RemoteBackup is a backup a requester drives on one node through the
// API. Its calls go to that node only: a backup is that node's.
type RemoteBackup struct {
	node    *Cluster
	Started shadow.BackupStarted
}

// StartBackup begins a backup on the node at addr (InitializeForBackup,
// GatherWriterMetadata, SetBackupState).
func StartBackup(ctx context.Context, addr string, typ shadow.BackupType, opts ...Option) (*RemoteBackup, error) {
	return StartBackupTo(ctx, addr, typ, "", opts...)
}

// StartBackupTo is StartBackup naming where the set will be kept (target:
// a directory or s3://bucket/prefix, no credentials), which the node
// records with the session and shows in its metrics.
func StartBackupTo(ctx context.Context, addr string, typ shadow.BackupType, target string, opts ...Option) (*RemoteBackup, error) {
	n := Node(addr, opts...)
	b := &RemoteBackup{node: n}
	body := map[string]any{"type": typ}
	if target != "" {
		body["target"] = target
	}
	if err := n.postJSON(ctx, "/v1/shadow/backups", body, &b.Started, false); err != nil {
		return nil, fmt.Errorf("start backup on %s: %w", addr, err)
	}
	return b, nil
}

// ID is the backup's id.
func (b *RemoteBackup) ID() string { return b.Started.ID }

func (b *RemoteBackup) step(ctx context.Context, step string, in, out any) error {
	if err := b.node.postJSON(ctx, "/v1/shadow/backups/"+b.ID()+"/"+step, in, out, false); err != nil {
		return fmt.Errorf("backup %s: %s: %w", b.ID(), step, err)
	}
	return nil
}

// AddComponent selects one component (AddComponent).
func (b *RemoteBackup) AddComponent(ctx context.Context, writerID, logicalPath, name string) error {
	return b.step(ctx, "components", wire.ComponentRequest{WriterID: writerID, LogicalPath: logicalPath, Name: name}, nil)
}

// AddAllComponents selects every component of every writer.
func (b *RemoteBackup) AddAllComponents(ctx context.Context) error {
	return b.step(ctx, "components", wire.ComponentRequest{All: true}, nil)
}

// PrepareForBackup runs PrepareForBackup on the node's writers.
func (b *RemoteBackup) PrepareForBackup(ctx context.Context) error {
	return b.step(ctx, "prepare", nil, nil)
}

// DoSnapshotSet freezes, captures and thaws, and returns what was captured.
func (b *RemoteBackup) DoSnapshotSet(ctx context.Context) (shadow.SnapshotSet, error) {
	var set shadow.SnapshotSet
	err := b.step(ctx, "snapshot", nil, &set)
	return set, err
}

// Item reads one captured item.
func (b *RemoteBackup) Item(ctx context.Context, name string) (io.ReadCloser, error) {
	resp, err := b.node.do(ctx, request{method: http.MethodGet, path: "/v1/shadow/backups/" + b.ID() + "/item?name=" + url.QueryEscape(name), idempotent: true})
	if err != nil {
		return nil, fmt.Errorf("backup %s: read %s: %w", b.ID(), name, err)
	}
	return streamBody{resp.Body, b.node.Current()}, nil
}

// streamBody reports the node going away in the middle of a stream as
// ErrUnavailable, as a failed call would be.
type streamBody struct {
	io.ReadCloser
	addr string
}

func (s streamBody) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %s stopped in the middle of a stream: %w", ErrUnavailable, s.addr, err)
	}
	return n, err
}

// BackupComplete ends the backup and returns the final components document.
func (b *RemoteBackup) BackupComplete(ctx context.Context) (shadow.BackupComponents, error) {
	var doc shadow.BackupComponents
	err := b.step(ctx, "complete", nil, &doc)
	return doc, err
}

// AbortBackup abandons the backup.
func (b *RemoteBackup) AbortBackup(ctx context.Context) error { return b.step(ctx, "abort", nil, nil) }

// Document returns the backup components document as it stands.
func (b *RemoteBackup) Document(ctx context.Context) (shadow.BackupComponents, error) {
	var doc shadow.BackupComponents
	err := b.node.getJSON(ctx, "/v1/shadow/backups/"+b.ID(), &doc)
	return doc, err
}

// RemoteRestore is a restore a requester drives on one node.
type RemoteRestore struct {
	node    *Cluster
	Started shadow.BackupStarted
}

// StartRestore begins a restore of a backup with components document doc
// on the node at addr (InitializeForRestore).
func StartRestore(ctx context.Context, addr string, doc shadow.BackupComponents) (*RemoteRestore, error) {
	n := Node(addr)
	r := &RemoteRestore{node: n}
	if err := n.postJSON(ctx, "/v1/shadow/restores", doc, &r.Started, false); err != nil {
		return nil, fmt.Errorf("start restore on %s: %w", addr, err)
	}
	return r, nil
}

func (r *RemoteRestore) step(ctx context.Context, step string, in, out any) error {
	if err := r.node.postJSON(ctx, "/v1/shadow/restores/"+r.Started.ID+"/"+step, in, out, false); err != nil {
		return fmt.Errorf("restore %s: %s: %w", r.Started.ID, step, err)
	}
	return nil
}

// Select selects a component for restore (SetSelectedForRestore), marks it
// authoritative or not (SetAuthoritativeRestore) and sets its target.
func (r *RemoteRestore) Select(ctx context.Context, req wire.ComponentRequest) error {
	return r.step(ctx, "select", req, nil)
}

// PreRestore runs PreRestore on the writers of selected components.
func (r *RemoteRestore) PreRestore(ctx context.Context) error {
	return r.step(ctx, "pre-restore", nil, nil)
}

// PostRestore runs PostRestore and ends the restore.
func (r *RemoteRestore) PostRestore(ctx context.Context) (shadow.BackupComponents, error) {
	var doc shadow.BackupComponents
	err := r.step(ctx, "post-restore", nil, &doc)
	return doc, err
}

// Abort abandons the restore.
func (r *RemoteRestore) Abort(ctx context.Context) error { return r.step(ctx, "abort", nil, nil) }

// Touch keeps the restore alive while the requester puts files back.
func (r *RemoteRestore) Touch(ctx context.Context) error { return r.step(ctx, "touch", nil, nil) }

// hold keeps one call to the node open for the life of a session (until
// the session ends or release is called), so that the node's coordinator
// notices at once when this requester is gone: its connection closes and
// the node aborts the session rather than waiting out its timeout. A node
// that does not know the call answers it at once; nothing else changes.
func hold(ctx context.Context, node *Cluster, path string) (release func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ended map[string]any
		node.getJSON(ctx, path, &ended)
	}()
	return func() {
		cancel()
		<-done
	}
}

// Hold keeps a call open to the node while the backup runs (see hold);
// call release after the backup completed or was aborted.
func (b *RemoteBackup) Hold(ctx context.Context) (release func()) {
	return hold(ctx, b.node, "/v1/shadow/backups/"+b.ID()+"/hold")
}

// Hold keeps a call open to the node while the restore runs (see hold);
// call release after the restore ended.
func (r *RemoteRestore) Hold(ctx context.Context) (release func()) {
	return hold(ctx, r.node, "/v1/shadow/restores/"+r.Started.ID+"/hold")
}
