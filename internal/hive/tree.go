package hive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Key is a key as read: its case-preserved path and name, the sequence
// number of its last change, its values and the names of its subkeys, both
// sorted case-insensitively.
type Key struct {
	Path    string   `json:"path"`
	Name    string   `json:"name"`
	Change  uint64   `json:"change"`
	Subkeys []string `json:"subkeys"`
	Values  []Value  `json:"values"`
}

// keyRecord is what a key's bucket stores under keyMeta.
type keyRecord struct {
	change uint64
	name   string
}

func (k keyRecord) encode() []byte {
	b := binary.AppendUvarint(nil, k.change)
	return append(b, k.name...)
}

func decodeKeyRecord(b []byte) (keyRecord, error) {
	c, n := binary.Uvarint(b)
	if n <= 0 {
		return keyRecord{}, fmt.Errorf("%w: stored key record", ErrCorrupt)
	}
	return keyRecord{change: c, name: string(b[n:])}, nil
}

func subkeyID(name string) []byte { return append([]byte{prefixKey}, fold(name)...) }

// foldedPath is a key path as the values bucket orders it.
func foldedPath(p Path) string { return fold(strings.Join(p, Separator)) }

// valuePrefix starts the ids of every value of the key at p.
func valuePrefix(p Path) []byte { return []byte(foldedPath(p) + "\x00") }

// valueID is the id of one value of the key at p.
func valueID(p Path, name string) []byte { return append(valuePrefix(p), fold(name)...) }

// Reader reads the hive inside one read transaction.
type Reader struct{ tx *bolt.Tx }

// Seq is the sequence number of the last committed transaction.
func (r *Reader) Seq() uint64 { return getU64(r.tx.Bucket(bucketMeta).Get(keySeq)) }

// Applied is the consensus index of the last applied entry.
func (r *Reader) Applied() uint64 { return getU64(r.tx.Bucket(bucketMeta).Get(keyApplied)) }

// Position is where a hive stands in the consensus log: the index and term
// of the last entry it applied, and the configuration in force there with
// the index it was committed at. A zero Term or a nil Config means the hive
// does not know (a hive of an earlier version, or one reset for a new
// consensus history).
type Position struct {
	Index, Term uint64
	Config      []byte
	ConfigIndex uint64
}

// Position reads where the hive stands in the consensus log.
func (r *Reader) Position() Position {
	m := r.tx.Bucket(bucketMeta)
	p := Position{Index: getU64(m.Get(keyApplied))}
	if getU64(m.Get(keyPositionAt)) != p.Index {
		return p // kept with an earlier entry (see keyPositionAt): unknown
	}
	p.Term, p.ConfigIndex = getU64(m.Get(keyAppliedTerm)), getU64(m.Get(keyConfigIndex))
	if c := m.Get(keyConfig); c != nil {
		p.Config = bytes.Clone(c)
	}
	return p
}

// lookup walks to the bucket of p, returning the case-preserved path.
func (r *Reader) lookup(p Path) (*bolt.Bucket, Path, error) {
	b := r.tx.Bucket(bucketTree)
	stored := make(Path, 0, len(p))
	for i, name := range p {
		b = b.Bucket(subkeyID(name))
		if b == nil {
			return nil, nil, fmt.Errorf("%w: %s", ErrKeyNotFound, p[:i+1])
		}
		rec, err := decodeKeyRecord(b.Get(keyMeta))
		if err != nil {
			return nil, nil, err
		}
		stored = append(stored, rec.name)
	}
	return b, stored, nil
}

// Get reads a key.
func (r *Reader) Get(path string) (Key, error) {
	p, err := ParsePath(path)
	if err != nil {
		return Key{}, err
	}
	b, stored, err := r.lookup(p)
	if err != nil {
		return Key{}, err
	}
	return readKey(b, r.tx.Bucket(bucketValues), stored)
}

