// Package aside keeps the copies of a node's state that were set aside
// rather than deleted: a stale generation's database and consensus log when
// an authoritative restore happened elsewhere, an evicted node's, a
// restored node's old files. Each copy is a folder DATA_DIR/aside/NAME
// laid out as a data directory (clusdb, raft/), so the offline commands
// read it with --data-dir like any stopped node's.
//
// It names, lists and removes those folders; it never changes a node's
// live state and never reaches the network.
package aside

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Dir is the folder of the copies inside a data directory.
const Dir = "aside"

// Marker is the file in a data directory that records a copy being set
// aside (its path): a node that died half way finishes the move at its
// next start.
const Marker = "forgetting"

// InProgress is the path of the copy being set aside in dataDir, or "".
func InProgress(dataDir string) string {
	b, err := os.ReadFile(filepath.Join(dataDir, Marker))
	if err != nil {
		return ""
	}
	return filepath.Clean(string(b))
}

// ErrUnknown is returned for a name that is no copy kept aside.
var ErrUnknown = errors.New("no such copy set aside")

// timeLayout starts each copy's name: when it was set aside (UTC).
const timeLayout = "20060102T150405.000000000Z"

// NewPath is the folder for a copy of dataDir set aside now, for why
// (a word: "evicted", "stale-generation", "restore").
func NewPath(dataDir, why string, now time.Time) string {
	return filepath.Join(dataDir, Dir, now.UTC().Format(timeLayout)+"-"+why)
}

// Copy is one copy kept aside.
type Copy struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Reason is why it was set aside, from its name.
	Reason string `json:"reason"`
	// Time is when it was set aside, from its name (zero if it does not
	// say).
	Time  time.Time `json:"time,omitzero"`
	Bytes int64     `json:"bytes"`
}

// List returns the copies kept aside in dataDir, oldest first.
func List(dataDir string) ([]Copy, error) {
	if fi, err := os.Stat(dataDir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return nil, fmt.Errorf("list the copies set aside in data directory %s: %w", dataDir, err)
	}
	root := filepath.Join(dataDir, Dir)
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the copies set aside in %s: %w", dataDir, err)
	}
	var out []Copy
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c := Copy{Name: e.Name(), Path: filepath.Join(root, e.Name())}
		first, rest, _ := strings.Cut(e.Name(), "-")
		if t, err := time.Parse(timeLayout, first); err == nil {
			c.Time, c.Reason = t, rest
		} else if fi, err := e.Info(); err == nil {
			// A restore's copy is named for its restore: "restore-ID".
			c.Time, c.Reason = fi.ModTime().UTC(), first
		}
		if c.Bytes, err = size(c.Path); err != nil {
			return nil, fmt.Errorf("list the copies set aside in %s: %w", dataDir, err)
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// size adds up the sizes of the files below dir.
func size(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}

// Total is the number of copies and the bytes they hold.
func Total(cs []Copy) (n int, bytes int64) {
	for _, c := range cs {
		bytes += c.Bytes
	}
	return len(cs), bytes
}

// Remove deletes the named copies kept aside in dataDir. Every name is
// checked before anything is deleted: one that is not a copy there, or
// that is being set aside right now, fails the call, naming it, and
// nothing is removed.
func Remove(dataDir string, names []string) error {
	busy := InProgress(dataDir)
	have, err := List(dataDir)
	if err != nil {
		return err
	}
	known := map[string]Copy{}
	for _, c := range have {
		known[c.Name] = c
	}
	var paths []string
	for _, n := range names {
		c, ok := known[n]
		if !ok || n != filepath.Base(n) {
			return fmt.Errorf("remove %q from %s: %w (see `clusterkeep aside list`)", n, filepath.Join(dataDir, Dir), ErrUnknown)
		}
		if busy != "" && c.Path == filepath.Clean(busy) {
			return fmt.Errorf("remove %q: it is being set aside right now", n)
		}
		paths = append(paths, c.Path)
	}
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove the copy set aside %s: %w", p, err)
		}
	}
	return nil
}
