package shadow

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Restore is a restore in progress (InitializeForRestore to PostRestore).
// The requester selects components, marks them authoritative, calls
// PreRestore, puts the files back by each writer's restore method, and
// calls PostRestore.
type Restore struct{ s *session }

// StartRestore begins a restore of a backup whose components document is
// doc (InitializeForRestore). Nothing is selected until the requester says so.
func (c *Coordinator) StartRestore(ctx context.Context, doc BackupComponents) (*Restore, error) {
	s, err := c.begin(ctx, SessionRecord{Kind: KindRestore})
	if err != nil {
		return nil, err
	}
	doc.WriterStatus = nil
	doc.Components = append([]SelectedComponent(nil), doc.Components...)
	for i := range doc.Components {
		doc.Components[i].SelectedForRestore = false
		doc.Components[i].Authoritative = false
	}
	s.doc = doc
	return &Restore{s}, nil
}

// ID is the restore's id.
func (r *Restore) ID() string { return r.s.id }

// Document returns a copy of the restore's components document.
func (r *Restore) Document() BackupComponents { return (&Backup{r.s}).Document() }

// Metadata returns the metadata of this node's writers.
func (r *Restore) Metadata() []WriterMetadata { return (&Backup{r.s}).Metadata() }

func (r *Restore) set(writerID, logicalPath, name string, fn func(*SelectedComponent)) error {
	s := r.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if s.step != "" {
		return fmt.Errorf("%w: selection after %s", ErrWrongState, s.step)
	}
	e, err := s.writer(writerID)
	if err != nil {
		return err
	}
	c, err := s.doc.find(e.meta.ID, logicalPath, name)
	if err != nil {
		return err
	}
	fn(c)
	return nil
}

// SetSelectedForRestore selects (or deselects) a component of the backup.
func (r *Restore) SetSelectedForRestore(writerID, logicalPath, name string, selected bool) error {
	return r.set(writerID, logicalPath, name, func(c *SelectedComponent) { c.SelectedForRestore = selected })
}

// SetAuthoritativeRestore marks a component's restore authoritative: its
// data replaces the whole cluster's, not only this node's.
func (r *Restore) SetAuthoritativeRestore(writerID, logicalPath, name string, authoritative bool) error {
	return r.set(writerID, logicalPath, name, func(c *SelectedComponent) { c.Authoritative = authoritative })
}

// SetRestoreTarget restores a component to an alternate location.
func (r *Restore) SetRestoreTarget(writerID, logicalPath, name, target string) error {
	return r.set(writerID, logicalPath, name, func(c *SelectedComponent) { c.RestoreTarget = target })
}

func (r *Restore) restoring() []*entry {
	var out []*entry
	for _, e := range r.s.all {
		for _, c := range r.s.doc.Selected(e.meta.ID) {
			if c.SelectedForRestore {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// PreRestore tells the writers of selected components that their data is
// about to be replaced (a RESTORE_STOP_START writer stops its service).
func (r *Restore) PreRestore(ctx context.Context) error {
	s := r.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if s.step != "" {
		return fmt.Errorf("%w: PreRestore after %s", ErrWrongState, s.step)
	}
	s.parts = r.restoring()
	if len(s.parts) == 0 {
		return ErrNothingSelected
	}
	for _, e := range s.parts {
		if err := s.c.call(ctx, &s.doc, e, PhasePreRestore, func(ctx context.Context) error { return e.w.PreRestore(ctx, &s.doc) }); err != nil {
			s.cause = err
			return errors.Join(err, s.abortLocked(context.Background()))
		}
	}
	s.step = PhasePreRestore
	return nil
}

// PostRestore tells the writers their data is back (a RESTORE_STOP_START
// writer starts its service) and ends the restore.
func (r *Restore) PostRestore(ctx context.Context) error {
	s := r.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if s.step != PhasePreRestore {
		return fmt.Errorf("%w: PostRestore before PreRestore", ErrWrongState)
	}
	var errs []error
	for _, e := range s.parts {
		if err := s.c.call(ctx, &s.doc, e, PhasePostRestore, func(ctx context.Context) error { return e.w.PostRestore(ctx, &s.doc) }); err != nil {
			errs = append(errs, err)
		}
	}
	s.step = PhasePostRestore
	err := errors.Join(errs...)
	s.end(ResultCompleted, err)
	return err
}

// Abort abandons the restore.
func (r *Restore) Abort(ctx context.Context) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.s.abortLocked(ctx)
}

// ActiveRestore returns the restore in progress with the given id.
func (c *Coordinator) ActiveRestore(id string) (*Restore, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active == nil || c.active.id != id || c.active.kind != "restore" {
		return nil, fmt.Errorf("%w: no restore %s in progress", ErrSessionEnded, id)
	}
	return &Restore{c.active}, nil
}

// Touch tells the coordinator the requester is still there (it is putting
// files back between PreRestore and PostRestore).
func (r *Restore) Touch() {
	r.s.mu.Lock()
	r.s.last = time.Now()
	r.s.mu.Unlock()
}
