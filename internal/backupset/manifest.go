// Package backupset is the backup set format: a directory (or the objects
// under a key prefix of an S3 bucket) holding manifest.json and the
// writers' files under data/, and nothing else. Sets are written and read
// through a target (package target): a set becomes visible only when
// complete (a directory is written under a hidden temporary name, fsync'd
// and renamed into place; on S3 the manifest is put last), so an
// interrupted backup never looks like a backup.
// The reader is strict: it refuses unknown or missing files, any size or
// SHA-256 mismatch, and a manifest that was changed after it was written.
//
// It knows nothing of clusters or writers beyond the documents it stores.
package backupset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backend"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/google/uuid"
)

// FormatVersion is the version of the set format this build writes for an
// unencrypted set; it reads it and FormatEncrypted.
const FormatVersion = 1

// FormatEncrypted is the version of an encrypted set: version 1 with the
// manifest's encryption section and each file an age stream. An encrypted
// set has its own version so that a build that knows no encryption refuses
// it by its version, not by an unknown field. A version 1 set is never
// encrypted; a version 2 set always is.
const FormatEncrypted = 2

// ManifestName is the manifest's file name in a set.
const ManifestName = backend.ManifestName

// DataDir is the folder of the writers' files in a set.
const DataDir = "data"

// Errors callers branch on.
var (
	ErrNotASet    = errors.New("not a backup set")
	ErrCorrupt    = errors.New("backup set is corrupt")
	ErrIncomplete = errors.New("backup set is incomplete")
	// ErrNoIdentity: the set is encrypted and no identity was given.
	ErrNoIdentity = errors.New("backup set is encrypted and no identity was given to decrypt it")
	// ErrWrongIdentity: none of the identities given decrypts the set.
	ErrWrongIdentity = errors.New("none of the identities given decrypts the backup set")
	// ErrNotEncrypted: identities were given for a set that is not
	// encrypted (it may have been replaced by one whose encryption a
	// forger removed).
	ErrNotEncrypted = errors.New("backup set is not encrypted")
)

// Cluster is the cluster a backup was taken from.
type Cluster struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Generation uint64 `json:"generation"`
}

// Node is the node a backup was taken on.
type Node struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	APIAddr string `json:"api_addr,omitempty"`
}

