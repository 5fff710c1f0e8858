package shadow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Config configures a Coordinator.
type Config struct {
	// StageDir holds snapshot sets while a backup runs; each set is a
	// subdirectory removed when its backup completes or aborts.
	StageDir string
	Provider Provider
	// FreezeWindow bounds the time from the first Freeze to the last Thaw;
	// when it passes, writers are thawed at once and the snapshot refused.
	FreezeWindow time.Duration
	// SessionTimeout aborts a backup or restore whose requester has made no
	// call for this long (it died, or lost the node).
	SessionTimeout time.Duration
	// CallTimeout bounds each writer call other than Freeze.
	CallTimeout time.Duration
	Log         *slog.Logger
}

// WriterStatus is a writer's state as GatherWriterStatus reports it.
type WriterStatus struct {
	Metadata  WriterMetadata `json:"metadata"`
	State     WriterState    `json:"state"`
	LastPhase Phase          `json:"last_phase,omitempty"`
	LastError string         `json:"last_error,omitempty"`
	Retryable bool           `json:"retryable,omitempty"`
}

// Coordinator drives the writers of one node through backups and restores.
// One backup or restore runs at a time.
type Coordinator struct {
	cfg Config

	mu      sync.Mutex
	writers []Writer
	status  []*WriterStatus // parallel to writers
	active  *session

	hist history
}

// NewCoordinator returns a coordinator with no writers.
func NewCoordinator(cfg Config) *Coordinator {
	if cfg.Provider == nil {
		cfg.Provider = ReflinkProvider{}
	}
	if cfg.FreezeWindow == 0 {
		cfg.FreezeWindow = 60 * time.Second
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = time.Minute
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 5 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Coordinator{cfg: cfg}
}

// Register adds a writer.
func (c *Coordinator) Register(w Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writers = append(c.writers, w)
	c.status = append(c.status, &WriterStatus{State: StateStable})
}

// GatherWriterStatus reports every writer's state and last error.
func (c *Coordinator) GatherWriterStatus() []WriterStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]WriterStatus, len(c.status))
	for i, s := range c.status {
		out[i] = *s
	}
	return out
}

// GatherWriterMetadata asks every writer to identify itself. A writer that
// fails is reported in the error and its status; the others are returned.
func (c *Coordinator) GatherWriterMetadata(ctx context.Context) ([]WriterMetadata, error) {
	ents, err := c.identify(ctx)
	var out []WriterMetadata
	for _, e := range ents {
		out = append(out, e.meta)
	}
	return out, err
}

// entry is a writer taking part in a session.
type entry struct {
	w      Writer
	st     *WriterStatus
	meta   WriterMetadata
	frozen bool
	thawed bool
}

