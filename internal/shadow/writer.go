package shadow

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Phase names a step of the backup or restore sequence.
type Phase string

// The phases, in the order a backup and a restore run them.
const (
	PhaseIdentify           Phase = "Identify"
	PhasePrepareForBackup   Phase = "PrepareForBackup"
	PhasePrepareForSnapshot Phase = "PrepareForSnapshot"
	PhaseFreeze             Phase = "Freeze"
	PhaseSnapshot           Phase = "Snapshot" // the provider's step
	PhaseThaw               Phase = "Thaw"
	PhasePostSnapshot       Phase = "PostSnapshot"
	PhaseBackupComplete     Phase = "BackupComplete"
	PhaseAbort              Phase = "Abort"
	PhasePreRestore         Phase = "PreRestore"
	PhasePostRestore        Phase = "PostRestore"
)

// WriterState is a writer's state, as the Volume Shadow Copy Service names them.
type WriterState string

// Writer states.
const (
	StateStable                   WriterState = "Stable"
	StateWaitingForFreeze         WriterState = "WaitingForFreeze"
	StateWaitingForThaw           WriterState = "WaitingForThaw"
	StateWaitingForPostSnapshot   WriterState = "WaitingForPostSnapshot"
	StateWaitingForBackupComplete WriterState = "WaitingForBackupComplete"
	StateFailedAtIdentify         WriterState = "FailedAtIdentify"
	StateFailedAtPrepareBackup    WriterState = "FailedAtPrepareBackup"
	StateFailedAtPrepareSnapshot  WriterState = "FailedAtPrepareSnapshot"
	StateFailedAtFreeze           WriterState = "FailedAtFreeze"
	StateFailedAtThaw             WriterState = "FailedAtThaw"
	StateFailedAtPostSnapshot     WriterState = "FailedAtPostSnapshot"
	StateFailedAtBackupComplete   WriterState = "FailedAtBackupComplete"
	StateFailedAtPreRestore       WriterState = "FailedAtPreRestore"
	StateFailedAtPostRestore      WriterState = "FailedAtPostRestore"
	StateWaitingForRestore        WriterState = "WaitingForRestore"
)

var failedAt = map[Phase]WriterState{
	PhaseIdentify: StateFailedAtIdentify, PhasePrepareForBackup: StateFailedAtPrepareBackup,
	PhasePrepareForSnapshot: StateFailedAtPrepareSnapshot, PhaseFreeze: StateFailedAtFreeze,
	PhaseSnapshot: StateFailedAtFreeze, PhaseThaw: StateFailedAtThaw, PhasePostSnapshot: StateFailedAtPostSnapshot,
	PhaseBackupComplete: StateFailedAtBackupComplete, PhasePreRestore: StateFailedAtPreRestore,
	PhasePostRestore: StateFailedAtPostRestore,
}

var afterPhase = map[Phase]WriterState{
	PhaseIdentify: StateStable, PhasePrepareForBackup: StateStable, PhasePrepareForSnapshot: StateWaitingForFreeze,
	PhaseFreeze: StateWaitingForThaw, PhaseThaw: StateWaitingForPostSnapshot, PhasePostSnapshot: StateWaitingForBackupComplete,
	PhaseBackupComplete: StateStable, PhaseAbort: StateStable, PhasePreRestore: StateWaitingForRestore, PhasePostRestore: StateStable,
}

// Errors callers branch on.
var (
	ErrFreezeTimeout = errors.New("freeze window expired: writers thawed and the snapshot refused")
	ErrNoComponent   = errors.New("no such component")
	ErrNoWriter      = errors.New("no such writer")
	ErrBusy          = errors.New("another backup or restore is in progress on this node")
	ErrSessionEnded  = errors.New("backup or restore session ended")
	// ErrRequesterGone is the cause of a session aborted because its
	// requester's held connection closed (the process died).
	ErrRequesterGone   = errors.New("the requester is gone")
	ErrWrongState      = errors.New("call out of sequence")
	ErrNothingSelected = errors.New("no component selected")
)

// WriterError is a writer's failure in a phase. Retryable says whether the
// same backup may succeed if tried again (a transient condition) or not.
type WriterError struct {
	Writer    string
	WriterID  string
	Phase     Phase
	Retryable bool
	Err       error
}

func (e *WriterError) Error() string {
	kind := "not retryable"
	if e.Retryable {
		kind = "retryable"
	}
	return fmt.Sprintf("writer %q (%s) failed at %s (%s): %v", e.Writer, e.WriterID, e.Phase, kind, e.Err)
}

func (e *WriterError) Unwrap() error { return e.Err }

// Retryable marks err as a transient failure: the backup may be tried again.
func Retryable(err error) error { return &retryable{err} }

type retryable struct{ error }

func (r *retryable) Unwrap() error { return r.error }

func isRetryable(err error) bool {
	var r *retryable
	return errors.As(err, &r) || errors.Is(err, context.DeadlineExceeded)
}

// Stream is data a self-checkpointing writer hands the requester instead
// of files (the Cluster Database's checkpoint). Open may be called once.
type Stream struct {
	Name string
	Size int64
	Open func() (io.ReadCloser, error)
	// Info is what the writer says of its checkpoint (for the manifest).
	Info map[string]any
}

// Writer makes some data consistent for a backup and puts it back at a
// restore. The coordinator calls each method from one goroutine at a time.
type Writer interface {
	// Identify returns the writer metadata document.
	Identify(ctx context.Context) (WriterMetadata, error)
	PrepareForBackup(ctx context.Context, doc *BackupComponents) error
	PrepareForSnapshot(ctx context.Context) error
	// Freeze makes the writer's files consistent and keeps them so until
	// Thaw. A self-checkpointing writer takes its checkpoint here and
	// need block nothing.
	Freeze(ctx context.Context) error
	Thaw(ctx context.Context) error
	PostSnapshot(ctx context.Context) error
	BackupComplete(ctx context.Context, doc *BackupComponents) error
	// Abort undoes whatever a backup in progress holds.
	Abort(ctx context.Context) error
	PreRestore(ctx context.Context, doc *BackupComponents) error
	PostRestore(ctx context.Context, doc *BackupComponents) error
}

// StreamWriter is a writer that checkpoints itself: after Freeze it hands
// over streams, which stay readable until BackupComplete or Abort.
type StreamWriter interface {
	Writer
	Streams(ctx context.Context, component Component) ([]Stream, error)
}

// Base gives a writer no-op phases; embed it and override what matters.
type Base struct{}

func (Base) PrepareForBackup(context.Context, *BackupComponents) error { return nil }
func (Base) PrepareForSnapshot(context.Context) error                  { return nil }
func (Base) Freeze(context.Context) error                              { return nil }
func (Base) Thaw(context.Context) error                                { return nil }
func (Base) PostSnapshot(context.Context) error                        { return nil }
func (Base) BackupComplete(context.Context, *BackupComponents) error   { return nil }
func (Base) Abort(context.Context) error                               { return nil }
func (Base) PreRestore(context.Context, *BackupComponents) error       { return nil }
func (Base) PostRestore(context.Context, *BackupComponents) error      { return nil }
