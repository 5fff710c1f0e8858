package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	"golang.org/x/sys/unix"
)

// partialMarker is in the name of a set being written.
const partialMarker = ".partial-"

// removingMarker is in the name of a set being removed.
const removingMarker = ".removing-"

// Dir is a local directory holding sets as directories. A set is written
// as a hidden .NAME.partial-PID-* directory, fsync'd, and renamed into
// place when complete.
type Dir struct{ path string }

// NewDir is the directory target at path.
func NewDir(path string) *Dir { return &Dir{path: path} }

func (d *Dir) String() string { return d.path }

// SetLocation is the set's directory.
func (d *Dir) SetLocation(name string) string { return filepath.Join(d.path, name) }

// Sets lists the visible directories: the caller reads their manifests.
func (d *Dir) Sets(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil, fmt.Errorf("list backups in %s: %w", d.path, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Begin creates the hidden partial directory. Partial sets whose writing
// process is gone are removed first.
func (d *Dir) Begin(ctx context.Context, name string) (SetWriter, error) {
	if err := checkSetName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.path, 0o700); err != nil {
		return nil, fmt.Errorf("create backup target %s: %w", d.path, err)
	}
	if ps, err := d.Partials(ctx); err == nil {
		for _, p := range ps {
			if p.Abandoned {
				d.RemovePartial(ctx, p)
			}
		}
	}
	final := filepath.Join(d.path, name)
	if _, err := os.Lstat(final); err == nil {
		return nil, fmt.Errorf("backup set %s: %w", final, ErrExists)
	}
	tmp, err := os.MkdirTemp(d.path, "."+name+partialMarker+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("create backup set: %w", err)
	}
	return &dirWriter{parent: d.path, final: final, tmp: tmp}, nil
}

// Partials lists the hidden partial (and half-removed) directories; those
// whose writing process is gone are abandoned.
func (d *Dir) Partials(ctx context.Context) ([]Partial, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil, fmt.Errorf("list backups in %s: %w", d.path, err)
	}
	var out []Partial
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() || !strings.HasPrefix(n, ".") {
			continue
		}
		marker := partialMarker
		i := strings.Index(n, marker)
		if i < 0 {
			marker = removingMarker
			if i = strings.Index(n, marker); i < 0 {
				continue
			}
		}
		p := Partial{Name: n[1:i], ID: n}
		if fi, err := e.Info(); err == nil {
			p.Modified = fi.ModTime().UTC()
		}
		pidStr, _, _ := strings.Cut(n[i+len(marker):], "-")
		pid, err := strconv.Atoi(pidStr)
		switch {
		case err != nil:
			p.Why = "its writer is not known"
		case pid == os.Getpid():
			p.Why = "this process writes it"
		case syscall.Kill(pid, 0) == syscall.ESRCH:
			p.Abandoned, p.Why = true, fmt.Sprintf("its process %d is gone", pid)
		default:
			p.Why = fmt.Sprintf("its process %d runs", pid)
		}
		out = append(out, p)
	}
	return out, nil
}

// RemovePartial deletes a hidden partial directory.
func (d *Dir) RemovePartial(ctx context.Context, p Partial) error {
	if !strings.HasPrefix(p.ID, ".") || strings.ContainsAny(p.ID, "/\\") || !(strings.Contains(p.ID, partialMarker) || strings.Contains(p.ID, removingMarker)) {
		return fmt.Errorf("remove partial backup set %q: %w", p.ID, ErrBadLocation)
	}
	if err := os.RemoveAll(filepath.Join(d.path, p.ID)); err != nil {
		return fmt.Errorf("remove partial backup set %s: %w", p.ID, err)
	}
	return nil
}

// Remove renames the set aside (hidden: it is no longer a set), fsyncs
// the directory, and deletes it.
func (d *Dir) Remove(ctx context.Context, name string) error {
	if err := checkSetName(name); err != nil {
		return err
	}
	aside := filepath.Join(d.path, "."+name+removingMarker+strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.Rename(filepath.Join(d.path, name), aside); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return fmt.Errorf("remove backup set %s: %w", name, err)
	}
	if err := syncFile(d.path); err != nil {
		return fmt.Errorf("remove backup set %s: %w", name, err)
	}
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("remove backup set %s: %w", name, err)
	}
	return nil
}

