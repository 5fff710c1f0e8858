package s3

import (
	"bytes"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backend"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/minio/minio-go/v7"
)

// An unfinished multipart upload is aged by its newest part, not by its
// start: an upload that began longer ago than the partial age but still
// gets parts is not abandoned, and prune's cleanup leaves it; once no part
// came for that long, it is.
func TestUploadIsAgedByItsNewestPart(t *testing.T) {
	s := server(t)
	ctx := tc.Context(t)
	b := bucket(t, s)
	const age = 3 * time.Second
	tg := s3Target(t, s, b, "bk", func(o *backend.S3Options) { o.PartialAge = age })
	core := minio.Core{Client: tg.Client()}
	key := "bk/long-upload/data/writers/db"
	id, err := core.NewMultipartUpload(ctx, b, key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := func(n int) {
		t.Helper()
		data := bytes.Repeat([]byte{byte(n)}, 1<<16)
		if _, err := core.PutObjectPart(ctx, b, key, id, n, bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	judged := func() backend.Partial {
		t.Helper()
		ps, err := tg.Partials(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 1 || ps[0].Name != "long-upload" {
			t.Fatalf("partials %+v, want the upload's set", ps)
		}
		return ps[0]
	}
	// cleanup runs what prune and every backup's Begin run: the removal
	// of the partial sets judged abandoned.
	cleanup := func() {
		t.Helper()
		w, err := tg.Begin(ctx, "another-set")
		if err != nil {
			t.Fatal(err)
		}
		w.Abort()
	}
	uploads := func() int {
		n := 0
		for u := range tg.Client().ListIncompleteUploads(ctx, b, "bk/", true) {
			if u.Err == nil && u.UploadID == id {
				n++
			}
		}
		return n
	}
	part(1)
	// Letting the upload grow older than the partial age, not waiting
	// for a state.
	time.Sleep(age + time.Second)
	part(2)
	p := judged()
	if p.Abandoned {
		t.Fatalf("an upload begun %v ago whose last part is fresh is taken as abandoned: %+v", age+time.Second, p)
	}
	if time.Since(p.Modified) > age {
		t.Fatalf("the upload's activity is %s, not its newest part's", p.Modified)
	}
	cleanup()
	if uploads() != 1 {
		t.Fatal("the cleanup removed an upload that still gets parts")
	}
	// No part for longer than the partial age: abandoned, and removed.
	time.Sleep(age + time.Second)
	if p := judged(); !p.Abandoned {
		t.Fatalf("an upload without a part for %v is not abandoned: %+v", age+time.Second, p)
	}
	cleanup()
	if uploads() != 0 {
		t.Fatal("the abandoned upload is still there")
	}
}
