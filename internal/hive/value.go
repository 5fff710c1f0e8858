package hive

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Type is the type of a named value.
type Type string

// The value types a hive holds.
const (
	TypeString      Type = "string"
	TypeMultiString Type = "multi-string"
	TypeUint32      Type = "uint32"
	TypeUint64      Type = "uint64"
	TypeBinary      Type = "binary"
)

// Types lists every valid type, in a stable order.
var Types = []Type{TypeString, TypeMultiString, TypeUint32, TypeUint64, TypeBinary}

// ParseType returns the Type named s, or ErrInvalidType.
func ParseType(s string) (Type, error) {
	for _, t := range Types {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("%w: %q (want one of string, multi-string, uint32, uint64, binary)", ErrInvalidType, s)
}

var typeCodes = map[Type]byte{TypeString: 1, TypeMultiString: 2, TypeUint32: 3, TypeUint64: 4, TypeBinary: 5}

// Value is a named, typed value of a key. Exactly the field that matches
// Type is meaningful; the others are zero.
type Value struct {
	Name    string
	Type    Type
	String  string
	Strings []string
	Uint32  uint32
	Uint64  uint64
	Binary  []byte
}

// StringValue, MultiStringValue, Uint32Value, Uint64Value and BinaryValue
// build values of each type.
func StringValue(name, s string) Value { return Value{Name: name, Type: TypeString, String: s} }

// MultiStringValue builds a multi-string value.
func MultiStringValue(name string, s []string) Value {
	return Value{Name: name, Type: TypeMultiString, Strings: s}
}

// Uint32Value builds a uint32 value.
func Uint32Value(name string, v uint32) Value { return Value{Name: name, Type: TypeUint32, Uint32: v} }

// Uint64Value builds a uint64 value.
func Uint64Value(name string, v uint64) Value { return Value{Name: name, Type: TypeUint64, Uint64: v} }

// BinaryValue builds a binary value.
func BinaryValue(name string, b []byte) Value { return Value{Name: name, Type: TypeBinary, Binary: b} }

// Size is the number of data bytes the value holds, the quantity bounded by
// MaxValueSize.
func (v Value) Size() int {
	switch v.Type {
	case TypeString:
		return len(v.String)
	case TypeMultiString:
		n := 0
		for _, s := range v.Strings {
			n += len(s) + 1
		}
		return n
	case TypeUint32:
		return 4
	case TypeUint64:
		return 8
	default:
		return len(v.Binary)
	}
}

// Validate checks the value's name, type and size.
func (v Value) Validate() error {
	if err := validateName("value name", v.Name); err != nil {
		return err
	}
	if _, ok := typeCodes[v.Type]; !ok {
		return fmt.Errorf("value %q: %w: %q", v.Name, ErrInvalidType, v.Type)
	}
	if n := v.Size(); n > MaxValueSize {
		return fmt.Errorf("value %q: %w: %d bytes, limit %d", v.Name, ErrValueTooLarge, n, MaxValueSize)
	}
	switch v.Type {
	case TypeString:
		if !utf8.ValidString(v.String) {
			return fmt.Errorf("value %q: %w: string is not valid UTF-8", v.Name, ErrInvalidValue)
		}
	case TypeMultiString:
		for i, s := range v.Strings {
			if !utf8.ValidString(s) {
				return fmt.Errorf("value %q: %w: element %d is not valid UTF-8", v.Name, ErrInvalidValue, i)
			}
		}
	}
	return nil
}

// Equal reports whether two values have the same type and data. Names are
// compared case-insensitively, as the hive matches them.
func (v Value) Equal(o Value) bool {
	if fold(v.Name) != fold(o.Name) || v.Type != o.Type {
		return false
	}
	return v.sameData(o)
}

func (v Value) sameData(o Value) bool {
	if v.Type != o.Type {
		return false
	}
	switch v.Type {
	case TypeString:
		return v.String == o.String
	case TypeMultiString:
		return slices.Equal(v.Strings, o.Strings)
	case TypeUint32:
		return v.Uint32 == o.Uint32
	case TypeUint64:
		return v.Uint64 == o.Uint64
	default:
		return bytes.Equal(v.Binary, o.Binary)
	}
}

// Data returns the value's data as a plain Go value, the form used in JSON.
func (v Value) Data() any {
	switch v.Type {
	case TypeString:
		return v.String
	case TypeMultiString:
		if v.Strings == nil {
			return []string{}
		}
		return v.Strings
	case TypeUint32:
		return v.Uint32
	case TypeUint64:
		return v.Uint64
	default:
		if v.Binary == nil {
			return []byte{}
		}
		return v.Binary
	}
}

type jsonValue struct {
	Name string          `json:"name"`
	Type Type            `json:"type"`
	Data json.RawMessage `json:"data"`
}

// MarshalJSON encodes the value as {"name","type","data"}; binary data is
// base64, as encoding/json writes []byte.
func (v Value) MarshalJSON() ([]byte, error) {
	d, err := json.Marshal(v.Data())
	if err != nil {
		return nil, err
	}
	return json.Marshal(jsonValue{Name: v.Name, Type: v.Type, Data: d})
}

// UnmarshalJSON decodes the form MarshalJSON writes, strictly: the data must
// have the shape its type demands.
func (v *Value) UnmarshalJSON(b []byte) error {
	var j jsonValue
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidValue, err)
	}
	out := Value{Name: j.Name, Type: j.Type}
	var target any
	switch j.Type {
	case TypeString:
		target = &out.String
	case TypeMultiString:
		target = &out.Strings
	case TypeUint32:
		target = &out.Uint32
	case TypeUint64:
		target = &out.Uint64
	case TypeBinary:
		target = &out.Binary
	default:
		return fmt.Errorf("value %q: %w: %q", j.Name, ErrInvalidType, j.Type)
	}
	if len(j.Data) == 0 {
		return fmt.Errorf("value %q: %w: missing data", j.Name, ErrInvalidValue)
	}
	if err := json.Unmarshal(j.Data, target); err != nil {
		return fmt.Errorf("value %q: %w: data is not a %s: %v", j.Name, ErrInvalidValue, j.Type, err)
	}
	*v = out
	return nil
}