func readKey(b, values *bolt.Bucket, stored Path) (Key, error) {
	k := Key{Path: stored.String(), Subkeys: []string{}, Values: []Value{}}
	if len(stored) > 0 {
		k.Name = stored[len(stored)-1]
		rec, err := decodeKeyRecord(b.Get(keyMeta))
		if err != nil {
			return Key{}, err
		}
		k.Change = rec.change
	} else if rec := b.Get(keyMeta); rec != nil {
		r, err := decodeKeyRecord(rec)
		if err != nil {
			return Key{}, err
		}
		k.Change = r.change
	}
	c := b.Cursor()
	for id, v := c.Seek([]byte{prefixKey}); id != nil && id[0] == prefixKey; id, v = c.Next() {
		sub := b.Bucket(id)
		if v != nil || sub == nil {
			return Key{}, fmt.Errorf("%w: subkey entry %q of %q is not a bucket", ErrCorrupt, id[1:], k.Path)
		}
		rec, err := decodeKeyRecord(sub.Get(keyMeta))
		if err != nil {
			return Key{}, err
		}
		if fold(rec.name) != string(id[1:]) {
			return Key{}, fmt.Errorf("%w: subkey %q of %q stored under %q", ErrCorrupt, rec.name, k.Path, id[1:])
		}
		k.Subkeys = append(k.Subkeys, rec.name)
	}
	prefix := valuePrefix(stored)
	vc := values.Cursor()
	for id, v := vc.Seek(prefix); id != nil && bytes.HasPrefix(id, prefix); id, v = vc.Next() {
		val, err := decodeValue(v)
		if err != nil {
			return Key{}, fmt.Errorf("key %q: %w", k.Path, err)
		}
		if fold(val.Name) != string(id[len(prefix):]) {
			return Key{}, fmt.Errorf("%w: value %q of %q stored under %q", ErrCorrupt, val.Name, k.Path, id[len(prefix):])
		}
		k.Values = append(k.Values, val)
	}
	return k, nil
}

// GetValue reads one value.
func (r *Reader) GetValue(path, name string) (Value, error) {
	p, err := ParsePath(path)
	if err != nil {
		return Value{}, err
	}
	if err := validateName("value name", name); err != nil {
		return Value{}, err
	}
	_, stored, err := r.lookup(p)
	if err != nil {
		return Value{}, err
	}
	raw := r.tx.Bucket(bucketValues).Get(valueID(p, name))
	if raw == nil {
		return Value{}, fmt.Errorf("%w: %q in key %q", ErrValueNotFound, name, stored.String())
	}
	return decodeValue(raw)
}

// Walk calls fn for the key at p and every key below it, parents before
// children, siblings in case-insensitive order.
func (r *Reader) Walk(p Path, fn func(Key) error) error {
	b, stored, err := r.lookup(p)
	if err != nil {
		return err
	}
	return walk(b, r.tx.Bucket(bucketValues), stored, fn)
}

func walk(b, values *bolt.Bucket, stored Path, fn func(Key) error) error {
	k, err := readKey(b, values, stored)
	if err != nil {
		return err
	}
	if err := fn(k); err != nil {
		return err
	}
	for _, name := range k.Subkeys {
		if err := walk(b.Bucket(subkeyID(name)), values, stored.Child(name), fn); err != nil {
			return err
		}
	}
	return nil
}

// Count returns how many keys (the root included) and values lie at and below p.
func (r *Reader) Count(p Path) (keys, values int, err error) {
	err = r.Walk(p, func(k Key) error {
		keys++
		values += len(k.Values)
		return nil
	})
	return keys, values, err
}

// writer applies one compiled transaction inside a write transaction.
type writer struct {
	tx     *bolt.Tx
	root   *bolt.Bucket
	values *bolt.Bucket
	seq    uint64
	events []Event
}

func (w *writer) find(p Path) *bolt.Bucket {
	b := w.root
	for _, name := range p {
		if b = filled(b.Bucket(subkeyID(name))); b == nil {
			return nil
		}
	}
	return b
}

// fillPercent is how full a page the hive's writes leave when bbolt splits
// one. bbolt's default, half, suits random inserts; the hive's keys and
// values mostly arrive in order within their parent (loads, restores,
// new subkeys), where half leaves every page half empty: two 1 KiB values
// to a 4 KiB page. Full pages keep the file, and so every backup, restore
// and snapshot of it, at the size of the data.
const fillPercent = 1.0

// filled sets the fill percent of a bucket the writer changes (bbolt
// keeps it per bucket handle, for the transaction's commit).
func filled(b *bolt.Bucket) *bolt.Bucket {
	if b != nil {
		b.FillPercent = fillPercent
	}
	return b
}

