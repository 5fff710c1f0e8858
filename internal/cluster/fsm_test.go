package cluster

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/hashicorp/raft"
)

// benchWritePath is a leader's share of a client write, without raft: the
// check before proposing, the encoding, and the apply in batches of 16.
func benchWritePath(b *testing.B, encode func(command) ([]byte, error)) {
	h, err := hive.Open(filepath.Join(b.TempDir(), hive.FileName), hive.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	f := newFSM(h)
	value := make([]byte, 1024)
	var batch []*raft.Log
	index := uint64(0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		t := hive.Txn{Ops: []hive.Op{hive.SetValue(fmt.Sprintf("Bench/k%07d", i%30000), hive.BinaryValue("v", value))}}
		if err := t.Validate(false); err != nil {
			b.Fatal(err)
		}
		data, err := encode(command{Txn: t})
		if err != nil {
			b.Fatal(err)
		}
		index++
		batch = append(batch, &raft.Log{Index: index, Type: raft.LogCommand, Data: data})
		if len(batch) == 16 {
			for _, r := range f.ApplyBatch(batch) {
				if err := r.(*applyResult).Err; err != nil {
					b.Fatal(err)
				}
			}
			batch = batch[:0]
		}
	}
}

func BenchmarkWritePathBinary(b *testing.B) { benchWritePath(b, encodeCommand) }

func BenchmarkWritePathJSON(b *testing.B) {
	benchWritePath(b, func(c command) ([]byte, error) { return json.Marshal(c) })
}

// A committed entry this build cannot read (a later version's log form)
// stops the node: skipping it would leave its hive unlike the others'.
func TestUnreadableCommittedEntryStopsTheNode(t *testing.T) {
	h, err := hive.Open(filepath.Join(t.TempDir(), hive.FileName), hive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	f := newFSM(h)
	defer func() {
		if recover() == nil {
			t.Fatal("an entry of an unknown form was skipped, not refused")
		}
		if h.Applied() != 0 {
			t.Fatalf("the hive recorded index %d as applied", h.Applied())
		}
	}()
	f.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: []byte{0x7f, 1, 2, 3}}})
}
