package hive

// Format 2, read and converted: a bucket per key inside its parent's
// bucket, values keyed by the folded path. Every key with subkeys was a
// bucket bbolt cannot store inline, so a page of its own, and values landed
// wherever their path sorted, leaving pages part empty. Read-only opens
// (an offline read, an aside copy, a backup set of an earlier version) read
// it as it is; a writable open converts it to the flat key index.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	bolt "go.etcd.io/bbolt"
)

const formatNested = 2

var (
	bucketTree   = []byte("tree")
	bucketValues = []byte("values")
	keyMeta      = []byte{0} // inside a key's bucket: its own record
)

const prefixKey = 'k'

func subkeyID(name string) []byte { return append([]byte{prefixKey}, fold(name)...) }

// nestedRecord is what a key's bucket stores under keyMeta.
type nestedRecord struct {
	change uint64
	name   string
}

func decodeNestedRecord(b []byte) (nestedRecord, error) {
	c, n := binary.Uvarint(b)
	if n <= 0 {
		return nestedRecord{}, fmt.Errorf("%w: stored key record", ErrCorrupt)
	}
	return nestedRecord{change: c, name: string(b[n:])}, nil
}

func nestedValuePrefix(p Path) []byte { return []byte(fold(p.String()) + "\x00") }

// nested reads a format 2 hive.
type nested struct{ tx *bolt.Tx }

func (n nested) lookup(p Path) (*bolt.Bucket, Path, error) {
	b := n.tx.Bucket(bucketTree)
	stored := make(Path, 0, len(p))
	for i, name := range p {
		b = b.Bucket(subkeyID(name))
		if b == nil {
			return nil, nil, fmt.Errorf("%w: %s", ErrKeyNotFound, p[:i+1])
		}
		rec, err := decodeNestedRecord(b.Get(keyMeta))
		if err != nil {
			return nil, nil, err
		}
		stored = append(stored, rec.name)
	}
	return b, stored, nil
}

func (n nested) get(p Path) (Key, error) {
	b, stored, err := n.lookup(p)
	if err != nil {
		return Key{}, err
	}
	return n.readKey(b, stored)
}

func (n nested) getValue(p Path, name string) (Value, error) {
	_, stored, err := n.lookup(p)
	if err != nil {
		return Value{}, err
	}
	raw := n.tx.Bucket(bucketValues).Get(append(nestedValuePrefix(p), fold(name)...))
	if raw == nil {
		return Value{}, fmt.Errorf("%w: %q in key %q", ErrValueNotFound, name, stored.String())
	}
	return decodeValue(raw)
}

func (n nested) readKey(b *bolt.Bucket, stored Path) (Key, error) {
	k := Key{Path: stored.String(), Subkeys: []string{}, Values: []Value{}}
	if len(stored) > 0 {
		k.Name = stored[len(stored)-1]
	}
	if raw := b.Get(keyMeta); raw != nil {
		rec, err := decodeNestedRecord(raw)
		if err != nil {
			return Key{}, err
		}
		k.Change = rec.change
	}
	c := b.Cursor()
	for id, v := c.Seek([]byte{prefixKey}); id != nil && id[0] == prefixKey; id, v = c.Next() {
		sub := b.Bucket(id)
		if v != nil || sub == nil {
			return Key{}, fmt.Errorf("%w: subkey entry %q of %q is not a bucket", ErrCorrupt, id[1:], k.Path)
		}
		rec, err := decodeNestedRecord(sub.Get(keyMeta))
		if err != nil {
			return Key{}, err
		}
		if fold(rec.name) != string(id[1:]) {
			return Key{}, fmt.Errorf("%w: subkey %q of %q stored under %q", ErrCorrupt, rec.name, k.Path, id[1:])
		}
		k.Subkeys = append(k.Subkeys, rec.name)
	}
	return readValues(n.tx.Bucket(bucketValues), nestedValuePrefix(stored), k)
}

func (n nested) walk(p Path, fn func(Key) error) error {
	b, stored, err := n.lookup(p)
	if err != nil {
		return err
	}
	return n.walkFrom(b, stored, fn)
}