func (w *writer) check(conds []ccond) error {
	for i, c := range conds {
		b := w.find(c.path)
		fail := func(why string) error {
			return fmt.Errorf("%w: condition %d (%s %q): %s", ErrPreconditionFailed, i, c.Kind, c.Key, why)
		}
		switch c.Kind {
		case CondKeyExists:
			if b == nil {
				return fail("key does not exist")
			}
		case CondKeyMissing:
			if b != nil {
				return fail("key exists")
			}
		case CondChangeEquals:
			if b == nil {
				return fail("key does not exist")
			}
			var change uint64
			if raw := b.Get(keyMeta); raw != nil {
				rec, err := decodeKeyRecord(raw)
				if err != nil {
					return err
				}
				change = rec.change
			}
			if change != c.Change {
				return fail(fmt.Sprintf("key changed at %d, expected %d", change, c.Change))
			}
		case CondValueExists, CondValueMissing, CondValueEquals:
			name := c.Name
			if c.Kind == CondValueEquals {
				name = c.Value.Name
			}
			var raw []byte
			if b != nil {
				raw = w.values.Get(valueID(c.path, name))
			}
			switch {
			case c.Kind == CondValueMissing && raw != nil:
				return fail(fmt.Sprintf("value %q exists", name))
			case c.Kind != CondValueMissing && raw == nil:
				return fail(fmt.Sprintf("value %q does not exist", name))
			case c.Kind == CondValueEquals:
				v, err := decodeValue(raw)
				if err != nil {
					return err
				}
				if !v.sameData(*c.Value) {
					return fail(fmt.Sprintf("value %q differs", name))
				}
			}
		}
	}
	return nil
}

func (w *writer) apply(ops []cop) error {
	for _, op := range ops {
		var err error
		switch op.Kind {
		case OpCreateKey:
			_, err = w.createKey(op.path)
		case OpDeleteKey:
			err = w.deleteKey(op.path)
		case OpSetValue:
			err = w.setValue(op.path, *op.Value)
		case OpDeleteValue:
			err = w.deleteValue(op.path, op.Name)
		}
		if err != nil {
			return fmt.Errorf("%s %q: %w", op.Kind, op.Key, err)
		}
	}
	return nil
}

// touch records the transaction's sequence number as b's last change.
func (w *writer) touch(b *bolt.Bucket) error {
	var rec keyRecord
	if raw := b.Get(keyMeta); raw != nil {
		var err error
		if rec, err = decodeKeyRecord(raw); err != nil {
			return err
		}
	}
	rec.change = w.seq
	return b.Put(keyMeta, rec.encode())
}

// createKey walks to p, creating every missing key on the way.
func (w *writer) createKey(p Path) (*bolt.Bucket, error) {
	b := w.root
	for i, name := range p {
		next := filled(b.Bucket(subkeyID(name)))
		if next == nil {
			var err error
			if next, err = b.CreateBucket(subkeyID(name)); err != nil {
				return nil, err
			}
			filled(next)
			if err := next.Put(keyMeta, keyRecord{change: w.seq, name: name}.encode()); err != nil {
				return nil, err
			}
			if err := w.touch(b); err != nil {
				return nil, err
			}
			w.events = append(w.events, Event{Seq: w.seq, Kind: OpCreateKey, Key: p[:i+1].String()})
		}
		b = next
	}
	return b, nil
}

func (w *writer) deleteKey(p Path) error {
	parent := w.find(p[:len(p)-1])
	if parent == nil || parent.Bucket(subkeyID(p[len(p)-1])) == nil {
		return nil
	}
	if err := parent.DeleteBucket(subkeyID(p[len(p)-1])); err != nil {
		return err
	}
	// The key's values, and those of every key below it.
	for _, prefix := range [][]byte{valuePrefix(p), []byte(foldedPath(p) + Separator)} {
		if err := deletePrefix(w.values, prefix); err != nil {
			return err
		}
	}
	w.events = append(w.events, Event{Seq: w.seq, Kind: OpDeleteKey, Key: p.String()})
	return w.touch(parent)
}

func (w *writer) setValue(p Path, v Value) error {
	b, err := w.createKey(p)
	if err != nil {
		return err
	}
	id := valueID(p, v.Name)
	if old := w.values.Get(id); old != nil {
		// The name keeps the case it was created with.
		prev, err := decodeValue(old)
		if err != nil {
			return err
		}
		v.Name = prev.Name
	}
	if err := w.values.Put(id, v.encode()); err != nil {
		return err
	}
	w.events = append(w.events, Event{Seq: w.seq, Kind: OpSetValue, Key: p.String(), Name: v.Name})
	return w.touch(b)
}

func (w *writer) deleteValue(p Path, name string) error {
	b := w.find(p)
	if b == nil || w.values.Get(valueID(p, name)) == nil {
		return nil
	}
	if err := w.values.Delete(valueID(p, name)); err != nil {
		return err
	}
	w.events = append(w.events, Event{Seq: w.seq, Kind: OpDeleteValue, Key: p.String(), Name: name})
	return w.touch(b)
}

// deletePrefix deletes every entry of b whose key starts with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
