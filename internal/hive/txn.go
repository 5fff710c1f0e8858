package hive

import (
	"fmt"
)

// OpKind names an operation of a transaction.
type OpKind string

// The operations. They cannot fail once a transaction's conditions hold:
// set-value creates missing keys (as create-key does, with every missing
// ancestor), and deleting what is not there changes nothing. Callers that
// need the key or value to be there say so with a condition.
const (
	OpCreateKey   OpKind = "create-key"
	OpDeleteKey   OpKind = "delete-key"
	OpSetValue    OpKind = "set-value"
	OpDeleteValue OpKind = "delete-value"
)

// CondKind names a precondition of a transaction.
type CondKind string

// The preconditions. All are checked against the state before the
// transaction; if any fails, nothing changes and ErrPreconditionFailed is
// returned naming it.
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
	// RequestID, when set, makes the transaction idempotent: a second
	// transaction with the same id (a client's retry after an unknown
	// outcome) is not applied again but answered with the first one's
	// result, for as long as the id is remembered (RequestMemory entries).
	RequestID string `json:"request_id,omitempty"`
}

// Convenience constructors for the common single operations.

// CreateKey is a create-key operation.
func CreateKey(key string) Op { return Op{Kind: OpCreateKey, Key: key} }

// DeleteKey is a delete-key operation (the key and its whole subtree).
func DeleteKey(key string) Op { return Op{Kind: OpDeleteKey, Key: key} }

// SetValue is a set-value operation.
func SetValue(key string, v Value) Op { return Op{Kind: OpSetValue, Key: key, Value: &v} }

// DeleteValue is a delete-value operation.
func DeleteValue(key, name string) Op { return Op{Kind: OpDeleteValue, Key: key, Name: name} }

// compiled forms, with parsed paths, made by Validate.
type cop struct {
	Op
	path Path
}

type ccond struct {
	Cond
	path Path
}

type compiled struct {
	conds []ccond
	ops   []cop
}

// Validate checks a transaction without applying it: paths, names, types,
// sizes, kinds and limits. allowReserved lets the cluster service itself
// change the reserved subtree; clients may not.
func (t Txn) Validate(allowReserved bool) error {
	_, err := t.compile(allowReserved)
	return err
}

func (t Txn) compile(allowReserved bool) (*compiled, error) {
	if len(t.Ops) == 0 && len(t.Conds) == 0 {
		return nil, fmt.Errorf("%w: no operations", ErrInvalidTxn)
	}
	if len(t.RequestID) > 128 {
		return nil, fmt.Errorf("%w: request id longer than 128 bytes", ErrInvalidTxn)
	}
	if n := len(t.Ops) + len(t.Conds); n > MaxTxnOps {
		return nil, fmt.Errorf("%w: %d operations and conditions, limit %d", ErrInvalidTxn, n, MaxTxnOps)
	}
	c := &compiled{}
	size := 0
	for i, cd := range t.Conds {
		p, err := ParsePath(cd.Key)
		if err != nil {
			return nil, fmt.Errorf("condition %d (%s): %w", i, cd.Kind, err)
		}
		switch cd.Kind {
		case CondKeyExists, CondKeyMissing, CondChangeEquals:
		case CondValueEquals:
			if cd.Value == nil {
				return nil, fmt.Errorf("condition %d (%s %q): %w: no value given", i, cd.Kind, cd.Key, ErrInvalidTxn)
			}
			if err := cd.Value.Validate(); err != nil {
				return nil, fmt.Errorf("condition %d (%s %q): %w", i, cd.Kind, cd.Key, err)
			}
			size += cd.Value.Size()
		case CondValueExists, CondValueMissing:
			if err := validateName("value name", cd.Name); err != nil {
				return nil, fmt.Errorf("condition %d (%s %q): %w", i, cd.Kind, cd.Key, err)
			}
		default:
			return nil, fmt.Errorf("condition %d: %w: unknown condition %q", i, ErrInvalidTxn, cd.Kind)
		}
		if cd.Kind == CondKeyMissing && p.IsRoot() {
			return nil, fmt.Errorf("condition %d: %w: the root key always exists", i, ErrInvalidTxn)
		}
		c.conds = append(c.conds, ccond{cd, p})
	}
	for i, op := range t.Ops {
		p, err := ParsePath(op.Key)
		if err != nil {
			return nil, fmt.Errorf("operation %d (%s): %w", i, op.Kind, err)
		}
		if p.Reserved() && !allowReserved {
			return nil, fmt.Errorf("operation %d (%s %q): %w: %q is kept by the cluster service and read-only to clients", i, op.Kind, op.Key, ErrReserved, ReservedKey)
		}
		switch op.Kind {
		case OpCreateKey:
		case OpDeleteKey:
			if p.IsRoot() {
				return nil, fmt.Errorf("operation %d (%s): %w: the root key cannot be deleted", i, op.Kind, ErrInvalidTxn)
			}
		case OpSetValue:
			if op.Value == nil {
				return nil, fmt.Errorf("operation %d (%s %q): %w: no value given", i, op.Kind, op.Key, ErrInvalidTxn)
			}
			if err := op.Value.Validate(); err != nil {
				return nil, fmt.Errorf("operation %d (%s %q): %w", i, op.Kind, op.Key, err)
			}
			size += op.Value.Size()
		case OpDeleteValue:
			if err := validateName("value name", op.Name); err != nil {
				return nil, fmt.Errorf("operation %d (%s %q): %w", i, op.Kind, op.Key, err)
			}
		default:
			return nil, fmt.Errorf("operation %d: %w: unknown operation %q", i, ErrInvalidTxn, op.Kind)
		}
		c.ops = append(c.ops, cop{op, p})
	}
	if size > MaxTxnBytes {
		return nil, fmt.Errorf("%w: %d bytes of values, limit %d", ErrInvalidTxn, size, MaxTxnBytes)
	}
	return c, nil
}
