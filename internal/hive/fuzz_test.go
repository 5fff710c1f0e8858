package hive

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"", "/", "a/b", "A//b", "a/../b", "a\x00b", strings.Repeat("x/", 70), "Ünïcode/名前"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		// A valid path parses back to itself.
		q, err := ParsePath(p.String())
		if err != nil || q.String() != p.String() {
			t.Fatalf("%q -> %q -> %q (%v)", s, p.String(), q.String(), err)
		}
	})
}

func FuzzValueJSON(f *testing.F) {
	for _, v := range allTypes() {
		b, _ := json.Marshal(v)
		f.Add(b)
	}
	f.Add([]byte(`{"name":"x","type":"uint32","data":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Value
		if json.Unmarshal(b, &v) != nil || v.Validate() != nil {
			return
		}
		// What validates survives storage and JSON unchanged.
		back, err := decodeValue(v.encode())
		if err != nil || !back.Equal(v) {
			t.Fatalf("stored form of %+v: %+v %v", v, back, err)
		}
		j, _ := json.Marshal(v)
		var again Value
		if err := json.Unmarshal(j, &again); err != nil || !again.Equal(v) {
			t.Fatalf("JSON of %+v: %s %v", v, j, err)
		}
	})
}

func FuzzParseExport(f *testing.F) {
	f.Add([]byte(exportHeader + "\nkey \"A\"\nvalue \"x\" uint32 1\nvalue \"s\" string \"a\\nb\"\nvalue \"m\" multi-string [\"a\",\"\"]\nvalue \"b\" binary 00ff\n"))
	f.Add([]byte(exportHeader + "\nvalue \"x\" uint32 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := ParseExport(bytes.NewReader(b))
		if err != nil {
			return
		}
		// What parses applies, and exports back to a text that parses to
		// the same operations.
		h, err := Open(filepath.Join(t.TempDir(), FileName), Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if len(ops) == 0 {
			return
		}
		if _, err := h.Update(Txn{Ops: ops}); err != nil {
			if strings.Contains(err.Error(), "reserved") || strings.Contains(err.Error(), "limit") {
				return
			}
			t.Fatalf("parsed operations do not apply: %v", err)
		}
		var out bytes.Buffer
		if err := h.Export(&out, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseExport(&out); err != nil {
			t.Fatalf("export does not parse: %v\n%s", err, out.String())
		}
	})
}
