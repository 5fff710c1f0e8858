// Package hiveconv converts between the hive's values, keys, transactions
// and events and their wire forms (internal/wire), for the server and the
// offline tools, which hold both. A client never imports it: it would link
// the database.
package hiveconv

import (
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// Value is v's wire form.
func Value(v hive.Value) wire.Value {
	return wire.Value{Name: v.Name, Type: wire.Type(v.Type), String: v.String, Strings: v.Strings,
		Uint32: v.Uint32, Uint64: v.Uint64, Binary: v.Binary}
}

// HiveValue is the hive's form of a wire value.
func HiveValue(v wire.Value) hive.Value {
	return hive.Value{Name: v.Name, Type: hive.Type(v.Type), String: v.String, Strings: v.Strings,
		Uint32: v.Uint32, Uint64: v.Uint64, Binary: v.Binary}
}

func valuePtr(v *hive.Value) *wire.Value {
	if v == nil {
		return nil
	}
	w := Value(*v)
	return &w
}

func hiveValuePtr(v *wire.Value) *hive.Value {
	if v == nil {
		return nil
	}
	h := HiveValue(*v)
	return &h
}

// Key is k's wire form.
func Key(k hive.Key) wire.Key {
	out := wire.Key{Path: k.Path, Name: k.Name, Change: k.Change, Subkeys: k.Subkeys}
	if k.Values != nil {
		out.Values = make([]wire.Value, len(k.Values))
		for i, v := range k.Values {
			out.Values[i] = Value(v)
		}
	}
	return out
}

// HiveKey is the hive's form of a wire key.
func HiveKey(k wire.Key) hive.Key {
	out := hive.Key{Path: k.Path, Name: k.Name, Change: k.Change, Subkeys: k.Subkeys}
	if k.Values != nil {
		out.Values = make([]hive.Value, len(k.Values))
		for i, v := range k.Values {
			out.Values[i] = HiveValue(v)
		}
	}
	return out
}

// Op is op's wire form.
func Op(op hive.Op) wire.Op {
	return wire.Op{Kind: wire.OpKind(op.Kind), Key: op.Key, Value: valuePtr(op.Value), Name: op.Name}
}

// Txn is t's wire form.
func Txn(t hive.Txn) wire.Txn {
	out := wire.Txn{RequestID: t.RequestID}
	if t.Conds != nil {
		out.Conds = make([]wire.Cond, len(t.Conds))
		for i, c := range t.Conds {
			out.Conds[i] = wire.Cond{Kind: wire.CondKind(c.Kind), Key: c.Key, Value: valuePtr(c.Value), Name: c.Name, Change: c.Change}
		}
	}
	if t.Ops != nil {
		out.Ops = make([]wire.Op, len(t.Ops))
		for i, op := range t.Ops {
			out.Ops[i] = Op(op)
		}
	}
	return out
}

// HiveTxn is the hive's form of a wire transaction.
func HiveTxn(t wire.Txn) hive.Txn {
	out := hive.Txn{RequestID: t.RequestID}
	if t.Conds != nil {
		out.Conds = make([]hive.Cond, len(t.Conds))
		for i, c := range t.Conds {
			out.Conds[i] = hive.Cond{Kind: hive.CondKind(c.Kind), Key: c.Key, Value: hiveValuePtr(c.Value), Name: c.Name, Change: c.Change}
		}
	}
	if t.Ops != nil {
		out.Ops = make([]hive.Op, len(t.Ops))
		for i, op := range t.Ops {
			out.Ops[i] = hive.Op{Kind: hive.OpKind(op.Kind), Key: op.Key, Value: hiveValuePtr(op.Value), Name: op.Name}
		}
	}
	return out
}

// Events are evs' wire forms.
func Events(evs []hive.Event) []wire.Event {
	if evs == nil {
		return nil
	}
	out := make([]wire.Event, len(evs))
	for i, e := range evs {
		out[i] = wire.Event{Seq: e.Seq, Kind: wire.OpKind(e.Kind), Key: e.Key, Name: e.Name}
	}
	return out
}
