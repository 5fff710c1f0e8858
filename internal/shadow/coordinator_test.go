package shadow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// fakeWriter records the phases it sees and fails at one if told to.
type fakeWriter struct {
	name   string
	id     string
	files  []string
	stream string // a stream component when set

	mu       sync.Mutex
	phases   []Phase
	failAt   Phase
	block    Phase // blocks until ctx ends at this phase
	frozen   int
	thawed   int
	released bool
}

func newFake(name string) *fakeWriter { return &fakeWriter{name: name, id: uuid.NewString()} }

func (w *fakeWriter) see(ctx context.Context, p Phase) error {
	w.mu.Lock()
	w.phases = append(w.phases, p)
	switch p {
	case PhaseFreeze:
		w.frozen++
	case PhaseThaw:
		w.thawed++
	case PhaseAbort, PhaseBackupComplete:
		w.released = true
	}
	fail, block := w.failAt == p, w.block == p
	w.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	if fail {
		return fmt.Errorf("injected failure at %s", p)
	}
	return nil
}

func (w *fakeWriter) seen() []Phase {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Phase(nil), w.phases...)
}

func (w *fakeWriter) Identify(ctx context.Context) (WriterMetadata, error) {
	m := WriterMetadata{Name: w.name, ID: w.id, InstanceID: w.id, UsageType: UsageUserData, RestoreMethod: RestoreIfCanReplace}
	if len(w.files) > 0 {
		m.Components = append(m.Components, Component{Name: "files", Type: ComponentFileGroup, Files: w.files})
	}
	if w.stream != "" {
		m.Components = append(m.Components, Component{Name: "db", Type: ComponentDatabase, Streams: []string{w.stream}})
	}
	return m, w.see(ctx, PhaseIdentify)
}
func (w *fakeWriter) PrepareForBackup(ctx context.Context, _ *BackupComponents) error {
	return w.see(ctx, PhasePrepareForBackup)
}
func (w *fakeWriter) PrepareForSnapshot(ctx context.Context) error {
	return w.see(ctx, PhasePrepareForSnapshot)
}
func (w *fakeWriter) Freeze(ctx context.Context) error       { return w.see(ctx, PhaseFreeze) }
func (w *fakeWriter) Thaw(ctx context.Context) error         { return w.see(ctx, PhaseThaw) }
func (w *fakeWriter) PostSnapshot(ctx context.Context) error { return w.see(ctx, PhasePostSnapshot) }
func (w *fakeWriter) BackupComplete(ctx context.Context, _ *BackupComponents) error {
	return w.see(ctx, PhaseBackupComplete)
}
func (w *fakeWriter) Abort(ctx context.Context) error { return w.see(ctx, PhaseAbort) }
func (w *fakeWriter) PreRestore(ctx context.Context, _ *BackupComponents) error {
	return w.see(ctx, PhasePreRestore)
}
func (w *fakeWriter) PostRestore(ctx context.Context, _ *BackupComponents) error {
	return w.see(ctx, PhasePostRestore)
}

func (w *fakeWriter) Streams(ctx context.Context, c Component) ([]Stream, error) {
	if err := w.see(ctx, PhaseSnapshot); err != nil {
		return nil, err
	}
	data := "checkpoint of " + w.name
	return []Stream{{Name: w.stream, Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(data)), nil
	}}}, nil
}

