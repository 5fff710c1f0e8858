package hive

// The binary form of a transaction: what the cluster service writes in its
// consensus log, so that every node decodes each value once, without JSON.
//
//	uvarint len, request id
//	uvarint count, then per condition: kind code, string key, field mask,
//	  [value] [string name] [uvarint change]
//	uvarint count, then per operation: kind code, string key, field mask,
//	  [value] [string name]
//
// A string is a uvarint length and its bytes; a value is a uvarint length
// and the value's stored form (see Value.encode). The field mask says which
// optional fields follow, so that a transaction decodes to exactly what was
// encoded, invalid or not: validation stays where it is, at compile.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadEncoding: a binary transaction is malformed.
var ErrBadEncoding = errors.New("malformed binary transaction")

const (
	fieldValue  = 1 << 0
	fieldName   = 1 << 1
	fieldChange = 1 << 2
)

// The kind codes are part of the consensus log's format: never renumber.
var (
	opCodes   = map[OpKind]byte{OpCreateKey: 1, OpDeleteKey: 2, OpSetValue: 3, OpDeleteValue: 4}
	condCodes = map[CondKind]byte{CondKeyExists: 1, CondKeyMissing: 2, CondValueEquals: 3, CondValueExists: 4, CondValueMissing: 5, CondChangeEquals: 6}
	opKinds   = [...]OpKind{"", OpCreateKey, OpDeleteKey, OpSetValue, OpDeleteValue}
	condKinds = [...]CondKind{"", CondKeyExists, CondKeyMissing, CondValueEquals, CondValueExists, CondValueMissing, CondChangeEquals}
)

// BinarySize is about the number of bytes AppendBinary appends: enough
// for one allocation in the common case.
func (t Txn) BinarySize() int {
	n := 3 + len(t.RequestID)
	for _, c := range t.Conds {
		n += 16 + len(c.Key) + len(c.Name)
		if c.Value != nil {
			n += 24 + len(c.Value.Name) + c.Value.Size()
		}
	}
	for _, o := range t.Ops {
		n += 8 + len(o.Key) + len(o.Name)
		if o.Value != nil {
			n += 24 + len(o.Value.Name) + o.Value.Size()
		}
	}
	return n
}

