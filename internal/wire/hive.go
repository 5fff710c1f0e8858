package wire

import (
	"encoding/json"
	"errors"
	"fmt"
)

// The database's values, keys, transactions and events as they travel.
// Their JSON is the hive's own (internal/hive): the server decodes these
// bodies straight into the hive's types, and hiveconv's tests hold the two
// forms to one encoding.

// ErrInvalidValue is a value body whose data does not match its type.
var ErrInvalidValue = errors.New("invalid value")

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

// StringValue builds a string value.
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
		return fmt.Errorf("value %q: %w: type %q", j.Name, ErrInvalidValue, j.Type)
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

// OpKind names an operation of a transaction.
type OpKind string

// The operations (see internal/hive for what each does).
const (
	OpCreateKey   OpKind = "create-key"
	OpDeleteKey   OpKind = "delete-key"
	OpSetValue    OpKind = "set-value"
	OpDeleteValue OpKind = "delete-value"
)

// CondKind names a precondition of a transaction.
type CondKind string

// The preconditions (see internal/hive for what each checks).
const (
	CondKeyExists    CondKind = "key-exists"
	CondKeyMissing   CondKind = "key-missing"
	CondValueEquals  CondKind = "value-equals"
	CondValueExists  CondKind = "value-exists"
	CondValueMissing CondKind = "value-missing"
	CondChangeEquals CondKind = "change-equals"
)

// Op is one change. Key is a key path; Value is the value of a set-value;
// Name the value name of a delete-value.
type Op struct {
	Kind  OpKind `json:"op"`
	Key   string `json:"key"`
	Value *Value `json:"value,omitempty"`
	Name  string `json:"name,omitempty"`
}

// Cond is one precondition. Value is compared by value-equals; Name names
// the value of value-exists and value-missing; Change is the key's change
// number compared by change-equals.
type Cond struct {
	Kind   CondKind `json:"if"`
	Key    string   `json:"key"`
	Value  *Value   `json:"value,omitempty"`
	Name   string   `json:"name,omitempty"`
	Change uint64   `json:"change,omitempty"`
}

// Txn is an atomic transaction: when every condition holds, every operation
// is applied, in order, under one new sequence number; otherwise nothing is.
type Txn struct {
	Conds []Cond `json:"if,omitempty"`
	Ops   []Op   `json:"ops"`
	// RequestID, when set, makes the transaction idempotent: the cluster
	// applies it once however often it is sent.
	RequestID string `json:"request_id,omitempty"`
}

// CreateKey is a create-key operation.
func CreateKey(key string) Op { return Op{Kind: OpCreateKey, Key: key} }

// DeleteKey is a delete-key operation (the key and its whole subtree).
func DeleteKey(key string) Op { return Op{Kind: OpDeleteKey, Key: key} }

// SetValue is a set-value operation.
func SetValue(key string, v Value) Op { return Op{Kind: OpSetValue, Key: key, Value: &v} }

// DeleteValue is a delete-value operation.
func DeleteValue(key, name string) Op { return Op{Kind: OpDeleteValue, Key: key, Name: name} }

// Event is one change a committed transaction made.
type Event struct {
	Seq  uint64 `json:"seq"`
	Kind OpKind `json:"op"`
	Key  string `json:"key"`
	Name string `json:"name,omitempty"`
}
