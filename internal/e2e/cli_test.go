package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/client"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

func TestCLI(t *testing.T) {
	lc := tc.Processes(t, 3)
	env := []string{client.EnvCluster + "=" + lc.APIAddrs()}
	run := func(args ...string) (string, string, int) { return cli(t, env, args...) }
	mustJSON := func(args ...string) map[string]any {
		t.Helper()
		out, errOut, code := run(append(args, "--json")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%v: not JSON: %v\n%s", args, err, out)
		}
		return m
	}

	if m := mustJSON("config", "set", "Apps/Web", "Port", "8080", "--type", "uint32"); m["seq"].(float64) < 1 {
		t.Fatalf("set: %v", m)
	}
	mustJSON("config", "set", "Apps/Web", "Hosts", "a", "b c", "--type", "multi-string")
	if m := mustJSON("config", "get", "apps/web", "PORT"); m["type"] != "uint32" || m["data"].(float64) != 8080 || m["name"] != "Port" {
		t.Fatalf("get: %v", m)
	}
	if out, _, _ := run("config", "get", "Apps/Web", "Hosts"); out != "a\nb c\n" {
		t.Fatalf("get multi-string: %q", out)
	}
	// Without --type a value keeps its type, a new one is a string, and
	// --type changes a type.
	mustJSON("config", "set", "Apps/Web", "Port", "9090")
	if m := mustJSON("config", "get", "Apps/Web", "Port"); m["type"] != "uint32" || m["data"].(float64) != 9090 {
		t.Fatalf("set without --type changed the type: %v", m)
	}
	mustJSON("config", "set", "Apps/Web", "Hosts", "c", "d")
	if out, _, _ := run("config", "get", "Apps/Web", "Hosts"); out != "c\nd\n" {
		t.Fatalf("multi-string set without --type: %q", out)
	}
	mustJSON("config", "set", "Apps/Web", "Motd", "42")
	if m := mustJSON("config", "get", "Apps/Web", "Motd"); m["type"] != "string" || m["data"] != "42" {
		t.Fatalf("new value without --type: %v", m)
	}
	mustJSON("config", "set", "Apps/Web", "Motd", "0x10", "--type", "uint64")
	if m := mustJSON("config", "get", "Apps/Web", "Motd"); m["type"] != "uint64" || m["data"].(float64) != 16 {
		t.Fatalf("type changed with --type: %v", m)
	}
	mustJSON("config", "set", "Apps/Web", "Port", "8080")
	if m := mustJSON("cluster", "info"); m["name"] != "local" || len(m["nodes"].([]any)) != 3 {
		t.Fatalf("cluster info: %v", m)
	}
	if m := mustJSON("state", "--data-dir", lc.Nodes[0].DataDir); m["state"] != "Running" {
		t.Fatalf("state: %v", m)
	}
	if m := mustJSON("node", "pause", "node2"); m["paused"] != true {
		t.Fatalf("pause: %v", m)
	}
	if m := mustJSON("node", "list"); !strings.Contains(mustMarshal(m), `"Paused"`) {
		t.Fatalf("node list after pause: %v", m)
	}
	mustJSON("node", "resume", "node2")

	// Bad input: a clear message on stderr, a non-zero exit, nothing changed.
	nowhere := tc.FreeAddr(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"config", "get", "Nope", "x"}, 1, "key not found"},
		{[]string{"config", "set", "a//b", "x", "y"}, 1, "empty name"},
		{[]string{"config", "set", "a", "x", "99999999999", "--type", "uint32"}, 1, `"99999999999" is not a uint32: too large; want at most 4294967295`},
		{[]string{"config", "set", "Apps/Web", "Port", "http"}, 1, `is not a uint32: want a whole number from 0 to 4294967295, decimal or hex with 0x (such as 8080 or 0x1f90) (value "Port" of "Apps/Web" is a uint32 and keeps its type; --type changes it)`},
		{[]string{"config", "set", "Apps/Web", "Port", "-1"}, 2, "-1 is read as a flag because it starts with \"-\": put -- before such values, as in\n  clusterkeep config set Apps/Web Port -- -1"},
		{[]string{"config", "set", "Apps/Web", "Port", "--", "-1"}, 1, "is not a uint32: negative"},
		{[]string{"config", "set", "Apps/Web", "Port", "1", "2"}, 2, "is a uint32: one VALUE expected, got 2"},
		{[]string{"config", "set", "a", "x", "1", "--type", "float"}, 2, "invalid value type"},
		{[]string{"config", "set", "Cluster/Nodes", "x", "1"}, 1, "read-only"},
		{[]string{"config", "get", "--bogus"}, 2, "unknown flag"},
		{[]string{"config", "get", "a"}, 2, "config get takes 2 arguments, got 1 (a)\nusage:   clusterkeep config get KEY NAME\nexample: clusterkeep config get Apps/Web Port"},
		{[]string{"node", "evict", "nosuchnode"}, 1, "no such node"},
		{[]string{"--cluster", nowhere, "config", "get", "Apps/Web", "Port"}, 1, "every address refused the connection: no node listens there (check --cluster or CLUSTERKEEP_CLUSTER): " + nowhere},
		{[]string{"config", "list", "--data-dir", lc.Nodes[0].DataDir}, 1, "holds its database"},
	} {
		out, errOut, code := run(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) || out != "" || strings.Contains(errOut, "strconv") {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q), stdout %q", c.args, code, c.code, errOut, c.want, out)
		}
	}
	if _, errOut, code := run("config", "get", "Nope", "x", "--json"); code != 1 || !strings.HasPrefix(errOut, `{"error":`) {
		t.Errorf("JSON error: exit %d %q", code, errOut)
	}
	if _, errOut, code := run("config", "list", "a"); code != 1 || !strings.Contains(errOut, "key not found") {
		t.Fatalf("bad input created key a: exit %d %s", code, errOut)
	}

	// Offline: the database file of a stopped node is read like any file.
	if _, err := lc.Stop("node3", false); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run("config", "export", "Apps", "--data-dir", lc.Nodes[2].DataDir)
	if code != 0 || !strings.Contains(out, `value "Port" uint32 8080`) {
		t.Fatalf("offline export: exit %d %s\n%s", code, errOut, out)
	}

	// local up prints the documented JSON shape.
	dir := filepath.Join(t.TempDir(), "one")
	m := mustJSON("local", "up", "--nodes", "1", "--dir", dir)
	t.Cleanup(func() { run("local", "down", "--dir", dir) })
	nodes := m["nodes"].([]any)
	n0 := nodes[0].(map[string]any)
	if len(nodes) != 1 || n0["name"] != "node1" || n0["api"] == "" || n0["data_dir"] != filepath.Join(dir, "node1") {
		t.Fatalf("local up: %v", m)
	}
	if m := mustJSON("local", "status", "--dir", dir); !strings.Contains(mustMarshal(m), `"Running"`) {
		t.Fatalf("local status: %v", m)
	}
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
