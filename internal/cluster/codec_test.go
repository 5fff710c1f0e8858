package cluster

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/hive"
)

func randString(r *rand.Rand, max int) string {
	const alphabet = "abcXYZ/ü\x00\xff"
	n := r.IntN(max + 1)
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func randValue(r *rand.Rand) *hive.Value {
	name := randString(r, 6)
	var v hive.Value
	switch r.IntN(5) {
	case 0:
		v = hive.StringValue(name, randString(r, 300))
	case 1:
		var ss []string
		for range r.IntN(4) {
			ss = append(ss, randString(r, 5))
		}
		v = hive.MultiStringValue(name, ss)
	case 2:
		v = hive.Uint32Value(name, r.Uint32())
	case 3:
		v = hive.Uint64Value(name, r.Uint64())
	default:
		b := make([]byte, r.IntN(2000))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		v = hive.BinaryValue(name, b)
	}
	return &v
}

// randCommand makes any command the codec must carry, valid or not: the
// log holds what the leader proposed, and validation happens at apply.
func randCommand(r *rand.Rand) command {
	if r.IntN(10) == 0 {
		return command{Noop: true}
	}
	c := command{System: r.IntN(2) == 0, Txn: hive.Txn{RequestID: randString(r, 40)}}
	condKinds := []hive.CondKind{hive.CondKeyExists, hive.CondKeyMissing, hive.CondValueEquals, hive.CondValueExists, hive.CondValueMissing, hive.CondChangeEquals}
	for range r.IntN(4) {
		cd := hive.Cond{Kind: condKinds[r.IntN(len(condKinds))], Key: randString(r, 20)}
		if r.IntN(2) == 0 {
			cd.Value = randValue(r)
		}
		if r.IntN(2) == 0 {
			cd.Name = randString(r, 8)
		}
		if r.IntN(2) == 0 {
			cd.Change = r.Uint64() >> r.IntN(64)
		}
		c.Txn.Conds = append(c.Txn.Conds, cd)
	}
	opKinds := []hive.OpKind{hive.OpCreateKey, hive.OpDeleteKey, hive.OpSetValue, hive.OpDeleteValue}
	for range r.IntN(6) {
		op := hive.Op{Kind: opKinds[r.IntN(len(opKinds))], Key: randString(r, 20)}
		if r.IntN(2) == 0 {
			op.Value = randValue(r)
		}
		if r.IntN(3) == 0 {
			op.Name = randString(r, 8)
		}
		c.Txn.Ops = append(c.Txn.Ops, op)
	}
	return c
}

// normalize makes empty and nil slices alike: neither form tells them apart.
func normalize(c command) command {
	norm := func(v *hive.Value) *hive.Value {
		if v == nil {
			return nil
		}
		n := *v
		if len(n.Strings) == 0 {
			n.Strings = nil
		}
		if len(n.Binary) == 0 {
			n.Binary = nil
		}
		return &n
	}
	out := c
	out.Txn.Conds, out.Txn.Ops = nil, nil
	for _, cd := range c.Txn.Conds {
		cd.Value = norm(cd.Value)
		out.Txn.Conds = append(out.Txn.Conds, cd)
	}
	for _, op := range c.Txn.Ops {
		op.Value = norm(op.Value)
		out.Txn.Ops = append(out.Txn.Ops, op)
	}
	return out
}

func TestCommandRoundTrips(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		c := randCommand(r)
		b, err := encodeCommand(c)
		if err != nil {
			t.Fatalf("case %d: encode %+v: %v", i, c, err)
		}
		if b[0] == '{' {
			t.Fatalf("case %d: binary form starts like JSON", i)
		}
		got, err := decodeCommand(b)
		if err != nil {
			t.Fatalf("case %d: decode: %v", i, err)
		}
		if want := normalize(c); !reflect.DeepEqual(normalize(got), want) {
			t.Fatalf("case %d: round trip changed the command:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

// A log written by the previous version holds JSON commands; they still apply.
func TestCommandDecodesEarlierJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		c := randCommand(r)
		for j := range c.Txn.Ops {
			// JSON carries valid UTF-8 only; the earlier version validated.
			c.Txn.Ops[j].Key = strings.ToValidUTF8(c.Txn.Ops[j].Key, "?")
			c.Txn.Ops[j].Name = strings.ToValidUTF8(c.Txn.Ops[j].Name, "?")
			if v := c.Txn.Ops[j].Value; v != nil {
				v.Name = strings.ToValidUTF8(v.Name, "?")
				v.String = strings.ToValidUTF8(v.String, "?")
				for k := range v.Strings {
					v.Strings[k] = strings.ToValidUTF8(v.Strings[k], "?")
				}
			}
		}
		c.Txn.Conds = nil
		c.Txn.RequestID = strings.ToValidUTF8(c.Txn.RequestID, "?")
		old, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeCommand(old)
		if err != nil {
			t.Fatalf("case %d: decode %s: %v", i, old, err)
		}
		if want := normalize(c); !reflect.DeepEqual(normalize(got), want) {
			t.Fatalf("case %d: JSON decoded differently:\n got %+v\nwant %+v", i, got, want)
		}
	}
	// A literal entry as the previous version wrote it.
	got, err := decodeCommand([]byte(`{"system":true,"txn":{"ops":[{"op":"set-value","key":"A/B","value":{"name":"x","type":"uint32","data":7}}],"request_id":"r1"}}`))
	want := command{System: true, Txn: hive.Txn{RequestID: "r1", Ops: []hive.Op{hive.SetValue("A/B", hive.Uint32Value("x", 7))}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

func TestCommandRefusesMalformed(t *testing.T) {
	good, err := encodeCommand(command{Txn: hive.Txn{Ops: []hive.Op{hive.SetValue("a", hive.StringValue("v", "x"))}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"version only":   {commandV1},
		"future version": {2, 0},
		"unknown flag":   {commandV1, 0x80},
		"noop payload":   {commandV1, flagNoop, 0},
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte{}, good...), 0),
		"bad JSON":       []byte(`{"txn":`),
		"huge count":     {commandV1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		if _, err := decodeCommand(b); !errors.Is(err, errBadCommand) {
			t.Errorf("%s: got %v, want errBadCommand", name, err)
		}
	}
	if _, err := encodeCommand(command{Txn: hive.Txn{Ops: []hive.Op{{Kind: "rename", Key: "a"}}}}); !errors.Is(err, hive.ErrInvalidTxn) {
		t.Errorf("unknown operation: got %v, want ErrInvalidTxn", err)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		b, _ := encodeCommand(randCommand(r))
		f.Add(b)
	}
	f.Add([]byte(`{"txn":{"ops":[{"op":"create-key","key":"a"}]}}`))
	f.Add([]byte{commandV1, flagNoop})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCommand(b)
		if err != nil {
			if !errors.Is(err, errBadCommand) {
				t.Fatalf("error does not wrap errBadCommand: %v", err)
			}
			return
		}
		// What decodes encodes again and decodes to the same command.
		again, err := encodeCommand(c)
		if err != nil {
			// JSON may name kinds the binary form has no code for; they
			// fail at apply, as they did.
			if b[0] == '{' && (errors.Is(err, hive.ErrInvalidTxn) || errors.Is(err, hive.ErrInvalidType)) {
				return
			}
			t.Fatalf("re-encode %+v: %v", c, err)
		}
		back, err := decodeCommand(again)
		if err != nil || !reflect.DeepEqual(normalize(back), normalize(c)) {
			t.Fatalf("re-decode: %+v %v, want %+v", back, err, c)
		}
	})
}
