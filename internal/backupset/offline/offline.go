// Package offline is the backup set's strict offline reader: it opens (and
// unlocks) a set, verifies it to the last byte (the format's checksums,
// bbolt's check and the hive's own on the cluster database), inspects,
// exports and compares its cluster database, and lists the sets of a
// directory. Backup and restore both use it; it never reaches a cluster,
// as etcdutl's snapshot package works on files alone.
package offline

import (
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/writers"
	bolt "go.etcd.io/bbolt"
)

// Summary is one line of backup list.
type Summary struct {
	Path       string `json:"path"`
	BackupID   string `json:"backup_id"`
	Created    string `json:"created"`
	Cluster    string `json:"cluster"`
	Generation uint64 `json:"generation"`
	Node       string `json:"node"`
	Offline    bool   `json:"offline"`
	HiveSeq    uint64 `json:"hive_seq"`
	Size       int64  `json:"size"`
	Encrypted  bool   `json:"encrypted"`
}

// List summarizes the sets in dir (a directory or s3://bucket/prefix),
// oldest first; sets it cannot read are returned as errors beside them. A
// target that does not exist or cannot be read (a missing directory or
// bucket) is the error, matching backupset.ErrCannotList.
func List(dir string) ([]Summary, []error, error) {
	sets, errs := backupset.List(dir)
	for _, err := range errs {
		if errors.Is(err, backupset.ErrCannotList) {
			return nil, nil, err
		}
	}
	var out []Summary
	for _, s := range sets {
		m := s.Manifest
		out = append(out, Summary{Path: s.Location, BackupID: m.BackupID, Created: m.Created.UTC().Format("2006-01-02 15:04:05Z"),
			Cluster: m.Cluster.Name, Generation: m.Cluster.Generation, Node: m.SourceNode.Name, Offline: m.Offline,
			HiveSeq: m.HiveSeq, Size: m.Size(), Encrypted: m.Encryption != nil})
	}
	return out, errs, nil
}

// WithHive opens the set's cluster database read-only, from a checked
// copy, and calls fn. An encrypted set must be unlocked first.
func WithHive(s *backupset.Set, fn func(h *hive.Hive) error) error {
	f, ok := s.Manifest.File(writers.ClusterDBID, hive.FileName)
	if !ok {
		return fmt.Errorf("%w: %s holds no cluster database", backupset.ErrCorrupt, s.Location)
	}
	path, cleanup, err := s.Extract(f, nil)
	if err != nil {
		return err
	}
	defer cleanup()
	h, err := hive.OpenReadOnly(path)
	if err != nil {
		return fmt.Errorf("%w: cluster database: %v", backupset.ErrCorrupt, err)
	}
	defer h.Close()
	return fn(h)
}

// OpenSet opens a set and unlocks it with the identities, if any. An
// encrypted set opened without identities can be listed and its stored
// bytes verified, nothing more; identities given for a set that is not
// encrypted are refused (backupset.ErrNotEncrypted).
func OpenSet(path string, ids ...age.Identity) (*backupset.Set, error) {
	return openSet(path, ids, true)
}

// openSet is OpenSet; not strict, identities are ignored for a set that is
// not encrypted (to read, compare or describe it, not to trust it).
func openSet(path string, ids []age.Identity, strict bool) (*backupset.Set, error) {
	s, err := backupset.Open(path)
	if err != nil {
		return nil, err
	}
	if !strict && !s.Encrypted() {
		return s, nil
	}
	if err := s.Unlock(ids); err != nil {
		return nil, err
	}
	return s, nil
}

// openReadable is openSet for reading the set's contents: an encrypted set
// without identities is an error naming what is missing.
func openReadable(path string, ids []age.Identity, strict bool) (*backupset.Set, error) {
	s, err := openSet(path, ids, strict)
	if err != nil {
		return nil, err
	}
	if !s.Unlocked() {
		return nil, fmt.Errorf("read backup set %s: %w: it is encrypted to %s; give an age identity file of one of them with --identity",
			path, backupset.ErrNoIdentity, strings.Join(s.Manifest.Encryption.Recipients, ", "))
	}
	return s, nil
}

// Verify checks a set completely, reading each file once: the manifest's
// own checksum, exactly the files it lists with their sizes and checksums,
// bbolt's consistency check and the hive's structure on the cluster
// database, and bbolt's check on the registry.
//
// An encrypted set is checked so with identities that decrypt it (ids).
// Without any, only its stored bytes can be: the listing and each file's
// size and SHA-256 of the ciphertext (Verification.ContentsChecked false).
func Verify(path string, progress func(int64), ids ...age.Identity) (*backupset.Manifest, error) {
	v, err := VerifySet(path, progress, ids...)
	if v == nil {
		return nil, err
	}
	return v.Manifest, err
}

// Verification is what Verify found.
type Verification struct {
	Manifest *backupset.Manifest
	// Encrypted: the set is encrypted. ContentsChecked: the files' content
	// was checked (decrypted, for an encrypted set), not only their stored
	// bytes.
	Encrypted       bool
	ContentsChecked bool
}