// Open opens the set's directory for reading.
func (d *Dir) Open(ctx context.Context, name string) (SetReader, error) {
	dir := filepath.Join(d.path, name)
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s: %w: not a directory", dir, ErrNotFound)
	}
	return &dirReader{dir: dir}, nil
}

type dirWriter struct {
	parent, final, tmp string
}

func (w *dirWriter) Location() string { return w.final }

func (w *dirWriter) Create(name string) (Object, error) {
	if err := checkObjectName(name); err != nil {
		return nil, err
	}
	dst := filepath.Join(w.tmp, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return nil, err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	return &dirObject{f: out}, nil
}

// Commit writes the manifest, fsyncs every directory of the set, deepest
// first, renames the set into place and fsyncs the target.
func (w *dirWriter) Commit(manifest []byte) error {
	mf := filepath.Join(w.tmp, ManifestName)
	if err := os.WriteFile(mf, manifest, 0o600); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := syncFile(mf); err != nil {
		return err
	}
	var dirs []string
	filepath.WalkDir(w.tmp, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncFile(dirs[i]); err != nil {
			return err
		}
	}
	if err := os.Rename(w.tmp, w.final); err != nil {
		return fmt.Errorf("make backup set visible: %w", err)
	}
	return syncFile(w.parent)
}

func (w *dirWriter) Abort() error { return os.RemoveAll(w.tmp) }

// dirObject is a file being written.
type dirObject struct {
	f       *os.File
	off     int64
	started int64
}

// writebackEvery is how many bytes are written before their writeback to
// disk is started.
const writebackEvery = 4 << 20

// Write writes to the file and starts the disk writeback of every few MiB
// as it goes (sync_file_range, not waiting), so the final fsync has little
// left to flush and a backup never dumps hundreds of MiB of dirty pages on
// the disk at once, stalling the cluster's own fsyncs behind them.
func (o *dirObject) Write(p []byte) (int, error) {
	n, err := o.f.Write(p)
	o.off += int64(n)
	if o.off-o.started >= writebackEvery {
		unix.SyncFileRange(int(o.f.Fd()), o.started, o.off-o.started, unix.SYNC_FILE_RANGE_WRITE)
		o.started = o.off
	}
	return n, err
}

func (o *dirObject) Commit() error {
	if err := o.f.Sync(); err != nil {
		o.f.Close()
		return fmt.Errorf("fsync: %w", err)
	}
	return o.f.Close()
}

func (o *dirObject) Abort() {
	o.f.Close()
	os.Remove(o.f.Name())
}

type dirReader struct{ dir string }

func (r *dirReader) Location() string { return r.dir }

func (r *dirReader) ReadManifest() ([]byte, error) {
	f, err := r.Open(ManifestName)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err == nil && len(b) > maxManifest {
		err = fmt.Errorf("%s is over %d bytes", ManifestName, maxManifest)
	}
	return b, err
}

// Open opens a file of the set, following no symbolic link.
func (r *dirReader) Open(name string) (io.ReadCloser, error) {
	if err := checkObjectName(name); err != nil {
		return nil, err
	}
	f, err := fsutil.OpenBeneath(r.dir, name)
	switch {
	case errors.Is(err, fsutil.ErrLink) || errors.Is(err, fsutil.ErrUnsafePath):
		return nil, fmt.Errorf("%w: %v", ErrUnsafe, err)
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	case err != nil:
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s", ErrUnsafe, name)
	}
	return f, nil
}

func (r *dirReader) List() ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(r.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(r.dir, p)
		out = append(out, Entry{Name: filepath.ToSlash(rel), Regular: d.Type().IsRegular()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.dir, err)
	}
	return out, nil
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync %s: %w", p, err)
	}
	return nil
}
