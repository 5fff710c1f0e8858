package api

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// Every request body the API decodes besides transactions: whatever a
// client sends, the server decodes it or reports it as the caller's fault
// (400, never a 500 or a panic), and what it decodes survives being sent
// again unchanged.
func FuzzRequestBodies(f *testing.F) {
	f.Add(uint8(0), []byte(`{"id":"n1","name":"node1","api_addr":"127.0.0.1:1","raft_addr":"127.0.0.1:2"}`))
	f.Add(uint8(1), []byte(`{"writer_id":"41e12264-35d8-479b-8e5c-9b23d1dad37e","logical_path":"","name":"db","selected":true,"authoritative":true}`))
	f.Add(uint8(1), []byte(`{"all":true}`))
	f.Add(uint8(2), []byte(`{"backup_id":"b","backup_type":"full","components":[{"writer_id":"w","name":"c","files":["x"]}]}`))
	f.Add(uint8(3), []byte(`{"type":"copy"}`))
	f.Add(uint8(3), []byte(`{"type":"full"} {}`))
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		var v any
		switch kind % 4 {
		case 0:
			v = &wire.Member{}
		case 1:
			v = &wire.ComponentRequest{}
		case 2:
			v = &shadow.BackupComponents{}
		default:
			v = &struct {
				Type shadow.BackupType `json:"type"`
			}{}
		}
		r := httptest.NewRequest("POST", "/v1/x", bytes.NewReader(body))
		if err := decodeBody(r, v); err != nil {
			if !isInvalid(err) {
				t.Fatalf("a bad body is not reported as invalid: %v", err)
			}
			return
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("decoded body does not encode: %v", err)
		}
		r = httptest.NewRequest("POST", "/v1/x", bytes.NewReader(again))
		w := v
		switch v.(type) {
		case *wire.Member:
			w = &wire.Member{}
		case *wire.ComponentRequest:
			w = &wire.ComponentRequest{}
		case *shadow.BackupComponents:
			w = &shadow.BackupComponents{}
		default:
			w = &struct {
				Type shadow.BackupType `json:"type"`
			}{}
		}
		if err := decodeBody(r, w); err != nil {
			t.Fatalf("a body sent again is refused: %v\n%s", err, again)
		}
		if third, _ := json.Marshal(w); !bytes.Equal(third, again) {
			t.Fatalf("a body changes when sent again:\n%s\n%s", again, third)
		}
	})
}
