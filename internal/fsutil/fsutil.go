// Package fsutil holds the few file operations that make changes durable:
// writing a file and fsyncing it, and fsyncing a directory so that a
// rename in it survives a crash. It knows nothing of what the files hold.
package fsutil

import (
	"io"
	"os"
)

// WriteFile writes r to path (created 0600, truncated) and fsyncs it.
func WriteFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteFileAtomic writes r beside path, fsyncs it and renames it into
// place: path is then the old file or the whole new one.
func WriteFileAtomic(path string, r io.Reader) error {
	tmp := path + ".tmp"
	if err := WriteFile(tmp, r); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// SyncDir fsyncs a directory so that a rename in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