func testCoordinator(t *testing.T, window time.Duration, writers ...Writer) (*Coordinator, string) {
	stage := t.TempDir()
	c := NewCoordinator(Config{StageDir: stage, Provider: ReflinkProvider{}, FreezeWindow: window,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, w := range writers {
		c.Register(w)
	}
	return c, stage
}

func threeWriters(t *testing.T) (*fakeWriter, *fakeWriter, *fakeWriter) {
	dir := t.TempDir()
	f := filepath.Join(dir, "app.dat")
	os.WriteFile(f, []byte("application data"), 0o600)
	files := newFake("files")
	files.files = []string{f}
	stream := newFake("stream")
	stream.stream = "db.bin"
	both := newFake("both")
	both.files, both.stream = []string{f}, "both.bin"
	return files, stream, both
}

func runBackup(ctx context.Context, c *Coordinator) (*Backup, *SnapshotSet, error) {
	b, err := c.StartBackup(ctx, BackupFull)
	if err != nil {
		return nil, nil, err
	}
	if err := b.AddAllComponents(); err != nil {
		return b, nil, err
	}
	if err := b.PrepareForBackup(ctx); err != nil {
		return b, nil, err
	}
	set, err := b.DoSnapshotSet(ctx)
	return b, set, err
}

func TestFullBackupSequence(t *testing.T) {
	w1, w2, w3 := threeWriters(t)
	c, stage := testCoordinator(t, time.Minute, w1, w2, w3)
	ctx := context.Background()
	b, set, err := runBackup(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Items) != 4 {
		t.Fatalf("items: %+v", set.Items)
	}
	for _, it := range set.Items {
		r, err := it.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(r)
		r.Close()
		if int64(len(data)) != it.Size || len(data) == 0 {
			t.Fatalf("item %s: %d bytes, size %d", it.Name, len(data), it.Size)
		}
	}
	if err := b.BackupComplete(ctx); err != nil {
		t.Fatal(err)
	}
	want := []Phase{PhaseIdentify, PhasePrepareForBackup, PhasePrepareForSnapshot, PhaseFreeze, PhaseThaw, PhasePostSnapshot, PhaseBackupComplete}
	if got := w1.seen(); !slices.Equal(got, want) {
		t.Errorf("file writer saw %v", got)
	}
	wantStream := []Phase{PhaseIdentify, PhasePrepareForBackup, PhasePrepareForSnapshot, PhaseFreeze, PhaseSnapshot, PhaseThaw, PhasePostSnapshot, PhaseBackupComplete}
	for _, w := range []*fakeWriter{w2, w3} {
		if got := w.seen(); !slices.Equal(got, wantStream) {
			t.Errorf("%s saw %v", w.name, got)
		}
	}
	// Every writer is frozen before any is thawed.
	doc := b.Document()
	if len(doc.Components) != 4 || len(doc.WriterStatus[w1.id]) != 6 {
		t.Fatalf("document: %+v", doc)
	}
	if entries, _ := os.ReadDir(stage); len(entries) != 0 {
		t.Fatalf("stage not cleaned: %v", entries)
	}
	for _, st := range c.GatherWriterStatus() {
		if st.State != StateStable {
			t.Fatalf("writer %s ends %s", st.Metadata.Name, st.State)
		}
	}
}

func TestWriterFailingAtEachPhaseAbortsCleanly(t *testing.T) {
	for _, phase := range []Phase{PhasePrepareForBackup, PhasePrepareForSnapshot, PhaseFreeze, PhaseSnapshot, PhaseThaw, PhasePostSnapshot} {
		t.Run(string(phase), func(t *testing.T) {
			w1, w2, w3 := threeWriters(t)
			w2.failAt = phase
			c, stage := testCoordinator(t, time.Minute, w1, w2, w3)
			_, _, err := runBackup(context.Background(), c)
			var we *WriterError
			if !errors.As(err, &we) || we.Writer != "stream" || we.Phase != phase {
				t.Fatalf("error %v does not name writer stream and phase %s", err, phase)
			}
			if !strings.Contains(err.Error(), `writer "stream"`) || !strings.Contains(err.Error(), string(phase)) {
				t.Fatalf("message: %v", err)
			}
			for _, w := range []*fakeWriter{w1, w2, w3} {
				if w.frozen != w.thawed {
					t.Errorf("%s frozen %d times, thawed %d", w.name, w.frozen, w.thawed)
				}
				if !w.released {
					t.Errorf("%s never told to abort: %v", w.name, w.seen())
				}
			}
			if entries, _ := os.ReadDir(stage); len(entries) != 0 {
				t.Fatalf("left behind: %v", entries)
			}
			st := c.GatherWriterStatus()[1]
			if st.State != failedAt[phase] && !(phase == PhaseThaw) {
				t.Errorf("status %s, want %s", st.State, failedAt[phase])
			}
			if st.LastError == "" {
				t.Error("no last error recorded")
			}
			// The node is free for the next backup.
			w2.failAt = ""
			if _, _, err := runBackup(context.Background(), c); err != nil {
				t.Fatalf("next backup: %v", err)
			}
		})
	}
}

func TestFreezeWindowExpiryThawsAndRefuses(t *testing.T) {
	w1, w2, w3 := threeWriters(t)
	w3.block = PhaseSnapshot // the capture hangs past the window
	c, stage := testCoordinator(t, 300*time.Millisecond, w1, w2, w3)
	_, _, err := runBackup(context.Background(), c)
	if !errors.Is(err, ErrFreezeTimeout) {
		t.Fatalf("got %v, want freeze timeout", err)
	}
	for _, w := range []*fakeWriter{w1, w2, w3} {
		if w.frozen != 1 || w.thawed != 1 {
			t.Errorf("%s frozen %d thawed %d", w.name, w.frozen, w.thawed)
		}
	}
	if entries, _ := os.ReadDir(stage); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestRequesterGoneThawsWriters(t *testing.T) {
	w1, w2, w3 := threeWriters(t)
	w3.block = PhaseSnapshot
	c, _ := testCoordinator(t, time.Minute, w1, w2, w3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, _, err := runBackup(ctx, c); done <- err }()
	for w3.frozenCount() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	for _, w := range []*fakeWriter{w1, w2, w3} {
		if w.frozen != w.thawed {
			t.Errorf("%s frozen %d thawed %d", w.name, w.frozen, w.thawed)
		}
	}
}

func (w *fakeWriter) frozenCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.frozen
}

func TestAbandonedSessionIsAborted(t *testing.T) {
	w1, w2, w3 := threeWriters(t)
	c, stage := testCoordinator(t, time.Minute, w1, w2, w3)
	c.cfg.SessionTimeout = 200 * time.Millisecond
	b, _, err := runBackup(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartBackup(context.Background(), BackupFull); !errors.Is(err, ErrBusy) {
		t.Fatalf("second backup: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.ActiveBackup(b.ID()); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("abandoned backup never aborted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if entries, _ := os.ReadDir(stage); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
	if err := b.BackupComplete(context.Background()); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("complete after abort: %v", err)
	}
	if !w1.released {
		t.Fatal("writer not aborted")
	}
}

func TestRestoreSequence(t *testing.T) {
	w1, w2, w3 := threeWriters(t)
	c, _ := testCoordinator(t, time.Minute, w1, w2, w3)
	ctx := context.Background()
	b, _, err := runBackup(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	b.BackupComplete(ctx)
	doc := b.Document()
	r, err := c.StartRestore(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PreRestore(ctx); !errors.Is(err, ErrNothingSelected) {
		t.Fatalf("nothing selected: %v", err)
	}
	if err := r.SetSelectedForRestore(w2.id, "", "db", true); err != nil {
		t.Fatal(err)
	}
	if err := r.SetAuthoritativeRestore(w2.id, "", "db", true); err != nil {
		t.Fatal(err)
	}
	if err := r.SetSelectedForRestore(w2.id, "", "nope", true); !errors.Is(err, ErrNoComponent) {
		t.Fatalf("unknown component: %v", err)
	}
	if err := r.PreRestore(ctx); err != nil {
		t.Fatal(err)
	}
	rd := r.Document()
	if err := r.PostRestore(ctx); err != nil {
		t.Fatal(err)
	}
	got := w2.seen()
	if !slices.Equal(got[len(got)-3:], []Phase{PhaseIdentify, PhasePreRestore, PhasePostRestore}) {
		t.Fatalf("restore phases %v", got)
	}
	if slices.Contains(w1.seen(), PhasePreRestore) {
		t.Fatal("unselected writer took part in the restore")
	}
	sel, _ := rd.find(w2.id, "", "db")
	if !sel.Authoritative || !sel.SelectedForRestore {
		t.Fatalf("document: %+v", sel)
	}
}
