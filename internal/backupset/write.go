package backupset

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/backend"
	"github.com/klauspost/compress/zstd"
)

// Writer writes a new backup set through its target, invisible until
// Commit.
type Writer struct {
	sw       backend.SetWriter
	compress bool
	seal     *sealing // nil: not encrypted
	files    []File
}

// Create starts a set named name in the target at parent (a directory or
// s3://bucket/prefix). Sets left half-written by a backup process that
// died are removed first.
func Create(parent, name string, compress bool) (*Writer, error) {
	t, err := backend.Parse(parent)
	if err != nil {
		return nil, err
	}
	return CreateIn(context.Background(), t, name, compress)
}

// CreateIn starts a set named name in t. A name already used is
// backend.ErrExists.
func CreateIn(ctx context.Context, t backend.Target, name string, compress bool) (*Writer, error) {
	if strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\\") || name == "" {
		return nil, fmt.Errorf("backup set name %q is not a plain name", name)
	}
	sw, err := t.Begin(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("create backup set: %w", err)
	}
	return &Writer{sw: sw, compress: compress}, nil
}

// Encrypt makes every file added from now on an age stream encrypted to
// the recipients, and the set an encrypted one. Call it before Add.
func (w *Writer) Encrypt(recipients []age.Recipient) error {
	if len(w.files) > 0 {
		return errors.New("encrypt backup set: files were added already")
	}
	s, err := newSealing(recipients)
	if err != nil {
		return err
	}
	w.seal = s
	return nil
}

// Path is where the set will be once committed.
func (w *Writer) Path() string { return w.sw.Location() }

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
	f.Compression, f.Encryption = "", ""
	if w.compress {
		f.Compression = "zstd"
	}
	if w.seal != nil {
		f.Encryption = EncryptionAge
	}
	out, err := w.sw.Create(f.StoredName())
	if err != nil {
		return f, fmt.Errorf("store %s: %w", f.Name, err)
	}
	committed := false
	defer func() {
		if !committed {
			out.Abort()
		}
	}()
	content := &countingHash{h: sha256.New()}
	if w.seal != nil {
		content.h = hmac.New(sha256.New, w.seal.key)
	}
	stored := &countingHash{h: sha256.New()}
	// Layers: content, then zstd, then age, then the target. The stored
	// bytes have a sum of their own only when they differ from the
	// content (compressed or encrypted); otherwise the content's sum,
	// taken once in the pipeline, is theirs.
	var sink io.Writer = out
	if f.layered() {
		sink = io.MultiWriter(out, stored)
	}
	var encrypt io.WriteCloser
	if w.seal != nil {
		if encrypt, err = age.Encrypt(sink, w.seal.recipients...); err != nil {
			return f, fmt.Errorf("store %s: encrypt: %w", f.Name, err)
		}
		sink = encrypt
	}
	var enc *zstd.Encoder
	if w.compress {
		if enc, err = zstd.NewWriter(sink, zstd.WithEncoderLevel(zstd.SpeedFastest)); err != nil {
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
	if encrypt != nil {
		if err := encrypt.Close(); err != nil {
			return f, fmt.Errorf("store %s: encrypt: %w", f.Name, err)
		}
	}
	committed = true
	if err := out.Commit(); err != nil {
		return f, fmt.Errorf("store %s: %w", f.Name, err)
	}
	f.Size = content.n
	sum := hex.EncodeToString(content.h.Sum(nil))
	if w.seal != nil {
		f.ContentMAC = sum
	} else {
		f.SHA256 = sum
	}
	if f.layered() {
		f.StoredSize, f.StoredSHA256 = stored.n, hex.EncodeToString(stored.h.Sum(nil))
	}
	w.files = append(w.files, f)
	return f, nil
}

// Commit writes the manifest, last: the set becomes visible.
func (w *Writer) Commit(m *Manifest) (string, error) {
	m.FormatVersion, m.Encryption = FormatVersion, nil
	if w.seal != nil {
		desc := w.seal.desc
		m.FormatVersion, m.Encryption = FormatEncrypted, &desc
	}
	m.Files = w.files
	raw, err := m.Seal()
	if err != nil {
		return "", err
	}
	if err := w.sw.Commit(raw); err != nil {
		return "", err
	}
	return w.sw.Location(), nil
}

// Abort removes everything written.
func (w *Writer) Abort() error { return w.sw.Abort() }

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
