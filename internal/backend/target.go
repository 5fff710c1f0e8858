// Package backend is the backup storage backends: where backup sets are
// kept (the backup target), a local directory or an S3-compatible object
// store, behind one interface.
//
// A target holds sets by name. A set is a group of objects (a directory's
// files, or the objects under a key prefix) one of which, the manifest, is
// written last: a set becomes visible in a single step when it is complete
// (the directory is renamed into place; the manifest object is put), and
// whatever was written of a set that never completed (a hidden partial
// directory, a prefix without a manifest, an unfinished multipart upload)
// is never listed as a set. Such leftovers are reported by Partials and
// removed only when they are certainly abandoned, never while a writer may
// still be at work: a directory's partial set when it was written on this
// host and its process is gone, or, written on another host sharing the
// mount, when its writer's heartbeat stopped hours ago; an S3 one when
// nothing was put to it for hours (an unfinished upload counts from its
// newest part) and this process does not write it.
//
// The package knows nothing of the set format: backupset writes and reads
// sets through it, and checks every byte it reads.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// ManifestName is the object written last in a set: a set without it is
// not a set.
const ManifestName = "manifest.json"

// Errors callers branch on.
var (
	// ErrNotFound: no such set, or no such object in a set.
	ErrNotFound = errors.New("not found")
	// ErrExists: a set (complete or not) of that name is there already.
	ErrExists = errors.New("backup set already exists")
	// ErrUnsafe: an object of a set is not a regular file (a symbolic
	// link, a device), or its name leaves the set.
	ErrUnsafe = errors.New("not a regular file of the set")
	// ErrBadLocation: a target or set location that cannot be parsed.
	ErrBadLocation = errors.New("bad backup location")
	// ErrInUse: an incomplete set whose writer may still be at work is
	// not removed.
	ErrInUse = errors.New("the incomplete backup set may still be being written")
)

// Target is a place holding backup sets.
type Target interface {
	// String is the target's location as people and Parse write it.
	String() string
	// SetLocation is the location of the set name in this target, as
	// ParseSet reads it.
	SetLocation(name string) string
	// Sets lists the names of the complete sets (directory: every visible
	// directory, whose manifest the caller checks; S3: every prefix holding
	// a manifest), in no particular order.
	Sets(ctx context.Context) ([]string, error)
	// Begin starts writing a new set, invisible until its Commit.
	Begin(ctx context.Context, name string) (SetWriter, error)
	// Open opens a set for reading. It does not check the set is there:
	// ReadManifest does.
	Open(ctx context.Context, name string) (SetReader, error)
	// Remove deletes a complete set: it stops being a set first (renamed
	// aside; its manifest deleted), then its objects go.
	Remove(ctx context.Context, name string) error
	// Partials lists what incomplete sets left behind.
	Partials(ctx context.Context) ([]Partial, error)
	// RemovePartial deletes an incomplete set. Callers remove only
	// abandoned ones; the target checks again, and refuses (ErrInUse, or
	// ErrExists once complete) one that is not, as far as it can tell.
	RemovePartial(ctx context.Context, p Partial) error
}

// Partial is what an incomplete set left behind.
type Partial struct {
	// Name is the set's name; ID is what the target needs to remove it
	// (the hidden directory's name, or the set's name).
	Name string `json:"name"`
	ID   string `json:"id"`
	// Modified is the last activity seen on it.
	Modified time.Time `json:"modified"`
	// Abandoned: its writer is certainly gone, and removing it is safe.
	// A partial whose writer cannot be told is never abandoned.
	Abandoned bool   `json:"abandoned"`
	Why       string `json:"why"`
}

// SetWriter writes the objects of a new set.
type SetWriter interface {
	// Location is where the set will be once committed.
	Location() string
	// Create starts the object name (a slash-separated path in the set).
	Create(name string) (Object, error)
	// Commit writes the manifest, last, and so makes the set visible.
	Commit(manifest []byte) error
	// Abort removes what was written.
	Abort() error
}

// Object is one object being written. Commit makes it durable; Abort
// discards it. One of them must be called.
type Object interface {
	io.Writer
	Commit() error
	Abort()
}

// SetReader reads the objects of a set.
type SetReader interface {
	Location() string
	// ReadManifest returns the manifest's bytes (ErrNotFound: none).
	ReadManifest() ([]byte, error)
	// Open streams one object (ErrNotFound; ErrUnsafe).
	Open(name string) (io.ReadCloser, error)
	// List lists every object of the set, the manifest included.
	List() ([]Entry, error)
}

// Entry is one object of a set.
type Entry struct {
	Name    string // slash-separated, relative to the set
	Regular bool   // a regular file (always, on S3, but for folder markers)
}

// DefaultPartialAge is how long a partial set whose writer cannot be
// asked (an S3 one; a directory one written on another host) must have
// seen no activity before it is taken as abandoned and removed.
const DefaultPartialAge = 6 * time.Hour

// maxManifest bounds the manifest read into memory.
const maxManifest = 64 << 20

// Parse reads a target location: s3://bucket[/prefix] or a directory. S3
// settings not in the location come from the environment (S3FromEnv).
func Parse(spec string) (Target, error) {
	if spec == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadLocation)
	}
	if IsS3(spec) {
		bucket, prefix, err := splitS3(spec)
		if err != nil {
			return nil, err
		}
		return NewS3(bucket, prefix, S3FromEnv())
	}
	return NewDir(spec), nil
}

// ParseSet reads the location of one set: its target and its name.
func ParseSet(spec string) (Target, string, error) {
	if IsS3(spec) {
		bucket, prefix, err := splitS3(spec)
		if err != nil {
			return nil, "", err
		}
		name := path.Base(prefix)
		if prefix == "" || name == "." || name == "/" {
			return nil, "", fmt.Errorf("%w: %s names a bucket, not a backup set in it", ErrBadLocation, spec)
		}
		parent := strings.TrimSuffix(strings.TrimSuffix(prefix, name), "/")
		t, err := NewS3(bucket, parent, S3FromEnv())
		return t, name, err
	}
	clean := filepath.Clean(spec)
	return NewDir(filepath.Dir(clean)), filepath.Base(clean), nil
}

// IsS3 says whether a location is an S3 one.
func IsS3(spec string) bool { return strings.HasPrefix(spec, "s3://") }

// splitS3 splits s3://bucket/prefix.
func splitS3(spec string) (bucket, prefix string, err error) {
	rest := strings.TrimPrefix(spec, "s3://")
	bucket, prefix, _ = strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%w: %s: no bucket (s3://bucket/prefix)", ErrBadLocation, spec)
	}
	if prefix != "" && path.Clean(prefix) != prefix {
		return "", "", fmt.Errorf("%w: %s: the prefix is not a clean path", ErrBadLocation, spec)
	}
	for _, part := range strings.Split(prefix, "/") {
		if part == "." || part == ".." {
			return "", "", fmt.Errorf("%w: %s: the prefix is not a clean path", ErrBadLocation, spec)
		}
	}
	return bucket, prefix, nil
}

// checkSetName refuses names that are not one plain path element.
func checkSetName(name string) error {
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\\") {
		return fmt.Errorf("%w: backup set name %q is not a plain name", ErrBadLocation, name)
	}
	return nil
}

// checkObjectName refuses object names that would leave their set.
func checkObjectName(name string) error {
	if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "\\") {
		return fmt.Errorf("%w: %q", ErrUnsafe, name)
	}
	return nil
}
