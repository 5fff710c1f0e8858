package main

import (
	"context"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/client"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// raceAfterRead is the cluster with another writer that changes the value
// right after config set has read it, once.
type raceAfterRead struct {
	*client.Cluster
	change func()
}

func (r *raceAfterRead) GetValue(ctx context.Context, path, name string, opts ...client.ReadOption) (wire.Value, error) {
	v, err := r.Cluster.GetValue(ctx, path, name, opts...)
	if r.change != nil {
		r.change()
		r.change = nil
	}
	return v, err
}

// A set without --type keeps the value's type; when another writer changes
// the type between the read and the write, the write does not put the old
// type back: it is read again and the input taken in the new type.
func TestSetKeepsTypeAgainstConcurrentChange(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	if _, err := c.SetValue(ctx, "Apps/Web", wire.Uint32Value("Port", 8080)); err != nil {
		t.Fatal(err)
	}
	if _, err := setKeepingType(ctx, c, "Apps/Web", "Port", []string{"9090"}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.GetValue(ctx, "Apps/Web", "Port"); err != nil || v.Type != wire.TypeUint32 || v.Uint32 != 9090 {
		t.Fatalf("after set 9090: %+v %v, want uint32 9090", v, err)
	}
	_, err := setKeepingType(ctx, c, "Apps/Web", "Port", []string{"eighty"})
	if err == nil || !strings.Contains(err.Error(), "is a uint32 and keeps its type; --type changes it") {
		t.Fatalf("set eighty: %v, want the type named", err)
	}

	r := &raceAfterRead{Cluster: c, change: func() {
		if _, err := c.SetValue(ctx, "Apps/Web", wire.StringValue("Port", "http")); err != nil {
			t.Error(err)
		}
	}}
	if _, err := setKeepingType(ctx, r, "Apps/Web", "Port", []string{"7070"}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.GetValue(ctx, "Apps/Web", "Port"); err != nil || v.Type != wire.TypeString || v.String != "7070" {
		t.Fatalf("after a concurrent change to a string: %+v %v, want the string 7070", v, err)
	}

	// A new value is a string; so is one created between the read and
	// the write only if the creator made it one.
	r = &raceAfterRead{Cluster: c, change: func() {
		if _, err := c.SetValue(ctx, "Apps/Web", wire.Uint64Value("Size", 1)); err != nil {
			t.Error(err)
		}
	}}
	if _, err := setKeepingType(ctx, r, "Apps/Web", "Size", []string{"42"}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.GetValue(ctx, "Apps/Web", "Size"); err != nil || v.Type != wire.TypeUint64 || v.Uint64 != 42 {
		t.Fatalf("after a concurrent creation as uint64: %+v %v, want uint64 42", v, err)
	}
	if _, err := setKeepingType(ctx, c, "Apps/Web", "Note", []string{"8080"}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.GetValue(ctx, "Apps/Web", "Note"); err != nil || v.Type != wire.TypeString || v.String != "8080" {
		t.Fatalf("new value: %+v %v, want the string 8080", v, err)
	}
}
