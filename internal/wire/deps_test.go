package wire_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The data flows one way: clients and the backup and restore programs
// link the wire format, never the server. These tests hold the rule, so a
// convenient import that drags consensus into a client fails here and not
// in a review.

const module = "github.com/clusterkeep/clusterkeep/"

// goList runs `go list` with args and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command, to list the packages' dependencies: %v", err)
	}
	out, err := exec.Command(gobin, append([]string{"list"}, args...)...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return strings.Fields(string(out))
}

// serverSide are the packages a client side must never link: consensus,
// the database's writer paths and what serves the API.
var serverSide = []string{
	"github.com/hashicorp/raft",
	"github.com/hashicorp/raft-boltdb/v2",
	module + "internal/api",
	module + "internal/cluster",
	module + "internal/agent",
	module + "internal/dashboard",
	module + "internal/metrics",
}

func TestClientSideNeverLinksTheServer(t *testing.T) {
	for _, tc := range []struct {
		pkg    string
		banned []string
	}{
		// The client speaks the wire types; it does not even read a
		// database (a host's state comes from node.db and the plan file).
		{"internal/client", append([]string{module + "internal/hive", module + "internal/staging"}, serverSide...)},
		// Backup and restore open database files offline, but never run
		// or serve a node; they are siblings over the set's offline reader
		// (internal/backupset/offline), so restore never links backup.
		{"internal/backup", serverSide},
		{"internal/restore", append([]string{module + "internal/backup"}, serverSide...)},
		{"internal/backupset", append([]string{module + "internal/client"}, serverSide...)},
	} {
		deps := map[string]bool{}
		for _, d := range goList(t, "-deps", module+tc.pkg) {
			deps[d] = true
		}
		if !deps[module+tc.pkg] {
			t.Fatalf("go list -deps of %s does not list the package itself: %v", tc.pkg, deps)
		}
		for _, b := range tc.banned {
			if deps[b] {
				t.Errorf("%s links %s", tc.pkg, b)
			}
		}
	}
}

func TestWireImportsNothingOfOurs(t *testing.T) {
	lines := goList(t, "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")
	if len(lines) != 1 || lines[0] != module+"internal/wire" {
		t.Fatalf("internal/wire must import the standard library only; its other dependencies: %v", lines)
	}
}
