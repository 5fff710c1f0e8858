package offline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/writers"
	"golang.org/x/sys/unix"
)

// Extracted is what VerifyInto wrote.
type Extracted struct {
	Manifest *backupset.Manifest
	// Database is the cluster database's file, durable (fdatasync'd).
	Database string
	// Registry is the node registry's file, in a directory of its own,
	// not synced (it is read, never put in place); "" when the set holds
	// none.
	Registry string
}

// VerifyInto verifies an unlocked set as Verify does, reading each file of
// it once, and writes its cluster database into dir as it reads it: stored
// bytes → decryption → decompression → SHA-256 (or content MAC) against
// the manifest → dir/clusdb, fdatasync'd once. dir is meant to be on the
// file system of the file's final place, so that the caller puts it there
// by a rename. On any error, what it wrote in dir is removed.
//
// The database is checked once, after its checksum matched: with deep, by
// bbolt's full structural check and the hive's walk of every key and
// value; by default, by opening it as a hive (see checkOpens).
func VerifyInto(s *backupset.Set, dir string, deep bool, progress func(int64)) (*Extracted, error) {
	if !s.Unlocked() {
		return nil, fmt.Errorf("verify %s: %w: it is encrypted to %s; give an age identity file of one of them with --identity",
			s.Location, backupset.ErrNoIdentity, strings.Join(s.Manifest.Encryption.Recipients, ", "))
	}
	ex := &Extracted{Manifest: s.Manifest}
	fail := func(err error) (*Extracted, error) {
		if ex.Database != "" {
			os.Remove(ex.Database)
		}
		if ex.Registry != "" {
			os.RemoveAll(filepath.Dir(ex.Registry))
		}
		return nil, fmt.Errorf("verify %s: %w", s.Location, err)
	}
	if err := s.CheckListing(); err != nil {
		return nil, err
	}
	for _, f := range s.Manifest.Files {
		var err error
		switch f.WriterID {
		case writers.ClusterDBID:
			if ex.Database != "" {
				return fail(fmt.Errorf("%w: it holds two cluster databases", backupset.ErrCorrupt))
			}
			ex.Database = filepath.Join(dir, hive.FileName)
			if err = extractTo(s, f, ex.Database, true, progress); err == nil {
				if deep {
					err = checkHive(ex.Database, s.Manifest.HiveSeq)
				} else {
					err = checkOpens(ex.Database, s.Manifest.HiveSeq)
				}
			}
		case writers.RegistryID:
			if ex.Registry != "" {
				return fail(fmt.Errorf("%w: it holds two node registries", backupset.ErrCorrupt))
			}
			ex.Registry = filepath.Join(dir, "registry", filepath.Base(f.Name))
			if err = os.MkdirAll(filepath.Dir(ex.Registry), 0o700); err == nil {
				err = extractTo(s, f, ex.Registry, false, progress)
			}
			if err == nil {
				err = checkBoltFile(ex.Registry)
			}
			if err != nil {
				err = fmt.Errorf("%w: node registry: %w", backupset.ErrCorrupt, err)
			}
		default:
			err = s.VerifyFile(f, progress)
		}
		if err != nil {
			return fail(err)
		}
	}
	if ex.Database == "" {
		return fail(fmt.Errorf("%w: it holds no cluster database", backupset.ErrCorrupt))
	}
	return ex, nil
}

// checkOpens is the check a restore makes by default of a cluster
// database whose every byte already matched the manifest's SHA-256 (or
// content MAC), the manifest itself matching its own checksum: it opens
// the file as a hive (bbolt's meta pages: magic, version, checksum; the
// hive's buckets and format version, one this build reads) and checks it
// is at the manifest's sequence number. That is what the checksums cannot
// tell: that the file is the hive the manifest describes, readable by this
// build. It reads a few pages, not the file.
//
// bbolt's full structural check and the hive's walk would read every page
// again (and hold the file in the command's memory through bbolt's mmap)
// to find what the checksums already rule out, a byte changed since the
// backup: the file is, to the bit, the one bbolt wrote from a consistent
// read transaction of a hive in service. They can find only a fault the
// backed-up node itself carried; `backup verify` and `restore --deep` run
// them for an operator who wants that asked, and bbolt walks the page tree
// again at the first read-write open of the restored hive.
func checkOpens(path string, seq uint64) error {
	h, err := hive.OpenReadOnly(path)
	if err != nil {
		return fmt.Errorf("%w: cluster database: %v", backupset.ErrCorrupt, err)
	}
	defer h.Close()
	if h.Seq() != seq {
		return fmt.Errorf("%w: cluster database is at sequence %d, the manifest says %d", backupset.ErrCorrupt, h.Seq(), seq)
	}
	return nil
}

// extractTo writes f's content, checked against the manifest as it is
// read, to path, created anew; with sync, fdatasync'd. A file that fails
// is removed.
func extractTo(s *backupset.Set, f backupset.File, path string, sync bool, progress func(int64)) (err error) {
	r, err := s.Open(f)
	if err != nil {
		return err
	}
	defer r.Close()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("extract %s: %w", f.Name, err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("extract %s: %w", f.Name, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	// Large reads: each passes through the hash once; the destination's
	// own ReadFrom would copy 32 KiB at a time.
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(writerOnly{out, progress}, r, buf); err != nil {
		if errors.Is(err, backupset.ErrCorrupt) || errors.Is(err, backupset.ErrIncomplete) {
			return err
		}
		return fmt.Errorf("extract %s: %w", f.Name, err)
	}
	if sync {
		if err := unix.Fdatasync(int(out.Fd())); err != nil {
			return fmt.Errorf("extract %s: sync: %w", f.Name, err)
		}
	}
	return nil
}

// writerOnly hides the file's ReadFrom, and tells progress of each write.
type writerOnly struct {
	w        io.Writer
	progress func(int64)
}

func (w writerOnly) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	if w.progress != nil {
		w.progress(int64(n))
	}
	return n, err
}