// AppendBinary appends the transaction's binary form to b. It fails only
// on a kind or value type the form has no code for.
func (t Txn) AppendBinary(b []byte) ([]byte, error) {
	b = appendString(b, t.RequestID)
	b = binary.AppendUvarint(b, uint64(len(t.Conds)))
	for i, c := range t.Conds {
		code, ok := condCodes[c.Kind]
		if !ok {
			return nil, fmt.Errorf("encode condition %d: %w: unknown condition %q", i, ErrInvalidTxn, c.Kind)
		}
		var mask byte
		if c.Value != nil {
			mask |= fieldValue
		}
		if c.Name != "" {
			mask |= fieldName
		}
		if c.Change != 0 {
			mask |= fieldChange
		}
		b = append(b, code)
		b = appendString(b, c.Key)
		b = append(b, mask)
		var err error
		if b, err = appendValue(b, c.Value); err != nil {
			return nil, fmt.Errorf("encode condition %d: %w", i, err)
		}
		if mask&fieldName != 0 {
			b = appendString(b, c.Name)
		}
		if mask&fieldChange != 0 {
			b = binary.AppendUvarint(b, c.Change)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(t.Ops)))
	for i, o := range t.Ops {
		code, ok := opCodes[o.Kind]
		if !ok {
			return nil, fmt.Errorf("encode operation %d: %w: unknown operation %q", i, ErrInvalidTxn, o.Kind)
		}
		var mask byte
		if o.Value != nil {
			mask |= fieldValue
		}
		if o.Name != "" {
			mask |= fieldName
		}
		b = append(b, code)
		b = appendString(b, o.Key)
		b = append(b, mask)
		var err error
		if b, err = appendValue(b, o.Value); err != nil {
			return nil, fmt.Errorf("encode operation %d: %w", i, err)
		}
		if mask&fieldName != 0 {
			b = appendString(b, o.Name)
		}
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue appends v, when there is one, as its length and stored form.
func appendValue(b []byte, v *Value) ([]byte, error) {
	if v == nil {
		return b, nil
	}
	if _, ok := typeCodes[v.Type]; !ok {
		return nil, fmt.Errorf("value %q: %w: %q", v.Name, ErrInvalidType, v.Type)
	}
	// The length goes first; reserve its largest form and move the value
	// back when the length is shorter, so the value is written once.
	start := len(b)
	b = append(b, make([]byte, binary.MaxVarintLen64)...)
	b = v.appendEncoded(b)
	n := len(b) - start - binary.MaxVarintLen64
	var lb [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(lb[:], uint64(n))
	copy(b[start:], lb[:l])
	copy(b[start+l:], b[start+binary.MaxVarintLen64:])
	return b[:start+l+n], nil
}

// UnmarshalBinary decodes what AppendBinary wrote, the whole of b. It never
// keeps a reference to b.
func (t *Txn) UnmarshalBinary(b []byte) error {
	d := txnDecoder{b: b}
	out := Txn{RequestID: d.string("request id")}
	if n := d.count("conditions", 3); n > 0 {
		out.Conds = make([]Cond, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			var c Cond
			code := d.byte("condition kind")
			if int(code) >= len(condKinds) || code == 0 {
				d.fail(fmt.Sprintf("condition %d: unknown kind code %d", i, code))
				break
			}
			c.Kind = condKinds[code]
			c.Key = d.string("condition key")
			mask := d.byte("condition fields")
			if mask&^(fieldValue|fieldName|fieldChange) != 0 {
				d.fail(fmt.Sprintf("condition %d: unknown fields %#x", i, mask))
				break
			}
			if mask&fieldValue != 0 {
				c.Value = d.value("condition value")
			}
			if mask&fieldName != 0 {
				c.Name = d.string("condition value name")
			}
			if mask&fieldChange != 0 {
				c.Change = d.uvarint("condition change")
			}
			out.Conds = append(out.Conds, c)
		}
	}
	if n := d.count("operations", 3); n > 0 {
		out.Ops = make([]Op, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			var o Op
			code := d.byte("operation kind")
			if int(code) >= len(opKinds) || code == 0 {
				d.fail(fmt.Sprintf("operation %d: unknown kind code %d", i, code))
				break
			}
			o.Kind = opKinds[code]
			o.Key = d.string("operation key")
			mask := d.byte("operation fields")
			if mask&^(fieldValue|fieldName) != 0 {
				d.fail(fmt.Sprintf("operation %d: unknown fields %#x", i, mask))
				break
			}
			if mask&fieldValue != 0 {
				o.Value = d.value("operation value")
			}
			if mask&fieldName != 0 {
				o.Name = d.string("operation value name")
			}
			out.Ops = append(out.Ops, o)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return d.err
	}
	*t = out
	return nil
}

// txnDecoder reads the binary form; after the first error every read
// returns a zero value and err keeps that first error.
type txnDecoder struct {
	b   []byte
	err error
}

func (d *txnDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadEncoding, what)
	}
	d.b = nil
}

func (d *txnDecoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what + ": bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *txnDecoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail(what + ": truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes returns the next length-prefixed field, aliasing d.b.
func (d *txnDecoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("%s: %d bytes, %d left", what, n, len(d.b)))
		return nil
	}
	f := d.b[:n]
	d.b = d.b[n:]
	return f
}

func (d *txnDecoder) string(what string) string { return string(d.bytes(what)) }

// count reads a number of items of at least min bytes each, refusing one
// the remaining input cannot hold (no allocation from a corrupt count).
func (d *txnDecoder) count(what string, min int) int {
	n := d.uvarint(what)
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/min) {
		d.fail(fmt.Sprintf("%d %s in %d bytes", n, what, len(d.b)))
		return 0
	}
	return int(n)
}

func (d *txnDecoder) value(what string) *Value {
	raw := d.bytes(what)
	if d.err != nil {
		return nil
	}
	v, err := decodeValue(raw)
	if err != nil {
		d.fail(fmt.Sprintf("%s: %v", what, err))
		return nil
	}
	return &v
}