// VerifySet is Verify, saying what it could check.
func VerifySet(path string, progress func(int64), ids ...age.Identity) (*Verification, error) {
	s, err := OpenSet(path, ids...)
	if err != nil {
		return nil, err
	}
	v := &Verification{Manifest: s.Manifest, Encrypted: s.Encrypted()}
	if s.Unlocked() {
		_, _, cleanup, err := verifyKeeping(s, progress)
		if cleanup != nil {
			cleanup()
		}
		v.ContentsChecked = err == nil
		return v, err
	}
	if err := s.CheckListing(); err != nil {
		return v, err
	}
	for _, f := range s.Manifest.Files {
		if err := s.VerifyStored(f, progress); err != nil {
			return v, err
		}
	}
	return v, nil
}

// VerifyKeepingDatabase is Verify that also returns the path of the
// checked copy of the cluster database it made, for the caller to read
// instead of extracting it again, and the function that removes it. An
// encrypted set needs identities that decrypt it.
func VerifyKeepingDatabase(path string, progress func(int64), ids ...age.Identity) (*backupset.Manifest, string, func(), error) {
	s, err := openReadable(path, ids, true)
	if err != nil {
		return nil, "", nil, err
	}
	return verifyKeeping(s, progress)
}

func verifyKeeping(s *backupset.Set, progress func(int64)) (*backupset.Manifest, string, func(), error) {
	path := s.Location
	if err := s.CheckListing(); err != nil {
		return s.Manifest, "", nil, err
	}
	var db string
	var cleanup func()
	var err error
	fail := func(err error) (*backupset.Manifest, string, func(), error) {
		if cleanup != nil {
			cleanup()
		}
		return s.Manifest, "", nil, fmt.Errorf("verify %s: %w", path, err)
	}
	for _, f := range s.Manifest.Files {
		switch {
		case f.WriterID == writers.ClusterDBID:
			if db != "" {
				return fail(fmt.Errorf("%w: it holds two cluster databases", backupset.ErrCorrupt))
			}
			if db, cleanup, err = s.Extract(f, progress); err != nil {
				return fail(err)
			}
			err = checkHive(db, s.Manifest.HiveSeq)
		case f.WriterID == writers.RegistryID:
			if err = checkBolt(s, f, progress); err != nil {
				err = fmt.Errorf("%w: node registry: %w", backupset.ErrCorrupt, err)
			}
		default:
			err = s.VerifyFile(f, progress)
		}
		if err != nil {
			return fail(err)
		}
	}
	if db == "" {
		return fail(fmt.Errorf("%w: it holds no cluster database", backupset.ErrCorrupt))
	}
	return s.Manifest, db, cleanup, nil
}

// checkHive runs bbolt's check and the hive's own on a database file, and
// checks it is at sequence number seq.
func checkHive(path string, seq uint64) error {
	h, err := hive.OpenReadOnly(path)
	if err != nil {
		return fmt.Errorf("%w: cluster database: %v", backupset.ErrCorrupt, err)
	}
	defer h.Close()
	if err := h.Check(); err != nil {
		return fmt.Errorf("%w: cluster database: %v", backupset.ErrCorrupt, err)
	}
	if h.Seq() != seq {
		return fmt.Errorf("%w: cluster database is at sequence %d, the manifest says %d", backupset.ErrCorrupt, h.Seq(), seq)
	}
	return nil
}

func checkBolt(s *backupset.Set, f backupset.File, progress func(int64)) error {
	path, cleanup, err := s.Extract(f, progress)
	if err != nil {
		return err
	}
	defer cleanup()
	return checkBoltFile(path)
}

// checkBoltFile runs bbolt's consistency check on a database file.
func checkBoltFile(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
}

// Inspection is backup inspect's answer.
type Inspection struct {
	Manifest *backupset.Manifest `json:"manifest"`
	Keys     int                 `json:"keys"`
	Values   int                 `json:"values"`
	// Encrypted: the set is encrypted. Locked: it is, and no identity was
	// given, so Keys and Values are not known.
	Encrypted bool `json:"encrypted"`
	Locked    bool `json:"locked,omitempty"`
	// Secrets names what the set holds in the subtree of secrets
	// (hive.SecretsKey), never its bytes.
	Secrets []string `json:"secrets,omitempty"`
}

// Inspect reads a set's manifest and counts the keys and values of its
// cluster database. An encrypted set without identities is described by
// its manifest alone (Locked).
func Inspect(path string, ids ...age.Identity) (*Inspection, error) {
	s, err := openSet(path, ids, false)
	if err != nil {
		return nil, err
	}
	in := &Inspection{Manifest: s.Manifest, Encrypted: s.Encrypted(), Locked: !s.Unlocked()}
	if in.Locked {
		return in, nil
	}
	err = WithHive(s, func(h *hive.Hive) error {
		return h.View(func(r *hive.Reader) error {
			if in.Keys, in.Values, err = r.Count(nil); err != nil {
				return err
			}
			secrets, err := readSecrets(r)
			in.Secrets = secrets.names()
			return err
		})
	})
	return in, err
}
