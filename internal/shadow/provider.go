package shadow

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Provider takes the point-in-time copy of a frozen writer's files.
type Provider interface {
	Name() string
	// Capture copies src to dst (a new file) durably and returns its size
	// and how it was taken ("copy" or "reflink").
	Capture(src, dst string) (int64, string, error)
}

// CopyProvider copies the bytes and fsyncs them. It works everywhere.
type CopyProvider struct{}

// Name is "copy".
func (CopyProvider) Name() string { return "copy" }

// Capture copies src to dst.
func (CopyProvider) Capture(src, dst string) (int64, string, error) {
	n, err := copyFile(src, dst, false)
	return n, "copy", err
}

// ReflinkProvider clones files copy-on-write (FICLONE) where the file
// system can, which is instant whatever the size, and copies where it
// cannot (another file system, or one without reflinks).
type ReflinkProvider struct{}

// Name is "reflink".
func (ReflinkProvider) Name() string { return "reflink" }

// Capture clones src to dst, or copies it.
func (ReflinkProvider) Capture(src, dst string) (int64, string, error) {
	n, err := copyFile(src, dst, true)
	if errors.Is(err, errNoReflink) {
		n, err = copyFile(src, dst, false)
		return n, "copy", err
	}
	return n, "reflink", err
}

var errNoReflink = errors.New("file system cannot clone")

func copyFile(src, dst string, clone bool) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, fmt.Errorf("capture %s: %w", src, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, fmt.Errorf("capture %s: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("capture %s: not a regular file", src)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, fmt.Errorf("capture %s: %w", src, err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("capture %s: %w", src, err)
	}
	var n int64
	if clone {
		if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err != nil {
			out.Close()
			os.Remove(dst)
			switch {
			case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EXDEV), errors.Is(err, unix.EINVAL),
				errors.Is(err, unix.ENOTTY), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
				return 0, errNoReflink
			}
			return 0, fmt.Errorf("capture %s: clone: %w", src, err)
		}
		n = fi.Size()
	} else if n, err = io.Copy(out, in); err != nil {
		out.Close()
		return 0, fmt.Errorf("capture %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return 0, fmt.Errorf("capture %s: fsync: %w", src, err)
	}
	return n, out.Close()
}

// SnapshotItem is one captured file or stream of a snapshot set.
type SnapshotItem struct {
	WriterID   string `json:"writer_id"`
	WriterName string `json:"writer_name"`
	Component  string `json:"component"`
	// Name is the item's path inside a backup set.
	Name string `json:"name"`
	// Source is the original file's absolute path; empty for a stream.
	Source string `json:"source,omitempty"`
	Size   int64  `json:"size"`
	// Method is how it was captured: copy, reflink or stream.
	Method string         `json:"method"`
	Info   map[string]any `json:"info,omitempty"`

	path string                        // the captured copy, for files
	open func() (io.ReadCloser, error) // for streams
}

// Open reads the captured data.
func (it *SnapshotItem) Open() (io.ReadCloser, error) {
	if it.open != nil {
		return it.open()
	}
	return os.Open(it.path)
}
