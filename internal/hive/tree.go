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

// keyRecord is a key's entry in the key index: its number, which orders
// its values in the data bucket, the sequence number of its last change and
// its case-preserved path. The root's number is 0.
type keyRecord struct {
	num    uint64
	change uint64
	path   string
}

func (k keyRecord) encode() []byte {
	b := binary.AppendUvarint(make([]byte, 0, 2*binary.MaxVarintLen64+len(k.path)), k.num)
	b = binary.AppendUvarint(b, k.change)
	return append(b, k.path...)
}

func decodeKeyRecord(b []byte) (keyRecord, error) {
	num, n := binary.Uvarint(b)
	if n <= 0 {
		return keyRecord{}, fmt.Errorf("%w: stored key record", ErrCorrupt)
	}
	change, m := binary.Uvarint(b[n:])
	if m <= 0 {
		return keyRecord{}, fmt.Errorf("%w: stored key record", ErrCorrupt)
	}
	return keyRecord{num: num, change: change, path: string(b[n+m:])}, nil
}

// name is the last name of the key's path.
func (k keyRecord) name() string {
	return k.path[strings.LastIndex(k.path, Separator)+1:]
}

// indexSep separates names in the key index: it sorts before every
// character a name may hold, so a key's descendants follow it at once,
// parents before children, and a scan of the index is a walk of the tree.
const indexSep = 0

// indexID is the id of the key at p in the key index (the root has none).
func indexID(p Path) []byte {
	n := len(p)
	for _, name := range p {
		n += len(name)
	}
	b := make([]byte, 0, n)
	for i, name := range p {
		if i > 0 {
			b = append(b, indexSep)
		}
		b = append(b, fold(name)...)
	}
	return b
}

// belowID starts the ids of every key below p.
func belowID(p Path) []byte {
	if p.IsRoot() {
		return nil
	}
	return append(indexID(p), indexSep)
}

// dataID is the id of a value of key number num in the data bucket.
func dataID(num uint64, name string) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(name)), num), fold(name)...)
}

// seek positions c at the first entry at or after prefix.
func seek(c *bolt.Cursor, prefix []byte) ([]byte, []byte) {
	if len(prefix) == 0 {
		return c.First()
	}
	return c.Seek(prefix)
}

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

// nested reports whether the hive is of format 2 (read as it is).
func (r *Reader) nested() bool { return r.tx.Bucket(bucketKeys) == nil }

// record reads the key index entry of p.
func (r *Reader) record(p Path) (keyRecord, error) {
	return readRecord(r.tx.Bucket(bucketMeta), r.tx.Bucket(bucketKeys), p)
}

func readRecord(meta, keys *bolt.Bucket, p Path) (keyRecord, error) {
	if p.IsRoot() {
		if raw := meta.Get(keyRoot); raw != nil {
			return decodeKeyRecord(raw)
		}
		return keyRecord{}, nil
	}
	raw := keys.Get(indexID(p))
	if raw == nil {
		// Name the first key of the path that is missing.
		i := 1
		for i < len(p) && keys.Get(indexID(p[:i])) != nil {
			i++
		}
		return keyRecord{}, fmt.Errorf("%w: %s", ErrKeyNotFound, p[:i])
	}
	return decodeKeyRecord(raw)
}

// Get reads a key.
func (r *Reader) Get(path string) (Key, error) {
	p, err := ParsePath(path)
	if err != nil {
		return Key{}, err
	}
	if r.nested() {
		return nested{r.tx}.get(p)
	}
	rec, err := r.record(p)
	if err != nil {
		return Key{}, err
	}
	return r.readKey(p, rec)
}

// readKey reads the subkeys and values of the key at p.
func (r *Reader) readKey(p Path, rec keyRecord) (Key, error) {
	k := Key{Path: rec.path, Change: rec.change, Subkeys: []string{}, Values: []Value{}}
	if !p.IsRoot() {
		k.Name = rec.name()
	}
	below := belowID(p)
	c := r.tx.Bucket(bucketKeys).Cursor()
	for id, raw := seek(c, below); id != nil && bytes.HasPrefix(id, below); {
		sub, _, err := checkedRecord(id, raw)
		if err != nil {
			return Key{}, err
		}
		if bytes.IndexByte(id[len(below):], indexSep) >= 0 {
			return Key{}, fmt.Errorf("%w: key %q has no parent", ErrCorrupt, sub.path)
		}
		k.Subkeys = append(k.Subkeys, sub.name())
		// On past the subkey's own descendants.
		under := append(bytes.Clone(id), indexSep)
		if id, raw = c.Next(); id != nil && bytes.HasPrefix(id, under) {
			under[len(under)-1] = indexSep + 1
			id, raw = c.Seek(under)
		}
	}
	return readValues(r.tx.Bucket(bucketData), dataID(rec.num, ""), k)
}

