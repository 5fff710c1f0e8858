package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// Addresses where no node listens fail at once, named, instead of being
// retried for the whole window as an election would be; a handle that has
// reached the cluster keeps retrying refused connections (a restart).
func TestRefusedEverywhereFailsFast(t *testing.T) {
	tc.UseTrust(t)
	a, b := tc.FreeAddr(t), tc.FreeAddr(t)
	// A window longer than the test's context: only failing fast returns
	// ErrRefused rather than the context's end.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err := client.OpenClusterWith(ctx, []string{a + "," + b}, client.WithRetryWindow(time.Hour))
	if !errors.Is(err, client.ErrRefused) || !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Fatalf("open at %s,%s where nothing listens: %v, want ErrRefused naming both", a, b, err)
	}

	nodes := tc.InProcess(t, 1)
	c, err := client.OpenClusterWith(ctx, []string{nodes[0].API(), a}, client.WithRetryWindow(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	nodes[0].Stop()
	_, err = c.GetClusterInformation(ctx)
	if !errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrRefused) {
		t.Fatalf("a handle that reached the cluster, every node stopped: %v, want ErrUnavailable after the window", err)
	}
}
