package api

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/hive"
)

// Whatever a client sends as a transaction, the server decodes it or says
// why, and validation never lets through what the hive would refuse.
func FuzzTxnBody(f *testing.F) {
	f.Add([]byte(`{"ops":[{"op":"set-value","key":"A/B","value":{"name":"x","type":"uint32","data":1}}]}`))
	f.Add([]byte(`{"if":[{"if":"key-exists","key":"A"}],"ops":[{"op":"delete-key","key":"A"}],"request_id":"r"}`))
	f.Add([]byte(`{"ops":[{"op":"set-value","key":"A","value":{"name":"b","type":"binary","data":"AAE="}}]} trailing`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/v1/txn", bytes.NewReader(body))
		var txn hive.Txn
		if err := decodeBody(r, &txn); err != nil {
			if !isInvalid(err) {
				t.Fatalf("a bad body is not reported as invalid: %v", err)
			}
			return
		}
		if err := txn.Validate(false); err != nil {
			if !isInvalid(err) {
				t.Fatalf("a refused transaction is not reported as invalid: %v", err)
			}
			return
		}
		// A transaction that validates applies (or fails only its conditions).
		h, err := hive.Open(t.TempDir()+"/"+hive.FileName, hive.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		res, err := h.Apply([]hive.Entry{{Index: 1, Txn: txn}})
		if err != nil {
			t.Fatalf("validated transaction broke the hive: %v", err)
		}
		if res[0].Err != nil && !isInvalid(res[0].Err) && !errors.Is(res[0].Err, hive.ErrPreconditionFailed) {
			t.Fatalf("validated transaction failed: %v", res[0].Err)
		}
	})
}
