package backend

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

// Dir is a directory holding sets as directories, on a local disk or a
// mount several hosts share. A set is written as a hidden
// .NAME.partial-PID@HOST@MACHINE-* directory (see owner.go) whose
// modification time its writer renews, fsync'd, and renamed into place
// when complete.
type Dir struct {
	path string
	// PartialAge is how long a partial set written on another host (or
	// before this host restarted) must have gone without its writer's
	// heartbeat before it is taken as abandoned; 0 is DefaultPartialAge.
	PartialAge time.Duration
}

// NewDir is the directory target at path.
func NewDir(path string) *Dir { return &Dir{path: path} }

func (d *Dir) partialAge() time.Duration {
	if d.PartialAge > 0 {
		return d.PartialAge
	}
	return DefaultPartialAge
}

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
	tmp, err := os.MkdirTemp(d.path, "."+name+partialMarker+self().tag()+"-")
	if err != nil {
		return nil, fmt.Errorf("create backup set: %w", err)
	}
	return &dirWriter{parent: d.path, final: final, tmp: tmp, stopBeat: heartbeat(tmp)}, nil
}

// Partials lists the hidden partial (and half-removed) directories. One
// written on this host (in this boot and PID namespace) is abandoned when
// its process is gone; one written elsewhere when its writer's heartbeat
// (the directory's modification time) is older than PartialAge; one whose
// writer is not recorded (an older clusterkeep's) never is.
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
		p.Abandoned, p.Why = d.judge(n[i+len(marker):], p.Modified)
		out = append(out, p)
	}
	return out, nil
}

// judge says whether the working directory whose name ends in rest
// (TAG-SUFFIX), last renewed at modified, is abandoned, and why.
func (d *Dir) judge(rest string, modified time.Time) (bool, string) {
	o, legacy, ok := parseTag(rest)
	switch {
	case !ok:
		return false, "its writer is not known: remove it by hand once no backup writes it"
	case legacy:
		return false, fmt.Sprintf("written by process %d on a host an older clusterkeep did not record: remove it by hand once no backup writes it", o.pid)
	case o.local() && o.pid == os.Getpid():
		return false, "this process writes it"
	case o.local() && syscall.Kill(o.pid, 0) == syscall.ESRCH:
		return true, fmt.Sprintf("its process %d on this host is gone", o.pid)
	case o.local():
		return false, fmt.Sprintf("its process %d on this host runs", o.pid)
	}
	where := "host " + o.host
	if o.host == self().host {
		where = "this host before it restarted, or another one of its name"
	}
	if modified.IsZero() {
		return false, fmt.Sprintf("written by process %d on %s: its heartbeat could not be read", o.pid, where)
	}
	age := time.Since(modified)
	if age < d.partialAge() {
		return false, fmt.Sprintf("written by process %d on %s, which cannot be asked: its heartbeat is %v old, less than %v", o.pid, where, age.Round(time.Second), d.partialAge())
	}
	return true, fmt.Sprintf("written by process %d on %s: no heartbeat for %v", o.pid, where, age.Round(time.Second))
}

// RemovePartial deletes a hidden partial directory, once it is judged
// again, as it is now, to be abandoned (its writer's heartbeat may have
// come since it was listed).
func (d *Dir) RemovePartial(ctx context.Context, p Partial) error {
	marker := partialMarker
	if !strings.Contains(p.ID, marker) {
		marker = removingMarker
	}
	i := strings.Index(p.ID, marker)
	if !strings.HasPrefix(p.ID, ".") || strings.ContainsAny(p.ID, "/\\") || i < 0 {
		return fmt.Errorf("remove partial backup set %q: %w", p.ID, ErrBadLocation)
	}
	dir := filepath.Join(d.path, p.ID)
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove partial backup set %s: %w", p.ID, err)
	}
	if abandoned, why := d.judge(p.ID[i+len(marker):], fi.ModTime()); !abandoned {
		return fmt.Errorf("remove partial backup set %s: %w: %s", p.ID, ErrInUse, why)
	}
	if err := os.RemoveAll(dir); err != nil {
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
	aside := filepath.Join(d.path, "."+name+removingMarker+self().tag()+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.Rename(filepath.Join(d.path, name), aside); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return fmt.Errorf("remove backup set %s: %w", name, err)
	}
	// Its modification time says when the removal began, for another
	// host to judge it by, as a partial set's heartbeat.
	now := time.Now()
	os.Chtimes(aside, now, now)
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
	stopBeat           func()
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
	if !pageCacheOnly {
		d, err := openDirect(dst)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return nil, err
		}
		// No direct I/O on this file system: through the page cache, with
		// early writeback. (The refused open may have created the file.)
		os.Remove(dst)
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
	// Written or failed, the set is no longer being written.
	defer w.stopBeat()
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

func (w *dirWriter) Abort() error {
	w.stopBeat()
	return os.RemoveAll(w.tmp)
}

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