// readValues adds to k the values stored in b under prefix, each checked
// against the name its id folds.
func readValues(b *bolt.Bucket, prefix []byte, k Key) (Key, error) {
	vc := b.Cursor()
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

// checkedRecord decodes the index entry id and checks that its path is the
// one id names (folded, names joined by indexSep), returning the path.
func checkedRecord(id, raw []byte) (keyRecord, Path, error) {
	rec, err := decodeKeyRecord(raw)
	if err != nil {
		return keyRecord{}, nil, err
	}
	if rec.path == "" || fold(strings.ReplaceAll(rec.path, Separator, string(rune(indexSep)))) != string(id) {
		return keyRecord{}, nil, fmt.Errorf("%w: key %q stored under %q", ErrCorrupt, rec.path, id)
	}
	return rec, strings.Split(rec.path, Separator), nil
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
	if r.nested() {
		return nested{r.tx}.getValue(p, name)
	}
	rec, err := r.record(p)
	if err != nil {
		return Value{}, err
	}
	raw := r.tx.Bucket(bucketData).Get(dataID(rec.num, name))
	if raw == nil {
		return Value{}, fmt.Errorf("%w: %q in key %q", ErrValueNotFound, name, rec.path)
	}
	return decodeValue(raw)
}

// Walk calls fn for the key at p and every key below it, parents before
// children, siblings in case-insensitive order.
func (r *Reader) Walk(p Path, fn func(Key) error) error {
	if r.nested() {
		return nested{r.tx}.walk(p, fn)
	}
	visit := func(p Path, rec keyRecord) error {
		k, err := r.readKey(p, rec)
		if err != nil {
			return err
		}
		return fn(k)
	}
	rec, err := r.record(p)
	if err != nil {
		return err
	}
	if err := visit(p, rec); err != nil {
		return err
	}
	// The index holds the keys below p in walk order.
	below := belowID(p)
	c := r.tx.Bucket(bucketKeys).Cursor()
	for id, raw := seek(c, below); id != nil && bytes.HasPrefix(id, below); id, raw = c.Next() {
		rec, sub, err := checkedRecord(id, raw)
		if err != nil {
			return err
		}
		if err := visit(sub, rec); err != nil {
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
	meta   *bolt.Bucket
	keys   *bolt.Bucket
	data   *bolt.Bucket
	seq    uint64
	events []Event
}

func newWriter(tx *bolt.Tx) *writer {
	return &writer{tx: tx, meta: tx.Bucket(bucketMeta), keys: tx.Bucket(bucketKeys), data: filled(tx.Bucket(bucketData))}
}

// find reads the record of the key at p; false if there is none.
func (w *writer) find(p Path) (keyRecord, bool, error) {
	if p.IsRoot() {
		rec, err := readRecord(w.meta, w.keys, p)
		return rec, true, err
	}
	raw := w.keys.Get(indexID(p))
	if raw == nil {
		return keyRecord{}, false, nil
	}
	rec, err := decodeKeyRecord(raw)
	return rec, true, err
}

// put stores the record of the key at p.
func (w *writer) put(p Path, rec keyRecord) error {
	if p.IsRoot() {
		return w.meta.Put(keyRoot, rec.encode())
	}
	return w.keys.Put(indexID(p), rec.encode())
}

// nextNum allocates a key number: numbers only grow, so a new key's values
// are appended to the data bucket and fill its pages.
func (w *writer) nextNum() (uint64, error) {
	n := getU64(w.meta.Get(keyNextNum)) + 1
	return n, w.meta.Put(keyNextNum, u64(n))
}

// fillPercent is how full a page the writes to the data bucket leave when
// bbolt splits one. bbolt's default, half, suits random inserts; values are
// appended (new keys take growing numbers), where half leaves every page
// half empty: two 1 KiB values to a 4 KiB page. Full pages keep the file,
// and so every backup, restore and snapshot of it, at the size of the data.
// The key index keeps bbolt's default: its entries arrive interleaved
// across parents (72% full at half, 35% at full pages).
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
		rec, exists, err := w.find(c.path)
		if err != nil {
			return err
		}
		fail := func(why string) error {
			return fmt.Errorf("%w: condition %d (%s %q): %s", ErrPreconditionFailed, i, c.Kind, c.Key, why)
		}
		switch c.Kind {
		case CondKeyExists:
			if !exists {
				return fail("key does not exist")
			}
		case CondKeyMissing:
			if exists {
				return fail("key exists")
			}
		case CondChangeEquals:
			if !exists {
				return fail("key does not exist")
			}
			if rec.change != c.Change {
				return fail(fmt.Sprintf("key changed at %d, expected %d", rec.change, c.Change))
			}
		case CondValueExists, CondValueMissing, CondValueEquals:
			name := c.Name
			if c.Kind == CondValueEquals {
				name = c.Value.Name
			}
			var raw []byte
			if exists {
				raw = w.data.Get(dataID(rec.num, name))
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

// touch records the transaction's sequence number as the last change of
// the key at p.
func (w *writer) touch(p Path, rec keyRecord) error {
	rec.change = w.seq
	return w.put(p, rec)
}

// createKey creates every missing key on the way to p and returns p's record.
func (w *writer) createKey(p Path) (keyRecord, error) {
	parent, _, err := w.find(Path{})
	if err != nil {
		return keyRecord{}, err
	}
	for i, name := range p {
		at := p[:i+1]
		rec, exists, err := w.find(at)
		if err != nil {
			return keyRecord{}, err
		}
		if !exists {
			rec = keyRecord{change: w.seq, path: name}
			if i > 0 {
				rec.path = parent.path + Separator + name
			}
			if rec.num, err = w.nextNum(); err != nil {
				return keyRecord{}, err
			}
			if err := w.put(at, rec); err != nil {
				return keyRecord{}, err
			}
			if err := w.touch(p[:i], parent); err != nil {
				return keyRecord{}, err
			}
			w.events = append(w.events, Event{Seq: w.seq, Kind: OpCreateKey, Key: at.String()})
		}
		parent = rec
	}
	return parent, nil
}

func (w *writer) deleteKey(p Path) error {
	rec, exists, err := w.find(p)
	if err != nil || !exists || p.IsRoot() {
		return err
	}
	parent, _, err := w.find(p[:len(p)-1])
	if err != nil {
		return err
	}
	// The key and every key below it, with their values.
	if err := w.deleteEntry(indexID(p), rec); err != nil {
		return err
	}
	below := belowID(p)
	c := w.keys.Cursor()
	for id, raw := c.Seek(below); id != nil && bytes.HasPrefix(id, below); id, raw = c.Seek(below) {
		sub, err := decodeKeyRecord(raw)
		if err != nil {
			return err
		}
		if err := w.deleteEntry(bytes.Clone(id), sub); err != nil {
			return err
		}
	}
	w.events = append(w.events, Event{Seq: w.seq, Kind: OpDeleteKey, Key: p.String()})
	return w.touch(p[:len(p)-1], parent)
}

// deleteEntry deletes one key's index entry and its values.
func (w *writer) deleteEntry(id []byte, rec keyRecord) error {
	if err := deletePrefix(w.data, dataID(rec.num, "")); err != nil {
		return err
	}
	return w.keys.Delete(id)
}

func (w *writer) setValue(p Path, v Value) error {
	rec, err := w.createKey(p)
	if err != nil {
		return err
	}
	id := dataID(rec.num, v.Name)
	if old := w.data.Get(id); old != nil {
		// The name keeps the case it was created with.
		prev, err := decodeValue(old)
		if err != nil {
			return err
		}
		v.Name = prev.Name
	}
	if err := w.data.Put(id, v.encode()); err != nil {
		return err
	}
	w.events = append(w.events, Event{Seq: w.seq, Kind: OpSetValue, Key: p.String(), Name: v.Name})
	return w.touch(p, rec)
}

func (w *writer) deleteValue(p Path, name string) error {
	rec, exists, err := w.find(p)
	if err != nil || !exists {
		return err
	}
	id := dataID(rec.num, name)
	if w.data.Get(id) == nil {
		return nil
	}
	if err := w.data.Delete(id); err != nil {
		return err
	}
	w.events = append(w.events, Event{Seq: w.seq, Kind: OpDeleteValue, Key: p.String(), Name: name})
	return w.touch(p, rec)
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
