package backupset

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// partialMarker is in the name of a set being written.
const partialMarker = ".partial-"

// Writer writes a new backup set aside and makes it visible at Commit.
type Writer struct {
	parent   string
	final    string
	tmp      string
	compress bool
	files    []File
}

// Create starts a set named name inside parent. Sets left half-written by a
// backup process that died are removed first.
func Create(parent, name string, compress bool) (*Writer, error) {
	if strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\\") || name == "" {
		return nil, fmt.Errorf("backup set name %q is not a plain name", name)
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("create backup target %s: %w", parent, err)
	}
	removeAbandoned(parent)
	final := filepath.Join(parent, name)
	if _, err := os.Stat(final); err == nil {
		return nil, fmt.Errorf("backup set %s already exists", final)
	}
	tmp, err := os.MkdirTemp(parent, "."+name+partialMarker+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("create backup set: %w", err)
	}
	return &Writer{parent: parent, final: final, tmp: tmp, compress: compress}, nil
}

// removeAbandoned deletes partial sets whose writing process is gone.
func removeAbandoned(parent string) {
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		n := e.Name()
		i := strings.Index(n, partialMarker)
		if !e.IsDir() || !strings.HasPrefix(n, ".") || i < 0 {
			continue
		}
		pidStr, _, _ := strings.Cut(n[i+len(partialMarker):], "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(filepath.Join(parent, n))
		}
	}
}

// Path is where the set will be once committed.
func (w *Writer) Path() string { return w.final }

// countingHash hashes and counts what passes through it.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

// Add stores one file read from r, hashing it on the way, and fsyncs it.
// f names it and says whose it is; sizes and sums are filled in. progress,
// if set, is told of every chunk.
func (w *Writer) Add(f File, r io.Reader, progress func(int64)) (File, error) {
	if err := checkName(f.Name); err != nil {
		return f, err
	}
	if w.compress {
		f.Compression = "zstd"
	}
	dst := filepath.Join(w.tmp, filepath.FromSlash(f.StoredName()))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return f, err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return f, fmt.Errorf("store %s: %w", f.Name, err)
	}
	defer out.Close()
	content := &countingHash{h: sha256.New()}
	stored := &countingHash{h: sha256.New()}
	// The stored bytes have a sum of their own only when compressed;
	// uncompressed, they are the content, hashed once in the pipeline.
	var sink io.Writer = &writeback{f: out}
	var enc *zstd.Encoder
	if w.compress {
		if enc, err = zstd.NewWriter(io.MultiWriter(sink, stored), zstd.WithEncoderLevel(zstd.SpeedFastest)); err != nil {
			return f, err
		}
		sink = enc
	}
	if err := pipeline(r, content, sink, progress); err != nil {
		return f, fmt.Errorf("store %s: %w", f.Name, err)
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			return f, fmt.Errorf("store %s: compress: %w", f.Name, err)
		}
	}
	if err := out.Sync(); err != nil {
		return f, fmt.Errorf("store %s: fsync: %w", f.Name, err)
	}
	f.Size, f.SHA256 = content.n, hex.EncodeToString(content.h.Sum(nil))
	if w.compress {
		f.StoredSize, f.StoredSHA256 = stored.n, hex.EncodeToString(stored.h.Sum(nil))
	}
	w.files = append(w.files, f)
	return f, out.Close()
}

// Commit writes the manifest, fsyncs the set and renames it into place.
func (w *Writer) Commit(m *Manifest) (string, error) {
	m.FormatVersion = FormatVersion
	m.Files = w.files
	raw, err := m.Seal()
	if err != nil {
		return "", err
	}
	mf := filepath.Join(w.tmp, ManifestName)
	if err := os.WriteFile(mf, raw, 0o600); err != nil {
		return "", fmt.Errorf("write manifest: %w", err)
	}
	if err := syncFile(mf); err != nil {
		return "", err
	}
	// Every directory of the set, deepest first, then the set itself.
	var dirs []string
	filepath.WalkDir(w.tmp, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncFile(dirs[i]); err != nil {
			return "", err
		}
	}
	if err := os.Rename(w.tmp, w.final); err != nil {
		return "", fmt.Errorf("make backup set visible: %w", err)
	}
	if err := syncFile(w.parent); err != nil {
		return "", err
	}
	return w.final, nil
}

// Abort removes everything written.
func (w *Writer) Abort() error { return os.RemoveAll(w.tmp) }

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

// chunkSize is the unit the store pipeline moves.
const chunkSize = 1 << 20

// pipeline copies r to sink while hashing it into h: one goroutine reads
// the next chunks while the current one is hashed and written, and the
// hash and the write of a chunk run side by side, so reading the network,
// hashing and writing the disk overlap.
func pipeline(r io.Reader, h io.Writer, sink io.Writer, progress func(int64)) error {
	type chunk struct {
		b   []byte
		err error
	}
	free := make(chan []byte, 4)
	for range 4 {
		free <- make([]byte, chunkSize)
	}
	full := make(chan chunk, 4)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(full)
		for {
			var b []byte
			select {
			case b = <-free:
			case <-stop:
				return
			}
			n, err := io.ReadFull(r, b)
			if n > 0 {
				select {
				case full <- chunk{b: b[:n]}:
				case <-stop:
					return
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if err != nil {
				select {
				case full <- chunk{err: fmt.Errorf("read: %w", err)}:
				case <-stop:
				}
				return
			}
		}
	}()
	hashed := make(chan struct{})
	for c := range full {
		if c.err != nil {
			return c.err
		}
		go func() { h.Write(c.b); hashed <- struct{}{} }()
		_, err := sink.Write(c.b)
		<-hashed
		if err != nil {
			return err
		}
		if progress != nil {
			progress(int64(len(c.b)))
		}
		free <- c.b[:cap(c.b)]
	}
	return nil
}

// writebackEvery is how many bytes are written before their writeback to
// disk is started.
const writebackEvery = 4 << 20

// writeback writes to f and starts the disk writeback of every few MiB as
// it goes (sync_file_range, not waiting), so the final fsync has little
// left to flush and a backup never dumps hundreds of MiB of dirty pages on
// the disk at once, stalling the cluster's own fsyncs behind them.
type writeback struct {
	f       *os.File
	off     int64
	started int64
}

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writebackEvery {
		unix.SyncFileRange(int(w.f.Fd()), w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.off
	}
	return n, err
}
