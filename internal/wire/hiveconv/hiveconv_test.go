package hiveconv_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/clusterkeep/clusterkeep/internal/wire/hiveconv"
)

// The wire forms must encode exactly as the hive's types do: the server
// decodes client bodies into the hive's types and the client decodes the
// server's answers into the wire forms.

func values() []hive.Value {
	return []hive.Value{
		hive.StringValue("S", "text ü"),
		hive.StringValue("Empty", ""),
		hive.MultiStringValue("M", []string{"a", "", "c"}),
		hive.MultiStringValue("MNil", nil),
		hive.Uint32Value("U32", 1<<31),
		hive.Uint64Value("U64", 1<<63),
		hive.BinaryValue("B", []byte{0, 1, 0xff}),
		hive.BinaryValue("BNil", nil),
	}
}

func sameJSON(t *testing.T, what string, h, w any) {
	t.Helper()
	hb, err := json.Marshal(h)
	if err != nil {
		t.Fatalf("%s: marshal hive form: %v", what, err)
	}
	wb, err := json.Marshal(w)
	if err != nil {
		t.Fatalf("%s: marshal wire form: %v", what, err)
	}
	if !bytes.Equal(hb, wb) {
		t.Fatalf("%s: hive form %s, wire form %s", what, hb, wb)
	}
}

func TestValuesEncodeAlike(t *testing.T) {
	for _, v := range values() {
		w := hiveconv.Value(v)
		sameJSON(t, v.Name, v, w)
		b, _ := json.Marshal(v)
		var back wire.Value
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: wire decodes the hive's JSON: %v", v.Name, err)
		}
		sameJSON(t, v.Name+" decoded", v, back)
		var hv hive.Value
		wb, _ := json.Marshal(w)
		if err := json.Unmarshal(wb, &hv); err != nil {
			t.Fatalf("%s: hive decodes the wire's JSON: %v", v.Name, err)
		}
		if !hv.Equal(v) || !hiveconv.HiveValue(w).Equal(v) {
			t.Fatalf("%s: round trip gave %+v", v.Name, hv)
		}
	}
}

func TestTxnKeyEventsEncodeAlike(t *testing.T) {
	vs := values()
	txn := hive.Txn{RequestID: "r1",
		Conds: []hive.Cond{{Kind: hive.CondValueEquals, Key: "A", Value: &vs[0]}, {Kind: hive.CondChangeEquals, Key: "A", Change: 7},
			{Kind: hive.CondValueMissing, Key: "A", Name: "x"}},
		Ops: []hive.Op{hive.CreateKey("A/B"), hive.SetValue("A", vs[6]), hive.DeleteValue("A", "S"), hive.DeleteKey("A/B")}}
	wt := hiveconv.Txn(txn)
	sameJSON(t, "txn", txn, wt)
	if back := hiveconv.HiveTxn(wt); !reflect.DeepEqual(back, txn) {
		t.Fatalf("txn round trip: %+v, want %+v", back, txn)
	}
	sameJSON(t, "txn without conditions", hive.Txn{Ops: []hive.Op{hive.CreateKey("X")}}, wire.Txn{Ops: []wire.Op{wire.CreateKey("X")}})

	k := hive.Key{Path: "A/B", Name: "B", Change: 9, Subkeys: []string{"C"}, Values: vs}
	sameJSON(t, "key", k, hiveconv.Key(k))
	if back := hiveconv.HiveKey(hiveconv.Key(k)); !reflect.DeepEqual(back, k) {
		t.Fatalf("key round trip: %+v, want %+v", back, k)
	}
	sameJSON(t, "empty key", hive.Key{}, hiveconv.Key(hive.Key{}))

	evs := []hive.Event{{Seq: 1, Kind: hive.OpSetValue, Key: "A", Name: "S"}, {Seq: 2, Kind: hive.OpDeleteKey, Key: "A/B"}}
	sameJSON(t, "events", evs, hiveconv.Events(evs))
	sameJSON(t, "no events", []hive.Event(nil), hiveconv.Events(nil))

	// The constructors build the same operations on both sides.
	sameJSON(t, "constructors", []hive.Op{hive.SetValue("K", hive.Uint32Value("n", 3)), hive.DeleteValue("K", "n")},
		[]wire.Op{wire.SetValue("K", wire.Uint32Value("n", 3)), wire.DeleteValue("K", "n")})
}

func TestWireRefusesWhatTheHiveRefuses(t *testing.T) {
	for _, body := range []string{
		`{"name":"x","type":"uint32","data":"7"}`,
		`{"name":"x","type":"nope","data":1}`,
		`{"name":"x","type":"string"}`,
		`{"name":"x","type":"binary","data":"!!"}`,
		`[]`,
	} {
		var h hive.Value
		var w wire.Value
		herr, werr := json.Unmarshal([]byte(body), &h), json.Unmarshal([]byte(body), &w)
		if herr == nil || werr == nil {
			t.Fatalf("%s: hive error %v, wire error %v; both must refuse it", body, herr, werr)
		}
	}
}