func (c *Coordinator) identify(ctx context.Context) ([]*entry, error) {
	c.mu.Lock()
	writers, status := append([]Writer(nil), c.writers...), append([]*WriterStatus(nil), c.status...)
	c.mu.Unlock()
	var ents []*entry
	var errs []error
	for i, w := range writers {
		e := &entry{w: w, st: status[i]}
		err := c.call(ctx, nil, e, PhaseIdentify, func(ctx context.Context) error {
			m, err := w.Identify(ctx)
			if err == nil {
				err = m.Validate()
			}
			e.meta = m
			return err
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.mu.Lock()
		e.st.Metadata = e.meta
		c.mu.Unlock()
		ents = append(ents, e)
	}
	return ents, errors.Join(errs...)
}

// call runs one writer phase, records its outcome in the writer's status
// and the document, and wraps a failure in a *WriterError.
func (c *Coordinator) call(ctx context.Context, doc *BackupComponents, e *entry, ph Phase, fn func(context.Context) error) error {
	if ph != PhaseFreeze {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	err := fn(ctx)
	ps := PhaseStatus{Phase: ph, State: afterPhase[ph]}
	if err != nil {
		ps.State, ps.Error, ps.Retryable = failedAt[ph], err.Error(), isRetryable(err)
		if ph == PhaseAbort {
			ps.State = StateStable
		}
		err = &WriterError{Writer: e.meta.Name, WriterID: e.meta.ID, Phase: ph, Retryable: ps.Retryable, Err: err}
		c.cfg.Log.Warn("writer failed", "writer", e.meta.Name, "phase", ph, "err", ps.Error)
	}
	c.mu.Lock()
	// A writer that failed keeps its failure state through the thaw and
	// abort that clean up after it; the next Identify starts afresh.
	cleanup := err == nil && (ph == PhaseThaw || ph == PhaseAbort) && strings.HasPrefix(string(e.st.State), "FailedAt")
	if !cleanup {
		e.st.State, e.st.LastPhase = ps.State, ph
	}
	if err != nil || ph == PhaseIdentify {
		e.st.LastError, e.st.Retryable = ps.Error, ps.Retryable
	}
	if doc != nil {
		doc.record(e.meta.ID, ps)
	}
	c.mu.Unlock()
	return err
}

// session is a backup or restore in progress.
type session struct {
	c       *Coordinator
	id      string
	kind    string // "backup" or "restore"
	doc     BackupComponents
	all     []*entry // every writer that identified
	parts   []*entry // writers with selected components
	step    Phase    // the last step completed
	set     *SnapshotSet
	ended   bool
	cause   error // why the session is aborted, when a step failed
	last    time.Time
	mu      sync.Mutex // serializes the requester's calls
	janitor *time.Timer
	done    chan struct{} // closed when the session ends
}

func (c *Coordinator) begin(ctx context.Context, rec SessionRecord) (*session, error) {
	kind := rec.Kind
	c.mu.Lock()
	if c.active != nil {
		busy := c.active
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %s %s", ErrBusy, busy.kind, busy.id)
	}
	s := &session{c: c, id: uuid.NewString(), kind: kind, last: time.Now(), done: make(chan struct{})}
	c.active = s
	c.mu.Unlock()
	rec.ID, rec.Started = s.id, s.last.UTC()
	c.hist.start(rec)
	ents, err := c.identify(ctx)
	if err != nil {
		err = fmt.Errorf("%s: gather writer metadata: %w", kind, err)
		c.hist.end(s.id, ResultFailed, nil, err)
		c.release(s)
		return nil, err
	}
	s.all = ents
	s.janitor = time.AfterFunc(c.cfg.SessionTimeout, s.expire)
	return s, nil
}

func (c *Coordinator) release(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active == s {
		c.active = nil
	}
}

// expire aborts a session whose requester went silent.
func (s *session) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if idle := time.Since(s.last); idle < s.c.cfg.SessionTimeout {
		s.janitor.Reset(s.c.cfg.SessionTimeout - idle)
		return
	}
	s.c.cfg.Log.Warn("requester went silent: aborting", "session", s.id, "kind", s.kind)
	s.cause = fmt.Errorf("the requester was silent for %v", s.c.cfg.SessionTimeout)
	s.abortLocked(context.Background())
}

// enter starts a requester call: it fails once the session ended.
func (s *session) enter() error {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s %s", ErrSessionEnded, s.kind, s.id)
	}
	s.last = time.Now()
	return nil
}

func (s *session) leave() {
	s.last = time.Now()
	s.mu.Unlock()
}

func (s *session) writer(id string) (*entry, error) {
	for _, e := range s.all {
		if e.meta.ID == id || strings.EqualFold(e.meta.Name, id) {
			return e, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNoWriter, id)
}

func (s *session) participants() []*entry {
	var out []*entry
	for _, e := range s.all {
		if len(s.doc.Selected(e.meta.ID)) > 0 {
			out = append(out, e)
		}
	}
	return out
}

// end finishes a session with its result and removes what it staged.
func (s *session) end(result string, err error) {
	s.ended = true
	close(s.done)
	s.c.hist.end(s.id, result, s.set, err)
	if s.janitor != nil {
		s.janitor.Stop()
	}
	if s.set != nil && s.set.Dir != "" {
		os.RemoveAll(s.set.Dir)
	}
	s.c.release(s)
}

func (s *session) abortLocked(ctx context.Context) error {
	if s.ended {
		return nil
	}
	var errs []error
	for i := len(s.parts) - 1; i >= 0; i-- {
		e := s.parts[i]
		if s.kind == "restore" && s.step == PhasePreRestore {
			// A writer that stopped its application for the restore
			// starts it again, whatever became of the restore.
			if err := s.c.call(ctx, &s.doc, e, PhasePostRestore, func(ctx context.Context) error { return e.w.PostRestore(ctx, &s.doc) }); err != nil {
				errs = append(errs, err)
			}
		}
		if e.frozen && !e.thawed {
			e.thawed = true
			if err := s.c.call(ctx, &s.doc, e, PhaseThaw, e.w.Thaw); err != nil {
				errs = append(errs, err)
			}
		}
		if err := s.c.call(ctx, &s.doc, e, PhaseAbort, e.w.Abort); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	why := errors.New("aborted")
	if s.cause != nil {
		why = fmt.Errorf("aborted: %w", s.cause)
	}
	s.end(ResultFailed, errors.Join(why, err))
	return err
}

// Backup is a backup in progress (InitializeForBackup to BackupComplete).
type Backup struct{ s *session }

// StartBackup begins a backup: it gathers writer metadata and sets the
// backup state (InitializeForBackup, GatherWriterMetadata, SetBackupState).
func (c *Coordinator) StartBackup(ctx context.Context, typ BackupType) (*Backup, error) {
	return c.StartBackupFor(ctx, typ, "")
}

// StartBackupFor is StartBackup for a requester that names where it keeps
// the set (target, recorded in the session's history; "" when unsaid).
func (c *Coordinator) StartBackupFor(ctx context.Context, typ BackupType, target string) (*Backup, error) {
	if typ != BackupFull && typ != BackupCopy {
		return nil, fmt.Errorf("backup type %q: want full or copy", typ)
	}
	s, err := c.begin(ctx, SessionRecord{Kind: KindBackup, Type: typ, Target: target})
	if err != nil {
		return nil, err
	}
	s.doc = BackupComponents{BackupID: s.id, BackupType: typ, Created: time.Now().UTC(), Components: []SelectedComponent{}}
	return &Backup{s}, nil
}

// ActiveBackup returns the backup in progress with the given id.
func (c *Coordinator) ActiveBackup(id string) (*Backup, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active == nil || c.active.id != id || c.active.kind != "backup" {
		return nil, fmt.Errorf("%w: no backup %s in progress", ErrSessionEnded, id)
	}
	return &Backup{c.active}, nil
}

// ID is the backup's id.
func (b *Backup) ID() string { return b.s.id }

// Metadata returns the metadata of the writers that identified.
func (b *Backup) Metadata() []WriterMetadata {
	var out []WriterMetadata
	for _, e := range b.s.all {
		out = append(out, e.meta)
	}
	return out
}

// Document returns a copy of the backup components document.
func (b *Backup) Document() BackupComponents {
	b.s.c.mu.Lock()
	defer b.s.c.mu.Unlock()
	d := b.s.doc
	d.Components = append([]SelectedComponent(nil), d.Components...)
	d.WriterStatus = map[string][]PhaseStatus{}
	for k, v := range b.s.doc.WriterStatus {
		d.WriterStatus[k] = append([]PhaseStatus(nil), v...)
	}
	return d
}

// AddComponent selects a component of a writer for the backup.
func (b *Backup) AddComponent(writerID, logicalPath, name string) error {
	s := b.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if s.step != "" {
		return fmt.Errorf("%w: AddComponent after %s", ErrWrongState, s.step)
	}
	e, err := s.writer(writerID)
	if err != nil {
		return err
	}
	if _, ok := e.meta.Component(logicalPath, name); !ok {
		return fmt.Errorf("%w: writer %q has no component %s\\%s", ErrNoComponent, e.meta.Name, logicalPath, name)
	}
	if _, err := s.doc.find(e.meta.ID, logicalPath, name); err == nil {
		return nil
	}
	s.doc.Components = append(s.doc.Components, SelectedComponent{WriterID: e.meta.ID, WriterName: e.meta.Name, LogicalPath: logicalPath, Name: name})
	return nil
}

// AddAllComponents selects every component of every writer.
func (b *Backup) AddAllComponents() error {
	for _, m := range b.Metadata() {
		for _, c := range m.Components {
			if err := b.AddComponent(m.ID, c.LogicalPath, c.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// PrepareForBackup tells the writers with selected components to prepare.
func (b *Backup) PrepareForBackup(ctx context.Context) error {
	s := b.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if s.step != "" {
		return fmt.Errorf("%w: PrepareForBackup after %s", ErrWrongState, s.step)
	}
	s.parts = s.participants()
	if len(s.parts) == 0 {
		return ErrNothingSelected
	}
	for _, e := range s.parts {
		if err := s.c.call(ctx, &s.doc, e, PhasePrepareForBackup, func(ctx context.Context) error { return e.w.PrepareForBackup(ctx, &s.doc) }); err != nil {
			s.cause = err
			return errors.Join(err, s.abortLocked(context.Background()))
		}
	}
	s.step = PhasePrepareForBackup
	return nil
}

// SnapshotSet is what DoSnapshotSet captured: files copied (or cloned)
// while their writers were frozen, and the streams of self-checkpointing
// writers. It stays readable until BackupComplete or AbortBackup.
type SnapshotSet struct {
	ID       string         `json:"id"`
	Provider string         `json:"provider"`
	Items    []SnapshotItem `json:"items"`
	// Frozen is how long the writers were frozen.
	Frozen time.Duration `json:"frozen_ns"`
	Dir    string        `json:"-"`
}

// Item finds an item by its name in the backup.
func (ss *SnapshotSet) Item(name string) (*SnapshotItem, error) {
	for i := range ss.Items {
		if ss.Items[i].Name == name {
			return &ss.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no item %q in snapshot set %s", name, ss.ID)
}

// DoSnapshotSet runs PrepareForSnapshot, Freeze, the provider's capture,
// Thaw and PostSnapshot. Thaw always follows Freeze: when a step fails, when
// ctx ends (the requester went away) and when the freeze window passes
// (then at once, from a timer, and the snapshot is refused). On any failure
// the backup is aborted and nothing it staged is left.
func (b *Backup) DoSnapshotSet(ctx context.Context) (*SnapshotSet, error) {
	s := b.s
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if s.step != PhasePrepareForBackup {
		return nil, fmt.Errorf("%w: DoSnapshotSet before PrepareForBackup", ErrWrongState)
	}
	fail := func(err error) (*SnapshotSet, error) {
		s.cause = err
		return nil, errors.Join(err, s.abortLocked(context.Background()))
	}
	for _, e := range s.parts {
		if err := s.c.call(ctx, &s.doc, e, PhasePrepareForSnapshot, e.w.PrepareForSnapshot); err != nil {
			return fail(err)
		}
	}
	set := &SnapshotSet{ID: s.id, Provider: s.c.cfg.Provider.Name(), Dir: filepath.Join(s.c.cfg.StageDir, s.id)}
	s.set = set

	// The freeze window: from the first Freeze, a timer thaws every frozen
	// writer when it passes, whatever the capture is doing.
	windowCtx, cancel := context.WithTimeout(ctx, s.c.cfg.FreezeWindow)
	defer cancel()
	var thawMu sync.Mutex
	var thawErrs []error
	thawAll := func() {
		thawMu.Lock()
		defer thawMu.Unlock()
		for i := len(s.parts) - 1; i >= 0; i-- {
			e := s.parts[i]
			if e.frozen && !e.thawed {
				e.thawed = true
				tctx, tcancel := context.WithTimeout(context.Background(), s.c.cfg.CallTimeout)
				if err := s.c.call(tctx, &s.doc, e, PhaseThaw, e.w.Thaw); err != nil {
					thawErrs = append(thawErrs, err)
				}
				tcancel()
			}
		}
	}
	start := time.Now()
	timer := time.AfterFunc(s.c.cfg.FreezeWindow, func() {
		s.c.cfg.Log.Warn("freeze window expired: thawing writers", "backup", s.id, "window", s.c.cfg.FreezeWindow)
		thawAll()
	})
	captureErr := b.freezeAndCapture(windowCtx, set, &thawMu)
	timer.Stop()
	thawAll()
	set.Frozen = time.Since(start)
	if captureErr == nil && windowCtx.Err() != nil {
		captureErr = windowCtx.Err()
	}
	if errors.Is(captureErr, context.DeadlineExceeded) && ctx.Err() == nil {
		captureErr = fmt.Errorf("%w (after %v): %w", ErrFreezeTimeout, s.c.cfg.FreezeWindow, captureErr)
	}
	if err := errors.Join(append([]error{captureErr}, thawErrs...)...); err != nil {
		return fail(err)
	}
	for _, e := range s.parts {
		if err := s.c.call(ctx, &s.doc, e, PhasePostSnapshot, e.w.PostSnapshot); err != nil {
			return fail(err)
		}
	}
	s.step = PhasePostSnapshot
	return set, nil
}

func (b *Backup) freezeAndCapture(ctx context.Context, set *SnapshotSet, thawMu *sync.Mutex) error {
	s := b.s
	for _, e := range s.parts {
		// Freeze runs under thawMu, so the window's timer cannot thaw a
		// writer while it is still freezing; a writer whose Freeze was
		// called is thawed even when its Freeze failed.
		thawMu.Lock()
		if ctx.Err() != nil {
			thawMu.Unlock()
			return ctx.Err()
		}
		err := s.c.call(ctx, &s.doc, e, PhaseFreeze, e.w.Freeze)
		e.frozen = true
		thawMu.Unlock()
		if err != nil {
			return err
		}
	}
	for _, e := range s.parts {
		for i, sel := range s.doc.Components {
			if sel.WriterID != e.meta.ID {
				continue
			}
			comp, _ := e.meta.Component(sel.LogicalPath, sel.Name)
			items, err := b.capture(ctx, set, e, comp)
			if err != nil {
				s.c.mu.Lock()
				e.st.State, e.st.LastPhase, e.st.LastError = failedAt[PhaseSnapshot], PhaseSnapshot, err.Error()
				s.c.mu.Unlock()
				return &WriterError{Writer: e.meta.Name, WriterID: e.meta.ID, Phase: PhaseSnapshot, Err: err}
			}
			for _, it := range items {
				s.doc.Components[i].Files = append(s.doc.Components[i].Files, it.Name)
			}
			set.Items = append(set.Items, items...)
		}
	}
	return ctx.Err()
}

// ItemName is where an item of a writer's component lives inside a backup
// set: writers/<writer id>/<component>/<file path or stream name>.
func ItemName(writerID string, comp Component, rest string) string {
	return path.Join("writers", writerID, comp.Name, strings.TrimPrefix(filepath.ToSlash(rest), "/"))
}

func (b *Backup) capture(ctx context.Context, set *SnapshotSet, e *entry, comp Component) ([]SnapshotItem, error) {
	var items []SnapshotItem
	for _, f := range comp.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := ItemName(e.meta.ID, comp, f)
		dst := filepath.Join(set.Dir, filepath.FromSlash(name))
		n, method, err := b.s.c.cfg.Provider.Capture(f, dst)
		if err != nil {
			return nil, err
		}
		items = append(items, SnapshotItem{WriterID: e.meta.ID, WriterName: e.meta.Name, Component: comp.Key(),
			Name: name, Source: f, Size: n, Method: method, path: dst})
	}
	if len(comp.Streams) > 0 {
		sw, ok := e.w.(StreamWriter)
		if !ok {
			return nil, fmt.Errorf("component %s declares streams but the writer hands none", comp.Key())
		}
		streams, err := sw.Streams(ctx, comp)
		if err != nil {
			return nil, err
		}
		for _, st := range streams {
			items = append(items, SnapshotItem{WriterID: e.meta.ID, WriterName: e.meta.Name, Component: comp.Key(),
				Name: ItemName(e.meta.ID, comp, st.Name), Size: st.Size, Method: "stream", Info: st.Info, open: st.Open})
		}
	}
	return items, nil
}

// SnapshotSet returns the set DoSnapshotSet captured.
func (b *Backup) SnapshotSet() (*SnapshotSet, error) {
	s := b.s
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if s.set == nil || s.step != PhasePostSnapshot {
		return nil, fmt.Errorf("%w: no snapshot set yet", ErrWrongState)
	}
	return s.set, nil
}

// Touch tells the coordinator the requester is still there (it is copying
// the snapshot set), so the session is not aborted as abandoned.
func (b *Backup) Touch() {
	b.s.mu.Lock()
	b.s.last = time.Now()
	b.s.mu.Unlock()
}

// BackupComplete tells the writers the backup is stored (or, with
// succeeded false, that it is not) and releases the snapshot set.
func (b *Backup) BackupComplete(ctx context.Context) error {
	s := b.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if s.step != PhasePostSnapshot {
		return fmt.Errorf("%w: BackupComplete before DoSnapshotSet", ErrWrongState)
	}
	var errs []error
	for _, e := range s.parts {
		if err := s.c.call(ctx, &s.doc, e, PhaseBackupComplete, func(ctx context.Context) error { return e.w.BackupComplete(ctx, &s.doc) }); err != nil {
			errs = append(errs, err)
		}
	}
	s.step = PhaseBackupComplete
	err := errors.Join(errs...)
	s.end(ResultCompleted, err)
	return err
}

// AbortBackup abandons the backup: frozen writers are thawed, every writer
// that took part is told to abort, and the snapshot set is removed.
func (b *Backup) AbortBackup(ctx context.Context) error {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.abortLocked(ctx)
}

// Close aborts the backup or restore in progress, if any, releasing what
// its writers hold (the service is stopping).
func (c *Coordinator) Close(ctx context.Context) error {
	c.mu.Lock()
	s := c.active
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.abortLocked(ctx)
}
