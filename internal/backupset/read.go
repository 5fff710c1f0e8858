package backupset

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/backend"
	"github.com/klauspost/compress/zstd"
)

// Set is a committed backup set.
type Set struct {
	// Location is where the set is: its directory, or s3://bucket/prefix/NAME.
	Location string
	// Name is the set's name in its target.
	Name     string
	Manifest *Manifest
	src      backend.SetReader
	// Set by Unlock for an encrypted set.
	ids    []age.Identity
	macKey []byte
}

// Open reads the manifest of the set at path (a directory or
// s3://bucket/prefix/NAME). It does not read the files: Verify does.
func Open(path string) (*Set, error) {
	t, name, err := backend.ParseSet(path)
	if err != nil {
		return nil, fmt.Errorf("open backup set: %w", err)
	}
	return OpenIn(context.Background(), t, name)
}

// OpenIn reads the manifest of the set name in t.
func OpenIn(ctx context.Context, t backend.Target, name string) (*Set, error) {
	loc := t.SetLocation(name)
	if strings.Contains(name, ".partial-") {
		return nil, fmt.Errorf("open backup set %s: %w: it was never completed", loc, ErrIncomplete)
	}
	src, err := t.Open(ctx, name)
	if errors.Is(err, backend.ErrNotFound) {
		return nil, fmt.Errorf("open backup set %s: %w: %w", loc, ErrNotASet, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open backup set %s: %w", loc, err)
	}
	raw, err := src.ReadManifest()
	if errors.Is(err, backend.ErrNotFound) {
		if objs, lerr := src.List(); lerr == nil && len(objs) > 0 {
			return nil, fmt.Errorf("open backup set %s: %w: no %s (it was never completed)", loc, ErrIncomplete, ManifestName)
		}
		return nil, fmt.Errorf("open backup set %s: %w: no %s", loc, ErrNotASet, ManifestName)
	}
	if errors.Is(err, backend.ErrUnsafe) {
		return nil, fmt.Errorf("open backup set %s: %w: %w", loc, ErrCorrupt, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open backup set %s: %w", loc, err)
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("open backup set %s: %w", loc, err)
	}
	return &Set{Location: loc, Name: name, Manifest: m, src: src}, nil
}

// List returns the committed sets in parent (a directory or
// s3://bucket/prefix), oldest first. Hidden and partial entries are never
// sets; one that is not a valid set is reported in the errors.
func List(parent string) ([]*Set, []error) {
	t, err := backend.Parse(parent)
	if err != nil {
		return nil, []error{fmt.Errorf("list backups in %s: %w", parent, err)}
	}
	return ListIn(context.Background(), t)
}

// ListIn is List of a target.
func ListIn(ctx context.Context, t backend.Target) ([]*Set, []error) {
	names, err := t.Sets(ctx)
	if err != nil {
		return nil, []error{err}
	}
	var sets []*Set
	var errs []error
	for _, n := range names {
		s, err := OpenIn(ctx, t, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sets = append(sets, s)
	}
	sort.Slice(sets, func(i, j int) bool {
		if !sets[i].Manifest.Created.Equal(sets[j].Manifest.Created) {
			return sets[i].Manifest.Created.Before(sets[j].Manifest.Created)
		}
		return sets[i].Location < sets[j].Location
	})
	return sets, errs
}

// verifyingReader checks size and checksum when its source ends.
type verifyingReader struct {
	r    io.Reader
	c    io.Closer
	h    *countingHash
	size int64
	sum  string
	what string // the kind of checksum, for messages
	name string
	// below, if set, is the stored layer under this one: it is read to
	// its end (and so checked) when this one ends.
	below io.Reader
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if v.h.n > v.size {
		// Early: a file that decompresses past its size is not read on.
		return n, fmt.Errorf("%w: %s is over the %d bytes the manifest says", ErrCorrupt, v.name, v.size)
	}
	if err == io.EOF {
		if v.h.n != v.size {
			return n, fmt.Errorf("%w: %s is %d bytes, the manifest says %d", ErrCorrupt, v.name, v.h.n, v.size)
		}
		if got := hex.EncodeToString(v.h.h.Sum(nil)); got != v.sum {
			return n, fmt.Errorf("%w: %s fails its %s (%s, the manifest says %s)", ErrCorrupt, v.name, v.what, got, v.sum)
		}
		if v.below != nil {
			if _, berr := io.Copy(io.Discard, v.below); berr != nil {
				return n, berr
			}
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.c.Close() }

// decryptErrors marks what the age layer reports (a chunk or header that
// does not authenticate, a truncated stream) as corruption.
type decryptErrors struct {
	r    io.Reader
	name string
}

func (d decryptErrors) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("%w: %s does not decrypt: %w", ErrCorrupt, d.name, err)
	}
	return n, err
}

// openStored opens f's stored bytes, following no symbolic link inside the
// set.
func (s *Set) openStored(f File) (io.ReadCloser, error) {
	file, err := s.src.Open(f.StoredName())
	if errors.Is(err, backend.ErrUnsafe) {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, f.StoredName(), err)
	}
	if errors.Is(err, backend.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s: %v", ErrIncomplete, f.StoredName(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.StoredName(), err)
	}
	return file, nil
}

// storedReader checks the stored bytes of a file stored compressed or
// encrypted against their size and SHA-256.
func storedReader(file io.ReadCloser, f File) *verifyingReader {
	return &verifyingReader{r: file, c: file, h: &countingHash{h: sha256.New()},
		size: f.StoredSize, sum: f.StoredSHA256, what: "SHA-256", name: f.StoredName()}
}

// Open returns the content of f (decrypted and decompressed), checking its
// size and checksums as it is read: the reader's last Read fails on any
// mismatch. An encrypted file needs the set unlocked (ErrNoIdentity).
func (s *Set) Open(f File) (io.ReadCloser, error) {
	if f.Encryption != "" && s.macKey == nil {
		return nil, fmt.Errorf("%s: %w (an age identity file, --identity)", f.Name, ErrNoIdentity)
	}
	file, err := s.openStored(f)
	if err != nil {
		return nil, err
	}
	var r io.Reader = file
	var stored io.Reader
	closer := io.Closer(file)
	if f.layered() {
		stored = storedReader(file, f)
		r = stored
	}
	if f.Encryption == EncryptionAge {
		dec, err := age.Decrypt(r, s.ids...)
		if err != nil {
			file.Close()
			return nil, fmt.Errorf("%w: %s does not decrypt with the identity that opens the set: %w", ErrCorrupt, f.StoredName(), err)
		}
		r = decryptErrors{r: dec, name: f.StoredName()}
	}
	if f.Compression == "zstd" {
		dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			file.Close()
			return nil, err
		}
		r = dec
		closer = closeFunc(func() error { dec.Close(); return file.Close() })
	}
	content := &verifyingReader{r: r, c: closer, h: &countingHash{h: sha256.New()}, size: f.Size, sum: f.SHA256, what: "SHA-256", name: f.Name, below: stored}
	if f.Encryption != "" {
		content.h.h, content.sum, content.what = hmac.New(sha256.New, s.macKey), f.ContentMAC, "content MAC"
	}
	return content, nil
}

// VerifyStored checks f's stored bytes against their size and SHA-256
// without decoding them: for an encrypted file, the ciphertext. A file
// stored as it is is checked whole, as VerifyFile does.
func (s *Set) VerifyStored(f File, progress func(int64)) error {
	if !f.layered() {
		return s.VerifyFile(f, progress)
	}
	file, err := s.openStored(f)
	if err != nil {
		return fmt.Errorf("verify %s: %w", s.Location, err)
	}
	defer file.Close()
	if _, err := io.Copy(progressWriter(progress), storedReader(file, f)); err != nil {
		return fmt.Errorf("verify %s: %w", s.Location, err)
	}
	return nil
}

type closeFunc func() error

func (c closeFunc) Close() error { return c() }

// Verify checks the set: exactly the files the manifest lists, each of the
// size and SHA-256 it records (stored and decompressed). It returns the
// first problem found. progress, if set, is told of the bytes read.
func (s *Set) Verify(progress func(int64)) error {
	if err := s.CheckListing(); err != nil {
		return err
	}
	for _, f := range s.Manifest.Files {
		if err := s.VerifyFile(f, progress); err != nil {
			return err
		}
	}
	return nil
}

// CheckListing checks that the set holds exactly the files the manifest
// lists, all regular files, without reading them.
func (s *Set) CheckListing() error {
	want := map[string]bool{ManifestName: true}
	for _, f := range s.Manifest.Files {
		want[f.StoredName()] = true
	}
	objs, err := s.src.List()
	if err != nil {
		return fmt.Errorf("verify %s: %w", s.Location, err)
	}
	var extra []string
	seen := map[string]bool{}
	for _, o := range objs {
		seen[o.Name] = true
		if !want[o.Name] {
			extra = append(extra, o.Name)
		}
		if !o.Regular {
			extra = append(extra, o.Name+" (not a regular file)")
		}
	}
	if !seen[ManifestName] {
		return fmt.Errorf("verify %s: %w: %s is gone", s.Location, ErrIncomplete, ManifestName)
	}
	if len(extra) > 0 {
		return fmt.Errorf("verify %s: %w: files the manifest does not list: %s", s.Location, ErrCorrupt, strings.Join(extra, ", "))
	}
	return nil
}

// VerifyFile reads f whole, checking its size and SHA-256s.
func (s *Set) VerifyFile(f File, progress func(int64)) error {
	r, err := s.Open(f)
	if err != nil {
		return fmt.Errorf("verify %s: %w", s.Location, err)
	}
	defer r.Close()
	if _, err := io.Copy(progressWriter(progress), r); err != nil {
		return fmt.Errorf("verify %s: %w", s.Location, err)
	}
	return nil
}

type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) {
	if p != nil {
		p(int64(len(b)))
	}
	return len(b), nil
}

// Extract copies the content of f, checked against its size and SHA-256,
// into a temporary file, and returns its path and the function that
// removes it. A file that fails its checksum is not left behind. progress,
// if set, is told of the bytes read.
func (s *Set) Extract(f File, progress func(int64)) (string, func(), error) {
	tmp, err := os.CreateTemp("", "clusterkeep-extract-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.Remove(tmp.Name()) }
	r, err := s.Open(f)
	if err == nil {
		_, err = io.Copy(io.MultiWriter(tmp, progressWriter(progress)), r)
		r.Close()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("extract %s: %w", f.Name, err)
	}
	return tmp.Name(), cleanup, nil
}
