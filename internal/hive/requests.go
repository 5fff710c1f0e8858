package hive

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// RequestMemory is how many consensus entries a request id is remembered
// for: a retry within that many entries of the first attempt is answered
// with the first attempt's result.
const RequestMemory = 200000

// A remembered result: uvarint seq, then a failure's message when the
// transaction's conditions failed.
func encodeResult(r Result) []byte {
	b := binary.AppendUvarint(nil, r.Seq)
	if r.Err != nil {
		b = append(b, r.Err.Error()...)
	}
	return b
}

func decodeResult(b []byte) Result {
	seq, n := binary.Uvarint(b)
	r := Result{Seq: seq}
	if n > 0 && len(b) > n {
		msg := string(b[n:])
		r.Err = fmt.Errorf("%w (first attempt: %s)", ErrPreconditionFailed, msg)
	}
	return r
}

func seenRequest(tx *bolt.Tx, id string) (Result, bool) {
	if id == "" {
		return Result{}, false
	}
	raw := tx.Bucket(bucketRequests).Get([]byte(id))
	if raw == nil {
		return Result{}, false
	}
	return decodeResult(raw), true
}

func rememberRequest(tx *bolt.Tx, id string, index uint64, r Result) error {
	if id == "" {
		return nil
	}
	if r.Err != nil && !errors.Is(r.Err, ErrPreconditionFailed) {
		return nil
	}
	if err := tx.Bucket(bucketRequests).Put([]byte(id), encodeResult(r)); err != nil {
		return err
	}
	return tx.Bucket(bucketReqOrder).Put(append(u64(index), id...), nil)
}

// forgetRequests drops the ids remembered for more than RequestMemory
// entries. Every node forgets at the same index, so answers agree.
func forgetRequests(tx *bolt.Tx, applied uint64) error {
	if applied <= RequestMemory {
		return nil
	}
	limit := applied - RequestMemory
	order, reqs := tx.Bucket(bucketReqOrder), tx.Bucket(bucketRequests)
	c := order.Cursor()
	for k, _ := c.First(); len(k) >= 8 && binary.BigEndian.Uint64(k) < limit; k, _ = c.First() {
		if err := reqs.Delete(k[8:]); err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