func (n nested) walkFrom(b *bolt.Bucket, stored Path, fn func(Key) error) error {
	k, err := n.readKey(b, stored)
	if err != nil {
		return err
	}
	if err := fn(k); err != nil {
		return err
	}
	for _, name := range k.Subkeys {
		if err := n.walkFrom(b.Bucket(subkeyID(name)), stored.Child(name), fn); err != nil {
			return err
		}
	}
	return nil
}

// convertBatch is how many bytes of values one transaction of a conversion
// writes: bbolt keeps a transaction's changed pages in memory until it
// commits, and a hive may hold gigabytes. Tests make it small.
var convertBatch = 32 << 20

// convertFile converts the hive at path to the flat key index if it is of
// format 2, into a new file beside it that is renamed over it once whole
// and synced: a crash leaves the old file as it was, and the next open
// starts again. Nothing is done to a file of another format, or none.
func convertFile(path string, pageSize int, log *slog.Logger) error {
	src, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer src.Close()
	nestedFile := false
	src.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if m == nil {
			return nil
		}
		v := getU64(m.Get(keyFormat))
		nestedFile = (v == 0 || v == formatNested) && tx.Bucket(bucketTree) != nil && tx.Bucket(bucketKeys) == nil
		return nil
	})
	if !nestedFile {
		return nil
	}
	start := time.Now()
	if log != nil {
		size := int64(0)
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		log.Warn("converting the hive to its new format (a flat key index), once: a large hive takes a while", "path", path, "format", formatNested, "to", formatVersion, "bytes", size)
	}
	tmp := path + ".converting"
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{NoSync: true, PageSize: pageSize, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	err = src.View(func(stx *bolt.Tx) error { return convertNested(stx, dst) })
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = fsutil.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("convert format %d to %d: %w", formatNested, formatVersion, err)
	}
	if log != nil {
		log.Info("converted the hive to its new format", "path", path, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// convertNested writes into dst every key of the format 2 hive read by stx,
// in the order a walk meets it (so its values are stored in that order,
// pages filled), keeping each key's last change and case, and the meta and
// request buckets as they are.
func convertNested(stx *bolt.Tx, dst *bolt.DB) error {
	err := dst.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketData} {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		for _, b := range [][]byte{bucketMeta, bucketRequests, bucketReqOrder} {
			if err := copyBucket(stx.Bucket(b), tx, b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	tx, err := dst.Begin(true)
	if err != nil {
		return err
	}
	defer func() { tx.Rollback() }()
	w, batch := newWriter(tx), 0
	err = nested{stx}.walk(Path{}, func(k Key) error {
		p, err := ParsePath(k.Path)
		if err != nil {
			return fmt.Errorf("%w: stored key %q: %v", ErrCorrupt, k.Path, err)
		}
		rec := keyRecord{change: k.Change, path: k.Path}
		if !p.IsRoot() {
			if rec.num, err = w.nextNum(); err != nil {
				return err
			}
		}
		if err := w.put(p, rec); err != nil {
			return err
		}
		for _, v := range k.Values {
			if err := w.data.Put(dataID(rec.num, v.Name), v.encode()); err != nil {
				return err
			}
			batch += v.Size()
		}
		if batch < convertBatch {
			return nil
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		if tx, err = dst.Begin(true); err != nil {
			return err
		}
		w, batch = newWriter(tx), 0
		return nil
	})
	if err != nil {
		return fmt.Errorf("convert the nested key tree: %w", err)
	}
	if err := tx.Bucket(bucketMeta).Put(keyFormat, u64(formatVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// copyBucket copies bucket src, and the buckets inside it, as name in dst
// (a parent bucket or a transaction); a missing src copies nothing.
func copyBucket(src *bolt.Bucket, dst interface {
	CreateBucket([]byte) (*bolt.Bucket, error)
}, name []byte) error {
	if src == nil {
		return nil
	}
	b, err := dst.CreateBucket(name)
	if err != nil {
		return err
	}
	return src.ForEach(func(k, v []byte) error {
		if v == nil {
			return copyBucket(src.Bucket(k), b, k)
		}
		return b.Put(k, v)
	})
}
