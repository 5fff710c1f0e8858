package hive

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openTemp(t *testing.T) *Hive {
	t.Helper()
	h, err := Open(filepath.Join(t.TempDir(), FileName), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func mustUpdate(t *testing.T, h *Hive, ops ...Op) uint64 {
	t.Helper()
	seq, err := h.Update(Txn{Ops: ops})
	if err != nil {
		t.Fatalf("update %v: %v", ops, err)
	}
	return seq
}

func allTypes() []Value {
	return []Value{
		StringValue("Name", "web \"server\"\n"),
		MultiStringValue("Hosts", []string{"a", "", "ü"}),
		Uint32Value("Port", 8080),
		Uint64Value("Big", 1<<63+5),
		BinaryValue("Blob", []byte{0, 1, 0xff}),
	}
}

func TestEveryTypeRoundTrips(t *testing.T) {
	h := openTemp(t)
	for _, v := range allTypes() {
		mustUpdate(t, h, SetValue("Resources/Web", v))
	}
	for _, want := range allTypes() {
		got, err := h.GetValue("resources/WEB", strings.ToUpper(want.Name))
		if err != nil {
			t.Fatalf("get %s: %v", want.Name, err)
		}
		if !got.Equal(want) || got.Name != want.Name {
			t.Errorf("value %s: got %+v want %+v", want.Name, got, want)
		}
	}
	k, err := h.Get("RESOURCES/web")
	if err != nil {
		t.Fatal(err)
	}
	if k.Path != "Resources/Web" || k.Name != "Web" || len(k.Values) != 5 {
		t.Fatalf("key: %+v", k)
	}
}

func TestOperationsAndChangeNumbers(t *testing.T) {
	h := openTemp(t)
	s1 := mustUpdate(t, h, CreateKey("A/B/C"))
	if s1 != 1 {
		t.Fatalf("first seq %d", s1)
	}
	for _, p := range []string{"A", "A/B", "A/B/C"} {
		k, err := h.Get(p)
		if err != nil || k.Change != 1 {
			t.Fatalf("key %s: %+v %v", p, k, err)
		}
	}
	s2 := mustUpdate(t, h, SetValue("a/b", Uint32Value("X", 1)))
	b, _ := h.Get("A/B")
	c, _ := h.Get("A/B/C")
	if b.Change != s2 || c.Change != s1 {
		t.Fatalf("changes: B %d (want %d), C %d (want %d)", b.Change, s2, c.Change, s1)
	}
	// Subkeys are enumerated with their case preserved, sorted case-insensitively.
	mustUpdate(t, h, CreateKey("A/b/a"), CreateKey("A/B/Zed"))
	b, _ = h.Get("a/b")
	if got := strings.Join(b.Subkeys, ","); got != "a,C,Zed" {
		t.Fatalf("subkeys %q", got)
	}
	// Creating an existing key under another case keeps the first case.
	mustUpdate(t, h, CreateKey("a/B/c"))
	c, _ = h.Get("a/b/c")
	if c.Path != "A/B/C" {
		t.Fatalf("case not preserved: %q", c.Path)
	}
	mustUpdate(t, h, DeleteValue("A/B", "x"))
	if _, err := h.GetValue("A/B", "X"); !errors.Is(err, ErrValueNotFound) {
		t.Fatalf("deleted value: %v", err)
	}
	s := mustUpdate(t, h, DeleteKey("a/B"))
	if _, err := h.Get("A/B/C"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("subtree not deleted: %v", err)
	}
	a, _ := h.Get("A")
	if a.Change != s || len(a.Subkeys) != 0 {
		t.Fatalf("parent after delete: %+v", a)
	}
	if h.Seq() != s {
		t.Fatalf("seq %d want %d", h.Seq(), s)
	}
}

func TestPreconditionsChangeNothingWhenFailing(t *testing.T) {
	h := openTemp(t)
	seq := mustUpdate(t, h, SetValue("K", Uint32Value("V", 1)))
	var before bytes.Buffer
	if err := h.Export(&before, ""); err != nil {
		t.Fatal(err)
	}
	failing := []Cond{
		{Kind: CondKeyExists, Key: "Nope"},
		{Kind: CondKeyMissing, Key: "k"},
		{Kind: CondValueEquals, Key: "K", Value: &Value{Name: "v", Type: TypeUint32, Uint32: 2}},
		{Kind: CondValueEquals, Key: "K", Value: &Value{Name: "v", Type: TypeUint64, Uint64: 1}},
		{Kind: CondValueExists, Key: "K", Name: "W"},
		{Kind: CondValueMissing, Key: "K", Name: "V"},
		{Kind: CondChangeEquals, Key: "K", Change: seq + 1},
	}
	for _, c := range failing {
		_, err := h.Update(Txn{Conds: []Cond{c}, Ops: []Op{SetValue("K", Uint32Value("V", 99)), CreateKey("Other")}})
		if !errors.Is(err, ErrPreconditionFailed) {
			t.Errorf("%s: got %v, want precondition failure", c.Kind, err)
		}
	}
	var after bytes.Buffer
	h.Export(&after, "")
	if before.String() != after.String() || h.Seq() != seq {
		t.Fatalf("failed transactions changed the hive:\n%s\n---\n%s", before.String(), after.String())
	}
	// The same conditions, true this time, let the transaction through.
	ok := []Cond{
		{Kind: CondKeyExists, Key: "k"},
		{Kind: CondKeyMissing, Key: "Nope"},
		{Kind: CondValueEquals, Key: "K", Value: &Value{Name: "v", Type: TypeUint32, Uint32: 1}},
		{Kind: CondValueExists, Key: "K", Name: "v"},
		{Kind: CondValueMissing, Key: "K", Name: "W"},
		{Kind: CondChangeEquals, Key: "K", Change: seq},
	}
	if _, err := h.Update(Txn{Conds: ok, Ops: []Op{SetValue("K", Uint32Value("V", 2))}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := h.GetValue("K", "V"); v.Uint32 != 2 {
		t.Fatalf("got %d", v.Uint32)
	}
}

// TestTheLongestPathIsStored: a path at the limit, of letters that folding
// lengthens (Ⱥ, two bytes, folds to ⱥ, three), fits the key index.
func TestTheLongestPathIsStored(t *testing.T) {
	h := openTemp(t)
	name := strings.Repeat("\u023a", MaxNameLength)
	var p []string
	for len(strings.Join(append(p, name), Separator)) <= MaxPathLength {
		p = append(p, name)
	}
	path := strings.Join(p, Separator)
	mustUpdate(t, h, SetValue(path, StringValue("v", "x")))
	k, err := h.Get(path)
	if err != nil || k.Path != path || len(k.Values) != 1 {
		t.Fatalf("the longest path read back: %q, %v", k.Path, err)
	}
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	h := openTemp(t)
	mustUpdate(t, h, CreateKey("Keep"))
	long := strings.Repeat("x", MaxNameLength+1)
	deep := strings.TrimSuffix(strings.Repeat("a/", MaxDepth+1), "/")
	cases := []struct {
		name string
		txn  Txn
		want error
	}{
		{"empty txn", Txn{}, ErrInvalidTxn},
		{"empty name", Txn{Ops: []Op{CreateKey("a//b")}}, ErrInvalidPath},
		{"trailing slash", Txn{Ops: []Op{CreateKey("a/")}}, ErrInvalidPath},
		{"dot dot", Txn{Ops: []Op{CreateKey("a/../b")}}, ErrInvalidPath},
		{"control char", Txn{Ops: []Op{CreateKey("a\x01")}}, ErrInvalidPath},
		{"bad utf8", Txn{Ops: []Op{CreateKey("a\xff")}}, ErrInvalidPath},
		{"long key name", Txn{Ops: []Op{CreateKey(long)}}, ErrInvalidName},
		{"too deep", Txn{Ops: []Op{CreateKey(deep)}}, ErrInvalidPath},
		{"long path", Txn{Ops: []Op{CreateKey(strings.TrimSuffix(strings.Repeat(strings.Repeat("x", 200)+"/", MaxPathLength/200+1), "/"))}}, ErrInvalidPath},
		{"long value name", Txn{Ops: []Op{SetValue("a", StringValue(long, "x"))}}, ErrInvalidName},
		{"empty value name", Txn{Ops: []Op{SetValue("a", StringValue("", "x"))}}, ErrInvalidName},
		{"bad type", Txn{Ops: []Op{SetValue("a", Value{Name: "x", Type: "float"})}}, ErrInvalidType},
		{"too large", Txn{Ops: []Op{SetValue("a", BinaryValue("x", make([]byte, MaxValueSize+1)))}}, ErrValueTooLarge},
		{"bad utf8 string", Txn{Ops: []Op{SetValue("a", StringValue("x", "\xff"))}}, ErrInvalidValue},
		{"delete root", Txn{Ops: []Op{DeleteKey("")}}, ErrInvalidTxn},
		{"unknown op", Txn{Ops: []Op{{Kind: "rename", Key: "a"}}}, ErrInvalidTxn},
		{"set without value", Txn{Ops: []Op{{Kind: OpSetValue, Key: "a"}}}, ErrInvalidTxn},
		{"reserved", Txn{Ops: []Op{CreateKey("cluster/nodes")}}, ErrReserved},
		{"bad op after good", Txn{Ops: []Op{CreateKey("fine"), CreateKey("bad//")}}, ErrInvalidPath},
		{"unknown condition", Txn{Conds: []Cond{{Kind: "maybe", Key: "a"}}, Ops: []Op{CreateKey("a")}}, ErrInvalidTxn},
	}
	seq := h.Seq()
	for _, c := range cases {
		_, err := h.Update(c.txn)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	k, _ := h.Get("")
	if h.Seq() != seq || len(k.Subkeys) != 1 {
		t.Fatalf("bad input changed the hive: seq %d->%d, root %+v", seq, h.Seq(), k)
	}
	// The system may write the reserved subtree.
	res, err := h.Apply([]Entry{{Txn: Txn{Ops: []Op{CreateKey("Cluster/Nodes")}}, System: true}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("system write: %v %v", err, res[0].Err)
	}
	if _, err := h.Get("nope"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := ParseType("float"); !errors.Is(err, ErrInvalidType) {
		t.Fatalf("parse type: %v", err)
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	h := openTemp(t)
	for _, v := range allTypes() {
		mustUpdate(t, h, SetValue("Resources/Web", v))
	}
	mustUpdate(t, h, SetValue("Resources/Db/Empty Key/x y", MultiStringValue("Empty", []string{})),
		CreateKey("Resources/Db/Quote\"Key"), SetValue("Resources", BinaryValue("nil", nil)))
	var first bytes.Buffer
	if err := h.Export(&first, "Resources"); err != nil {
		t.Fatal(err)
	}
	ops, err := ParseExport(bytes.NewReader(first.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	h2 := openTemp(t)
	mustUpdate(t, h2, ops...)
	var second bytes.Buffer
	if err := h2.Export(&second, "resources"); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Fatalf("round trip differs:\n%s\n---\n%s", first.String(), second.String())
	}
	for _, v := range allTypes() {
		got, _ := h2.GetValue("Resources/Web", v.Name)
		if !got.Equal(v) {
			t.Errorf("%s: %+v", v.Name, got)
		}
	}
}

func TestParseExportRejectsMalformed(t *testing.T) {
	for name, text := range map[string]string{
		"no header":       "key \"a\"\n",
		"value first":     exportHeader + "\nvalue \"x\" uint32 1\n",
		"bad type":        exportHeader + "\nkey \"a\"\nvalue \"x\" float 1\n",
		"bad number":      exportHeader + "\nkey \"a\"\nvalue \"x\" uint32 99999999999\n",
		"bad hex":         exportHeader + "\nkey \"a\"\nvalue \"x\" binary zz\n",
		"unquoted string": exportHeader + "\nkey \"a\"\nvalue \"x\" string hello\n",
		"bad path":        exportHeader + "\nkey \"a//b\"\n",
		"unknown line":    exportHeader + "\nfoo\n",
		"empty":           "",
	} {
		if _, err := ParseExport(strings.NewReader(text)); !errors.Is(err, ErrBadExport) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestReplayedIndexesAreSkipped(t *testing.T) {
	h := openTemp(t)
	entries := []Entry{{Index: 5, Txn: Txn{Ops: []Op{SetValue("a", Uint32Value("n", 1))}}}}
	if _, err := h.Apply(entries); err != nil {
		t.Fatal(err)
	}
	res, err := h.Apply(entries)
	if err != nil || !res[0].Skipped {
		t.Fatalf("replay not skipped: %+v %v", res, err)
	}
	// A failing entry still counts as applied.
	bad := []Entry{{Index: 6, Txn: Txn{Conds: []Cond{{Kind: CondKeyExists, Key: "zz"}}, Ops: []Op{CreateKey("zz")}}}}
	h.Apply(bad)
	if h.Applied() != 6 || h.Seq() != 1 {
		t.Fatalf("applied %d seq %d", h.Applied(), h.Seq())
	}
}

func TestSnapshotIsOneSequenceNumberWhileWritesContinue(t *testing.T) {
	h := openTemp(t)
	mustUpdate(t, h, SetValue("a", Uint64Value("n", 1)))
	snap, err := h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	seqAt := snap.Reader().Seq()
	for i := range 50 {
		mustUpdate(t, h, SetValue("a", Uint64Value("n", uint64(i+2))))
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Close()
	h2 := openTemp(t)
	if err := h2.Replace(&buf); err != nil {
		t.Fatal(err)
	}
	if v, _ := h2.GetValue("a", "n"); v.Uint64 != 1 || h2.Seq() != seqAt {
		t.Fatalf("snapshot holds n=%d seq=%d, want 1 at %d", v.Uint64, h2.Seq(), seqAt)
	}
	if err := h2.Check(); err != nil {
		t.Fatal(err)
	}
	// A corrupt replacement is refused and the hive is unchanged.
	if err := h2.Replace(strings.NewReader("not a database")); err == nil {
		t.Fatal("corrupt replacement accepted")
	}
	if v, _ := h2.GetValue("a", "n"); v.Uint64 != 1 {
		t.Fatal("hive changed by refused replace")
	}
}

func TestOpenReadOnlyRefusesWhileInUse(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, FileName)
	h, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Update(Txn{Ops: []Op{CreateKey("x")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(p); !errors.Is(err, ErrInUse) {
		t.Fatalf("got %v, want ErrInUse", err)
	}
	h.Close()
	ro, err := OpenReadOnly(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Get("X"); err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Update(Txn{Ops: []Op{CreateKey("y")}}); err == nil {
		t.Fatal("read-only hive accepted a write")
	}
}

func TestWatch(t *testing.T) {
	h := openTemp(t)
	start := mustUpdate(t, h, CreateKey("Other"))
	got := make(chan []Event, 1)
	go func() {
		ev, _, err := h.Watch(context.Background(), "Apps/Web", start)
		if err != nil {
			t.Error(err)
		}
		got <- ev
	}()
	mustUpdate(t, h, SetValue("Other", Uint32Value("x", 1)))
	seq := mustUpdate(t, h, SetValue("Apps/Web/Conf", Uint32Value("Port", 1)))
	select {
	case ev := <-got:
		if len(ev) == 0 || ev[len(ev)-1].Seq != seq {
			t.Fatalf("events %+v", ev)
		}
		for _, e := range ev {
			if !MustPath("Apps/Web").Related(MustPath(e.Key)) {
				t.Fatalf("unrelated event %+v", e)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not return")
	}
	// A deleted ancestor concerns the watcher too.
	after := h.Seq()
	mustUpdate(t, h, DeleteKey("Apps"))
	ev, _, err := h.Watch(context.Background(), "apps/web/conf", after)
	if err != nil || len(ev) != 1 || ev[0].Kind != OpDeleteKey {
		t.Fatalf("delete event %+v %v", ev, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, seen, err := h.Watch(ctx, "apps", h.Seq()); !errors.Is(err, context.DeadlineExceeded) || seen != h.Seq() {
		t.Fatalf("idle watch: %v", err)
	}
	// A reopened hive has no history before its open: watchers re-read.
	p := h.Path()
	h.Close()
	h3, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h3.Close()
	if _, _, err := h3.Watch(context.Background(), "", 1); !errors.Is(err, ErrCompacted) {
		t.Fatalf("watch after reopen: %v", err)
	}
}

func TestValueJSON(t *testing.T) {
	for _, v := range allTypes() {
		b, err := v.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back Value
		if err := back.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
		if !back.Equal(v) {
			t.Errorf("%s: %s -> %+v", v.Name, b, back)
		}
	}
	var v Value
	for _, bad := range []string{`{"name":"x","type":"uint32","data":"1"}`, `{"name":"x","type":"float","data":1}`, `{"name":"x","type":"string"}`, `{"name":"x","type":"uint32","data":-1}`} {
		if err := v.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestRequestIDMakesTransactionsIdempotent(t *testing.T) {
	h := openTemp(t)
	inc := Txn{RequestID: "req-1", Ops: []Op{SetValue("k", Uint32Value("v", 1))}}
	res, err := h.Apply([]Entry{{Index: 1, Txn: inc}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	first := res[0].Seq
	// The same request again (a client's retry) is answered, not applied.
	res, _ = h.Apply([]Entry{{Index: 2, Txn: inc}})
	if res[0].Seq != first || h.Seq() != first {
		t.Fatalf("retry applied again: seq %d, hive %d", res[0].Seq, h.Seq())
	}
	// A failed conditional request stays failed on retry, even once its
	// condition would hold.
	cas := Txn{RequestID: "req-2", Conds: []Cond{{Kind: CondKeyExists, Key: "later"}}, Ops: []Op{CreateKey("x")}}
	res, _ = h.Apply([]Entry{{Index: 3, Txn: cas}})
	if !errors.Is(res[0].Err, ErrPreconditionFailed) {
		t.Fatal(res[0].Err)
	}
	mustUpdate(t, h, CreateKey("later"))
	res, _ = h.Apply([]Entry{{Index: 5, Txn: cas}})
	if !errors.Is(res[0].Err, ErrPreconditionFailed) {
		t.Fatalf("retried failed request: %+v", res[0])
	}
	// Ids are forgotten after RequestMemory entries, the same way everywhere.
	h.Apply([]Entry{{Index: RequestMemory + 10, Mark: true}})
	res, _ = h.Apply([]Entry{{Index: RequestMemory + 11, Txn: inc}})
	if res[0].Seq == first {
		t.Fatal("request id never forgotten")
	}
}

func TestDeletedSubtreeTakesItsValuesAndNoNeighbours(t *testing.T) {
	h := openTemp(t)
	mustUpdate(t, h, SetValue("A/B", Uint32Value("x", 1)), SetValue("A/B/C", Uint32Value("y", 2)),
		SetValue("A/BC", Uint32Value("z", 3)), SetValue("A", Uint32Value("w", 4)))
	mustUpdate(t, h, DeleteKey("a/b"))
	mustUpdate(t, h, CreateKey("A/B/C"))
	for _, p := range []string{"A/B", "A/B/C"} {
		if k, _ := h.Get(p); len(k.Values) != 0 {
			t.Fatalf("%s came back with values %+v", p, k.Values)
		}
	}
	if v, err := h.GetValue("A/BC", "z"); err != nil || v.Uint32 != 3 {
		t.Fatalf("neighbour lost its value: %v", err)
	}
	if v, err := h.GetValue("A", "w"); err != nil || v.Uint32 != 4 {
		t.Fatalf("parent lost its value: %v", err)
	}
	if err := h.Check(); err != nil {
		t.Fatal(err)
	}
}