// File is one file of the set.
type File struct {
	// Name is the path inside the set, below data/.
	Name      string `json:"name"`
	WriterID  string `json:"writer_id"`
	Component string `json:"component"`
	// Source is where the file came from on the node (empty for streams).
	Source string `json:"source,omitempty"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Compression is "" or "zstd"; then StoredSize and StoredSHA256
	// describe the bytes on disk.
	Compression  string `json:"compression,omitempty"`
	StoredSize   int64  `json:"stored_size,omitempty"`
	StoredSHA256 string `json:"stored_sha256,omitempty"`
	// Encryption is "" or "age": the stored bytes are then an age stream
	// (of the compressed content, with compression), StoredSize and
	// StoredSHA256 describe them, SHA256 is empty and ContentMAC is the
	// HMAC-SHA256 of the content under the set's checksum key. A plain
	// SHA-256 of the content would let anyone who reads the manifest
	// confirm a guess of a small file's content.
	Encryption string `json:"encryption,omitempty"`
	ContentMAC string `json:"content_mac,omitempty"`
}

// StoredName is the file's path in the set directory.
func (f File) StoredName() string {
	n := path.Join(DataDir, f.Name)
	if f.Compression == "zstd" {
		n += ".zst"
	}
	if f.Encryption == EncryptionAge {
		n += ".age"
	}
	return n
}

// layered says whether the stored bytes differ from the content.
func (f File) layered() bool { return f.Compression != "" || f.Encryption != "" }

// Manifest describes a backup set.
type Manifest struct {
	FormatVersion int       `json:"format_version"`
	BackupID      string    `json:"backup_id"`
	Created       time.Time `json:"created"`
	ToolVersion   string    `json:"tool_version"`
	Cluster       Cluster   `json:"cluster"`
	SourceNode    Node      `json:"source_node"`
	// Offline is true for a backup of a stopped node's files.
	Offline        bool                    `json:"offline"`
	HiveSeq        uint64                  `json:"hive_seq"`
	ConsensusIndex uint64                  `json:"consensus_index"`
	Writers        []shadow.WriterMetadata `json:"writers"`
	Components     shadow.BackupComponents `json:"backup_components"`
	Files          []File                  `json:"files"`
	// Encryption is set for an encrypted set (FormatEncrypted).
	Encryption *Encryption `json:"encryption,omitempty"`
	// Checksum is the SHA-256 of the manifest with this field empty: it
	// catches a manifest changed after it was written.
	Checksum string `json:"checksum"`
}

// Size is the sum of the files' stored sizes.
func (m *Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		if f.layered() {
			n += f.StoredSize
		} else {
			n += f.Size
		}
	}
	return n
}

// File finds a file by writer and the base name of its path.
func (m *Manifest) File(writerID, base string) (File, bool) {
	for _, f := range m.Files {
		if f.WriterID == writerID && path.Base(f.Name) == base {
			return f, true
		}
	}
	return File{}, false
}

func (m *Manifest) sum() (string, error) {
	c := *m
	c.Checksum = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// Seal sets the checksum and returns the manifest's bytes.
func (m *Manifest) Seal() ([]byte, error) {
	sum, err := m.sum()
	if err != nil {
		return nil, err
	}
	m.Checksum = sum
	return json.MarshalIndent(m, "", "  ")
}

// ParseManifest reads a manifest strictly: unknown fields, another format
// version, a bad checksum or an unsafe file name are errors.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: manifest: trailing data", ErrCorrupt)
	}
	switch {
	case m.FormatVersion != FormatVersion && m.FormatVersion != FormatEncrypted:
		return nil, fmt.Errorf("%w: manifest format version %d, this build reads %d and %d", ErrCorrupt, m.FormatVersion, FormatVersion, FormatEncrypted)
	case m.FormatVersion == FormatEncrypted && m.Encryption == nil:
		return nil, fmt.Errorf("%w: manifest of format %d (encrypted) has no encryption section", ErrCorrupt, m.FormatVersion)
	case m.FormatVersion == FormatVersion && m.Encryption != nil:
		return nil, fmt.Errorf("%w: manifest of format %d has an encryption section", ErrCorrupt, m.FormatVersion)
	}
	sum, err := m.sum()
	if err != nil {
		return nil, err
	}
	if sum != m.Checksum {
		return nil, fmt.Errorf("%w: manifest checksum mismatch: it was changed after the backup was written", ErrCorrupt)
	}
	writers := map[string]bool{}
	for _, w := range m.Writers {
		if _, err := uuid.Parse(w.ID); err != nil {
			return nil, fmt.Errorf("%w: manifest: writer id %q is not a UUID", ErrCorrupt, w.ID)
		}
		writers[w.ID] = true
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if !writers[f.WriterID] {
			return nil, fmt.Errorf("%w: manifest: file %q belongs to writer %q, which the manifest does not describe", ErrCorrupt, f.Name, f.WriterID)
		}
		if f.Source != "" && (!path.IsAbs(f.Source) || path.Clean(f.Source) != f.Source) {
			return nil, fmt.Errorf("%w: manifest: file %q comes from %q, not a clean absolute path", ErrCorrupt, f.Name, f.Source)
		}
		if err := checkName(f.Name); err != nil {
			return nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("%w: manifest lists %q twice", ErrCorrupt, f.Name)
		}
		seen[f.Name] = true
		if err := checkEntry(f, m.Encryption != nil); err != nil {
			return nil, fmt.Errorf("%w: manifest entry %q is malformed: %v", ErrCorrupt, f.Name, err)
		}
	}
	if m.Encryption != nil {
		if err := m.Encryption.check(); err != nil {
			return nil, fmt.Errorf("%w: manifest: encryption: %v", ErrCorrupt, err)
		}
	}
	return &m, nil
}

// checkEntry checks a file's sizes, sums and layers agree with each other
// and with the set being encrypted or not.
func checkEntry(f File, encrypted bool) error {
	switch {
	case f.Size < 0 || f.StoredSize < 0:
		return errors.New("negative size")
	case f.Compression != "" && f.Compression != "zstd":
		return fmt.Errorf("unknown compression %q", f.Compression)
	case f.Encryption != "" && f.Encryption != EncryptionAge:
		return fmt.Errorf("unknown encryption %q", f.Encryption)
	case encrypted != (f.Encryption != ""):
		return errors.New("its encryption does not match the set's")
	case f.layered() && !isHexSum(f.StoredSHA256):
		return errors.New("no SHA-256 of the stored bytes")
	case !f.layered() && (f.StoredSize != 0 || f.StoredSHA256 != ""):
		return errors.New("stored size or SHA-256 of a file stored as it is")
	case encrypted && (f.SHA256 != "" || !isHexSum(f.ContentMAC)):
		return errors.New("an encrypted file needs a content MAC and no plain SHA-256")
	case !encrypted && (f.ContentMAC != "" || !isHexSum(f.SHA256)):
		return errors.New("no SHA-256 of the content")
	}
	return nil
}

// isHexSum says whether s is a SHA-256 in lower-case hex.
func isHexSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkName refuses a file name that could land outside the set.
func checkName(n string) error {
	if n == "" || strings.HasPrefix(n, "/") || strings.Contains(n, "\\") || path.Clean(n) != n || n == "." || strings.HasPrefix(n, "../") || n == ".." {
		return fmt.Errorf("unsafe file name %q", n)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." || part == "" {
			return fmt.Errorf("unsafe file name %q", n)
		}
	}
	return nil
}