// encode writes the stored form: type code, uvarint name length, name, data.
func (v Value) encode() []byte {
	return v.appendEncoded(make([]byte, 0, 1+binary.MaxVarintLen64+len(v.Name)+v.Size()+8))
}

// appendEncoded appends the stored form to b.
func (v Value) appendEncoded(b []byte) []byte {
	b = append(b, typeCodes[v.Type])
	b = binary.AppendUvarint(b, uint64(len(v.Name)))
	b = append(b, v.Name...)
	switch v.Type {
	case TypeString:
		b = append(b, v.String...)
	case TypeMultiString:
		b = binary.AppendUvarint(b, uint64(len(v.Strings)))
		for _, s := range v.Strings {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	case TypeUint32:
		b = binary.BigEndian.AppendUint32(b, v.Uint32)
	case TypeUint64:
		b = binary.BigEndian.AppendUint64(b, v.Uint64)
	default:
		b = append(b, v.Binary...)
	}
	return b
}

// typeOfCode is the Type of a stored type code, "" when unknown.
func typeOfCode(c byte) Type {
	switch c {
	case 1:
		return TypeString
	case 2:
		return TypeMultiString
	case 3:
		return TypeUint32
	case 4:
		return TypeUint64
	case 5:
		return TypeBinary
	}
	return ""
}

func decodeValue(b []byte) (Value, error) {
	bad := func(what string) (Value, error) {
		return Value{}, fmt.Errorf("%w: stored value: %s", ErrCorrupt, what)
	}
	if len(b) < 2 {
		return bad("too short")
	}
	v := Value{Type: typeOfCode(b[0])}
	if v.Type == "" {
		return bad(fmt.Sprintf("unknown type code %d", b[0]))
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return bad("name length")
	}
	v.Name = string(b[k : k+int(n)])
	b = b[k+int(n):]
	switch v.Type {
	case TypeString:
		v.String = string(b)
	case TypeMultiString:
		cnt, k := binary.Uvarint(b)
		if k <= 0 || cnt > uint64(len(b)) {
			return bad("multi-string count")
		}
		b = b[k:]
		v.Strings = make([]string, 0, cnt)
		for range cnt {
			l, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < l {
				return bad("multi-string element")
			}
			v.Strings = append(v.Strings, string(b[k:k+int(l)]))
			b = b[k+int(l):]
		}
		if len(b) != 0 {
			return bad("trailing bytes after multi-string")
		}
	case TypeUint32:
		if len(b) != 4 {
			return bad("uint32 length")
		}
		v.Uint32 = binary.BigEndian.Uint32(b)
	case TypeUint64:
		if len(b) != 8 {
			return bad("uint64 length")
		}
		v.Uint64 = binary.BigEndian.Uint64(b)
	default:
		v.Binary = bytes.Clone(b)
	}
	return v, nil
}
