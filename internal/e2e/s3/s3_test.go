package s3

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/agent"
	"github.com/clusterkeep/clusterkeep/internal/backend"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset/offline"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	"github.com/clusterkeep/clusterkeep/internal/s3server"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/minio/minio-go/v7"
)

var (
	srv    *s3server.Server
	srvErr error
)

func TestMain(m *testing.M) {
	bin, err := s3server.Install()
	if err == nil {
		dir, derr := os.MkdirTemp("", "clusterkeep-s3-")
		if derr != nil {
			err = derr
		} else {
			defer os.RemoveAll(dir)
			srv, err = s3server.Start(bin, dir)
		}
	}
	if err != nil {
		srvErr = err
		fmt.Fprintf(os.Stderr, "S3 TESTS: THE S3-COMPATIBLE SERVER IS NOT AVAILABLE: %v\n", err)
	} else {
		fmt.Fprintf(os.Stderr, "S3 tests: versitygw (%s) on %s\n", bin, srv.Endpoint)
	}
	code := m.Run()
	if srv != nil {
		srv.Stop()
	}
	os.Exit(code)
}

// server returns the running S3 server, or fails the test saying why there
// is none.
func server(t *testing.T) *s3server.Server {
	t.Helper()
	if srvErr != nil {
		if os.Getenv("CLUSTERKEEP_S3_TESTS") == "skip" {
			t.Skipf("NOT RUN (CLUSTERKEEP_S3_TESTS=skip): the S3 server is not available: %v", srvErr)
		}
		t.Fatalf("the S3-compatible server could not be installed or started, so the S3 target is untested: %v", srvErr)
	}
	return srv
}

var buckets atomic.Int64

// bucket creates a new bucket for one test.
func bucket(t *testing.T, s *s3server.Server) string {
	t.Helper()
	name := fmt.Sprintf("ck-%d-%d", os.Getpid(), buckets.Add(1))
	if err := s.MakeBucket(tc.Context(t), name); err != nil {
		t.Fatalf("make bucket %s: %v\n%s", name, err, s.Log())
	}
	return name
}

// s3Target is the S3 target at s3://bucket/prefix, for looking at what
// is stored.
func s3Target(t *testing.T, s *s3server.Server, bucket, prefix string, mutate func(*backend.S3Options)) *backend.S3 {
	t.Helper()
	o := s.Options()
	if mutate != nil {
		mutate(&o)
	}
	tg, err := backend.NewS3(bucket, prefix, o)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// keys lists every object key under prefix.
func keys(t *testing.T, tg *backend.S3, prefix string) []string {
	t.Helper()
	var out []string
	for o := range tg.Client().ListObjects(tc.Context(t), tg.Bucket(), minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		out = append(out, o.Key)
	}
	return out
}

// cli runs the clusterkeep binary with env and returns stdout, stderr and
// the exit code.
func cli(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(tc.Binary(t), args...)
	cmd.Env = append(cmd.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func jsonCLI(t *testing.T, env []string, v any, args ...string) {
	t.Helper()
	out, errOut, code := cli(t, env, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("clusterkeep %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("clusterkeep %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func listSets(t *testing.T, env []string, to string) []offline.Summary {
	t.Helper()
	var l struct{ Backups []offline.Summary }
	jsonCLI(t, env, &l, "backup", "list", to)
	return l.Backups
}

func hiveOf(t *testing.T, nd localcluster.Node, key, name string) (uint32, error) {
	v, err := client.Node(nd.API).GetValue(tc.Context(t), key, name, client.Stale())
	if err != nil {
		return 0, err
	}
	return v.Uint32, nil
}

func waitHolds(t *testing.T, nd localcluster.Node, key, name string, want uint32) {
	t.Helper()
	tc.Eventually(t, fmt.Sprintf("%s holds %s/%s=%d", nd.Name, key, name, want), func() error {
		got, err := hiveOf(t, nd, key, name)
		if err != nil || got != want {
			return fmt.Errorf("has %d (%v)", got, err)
		}
		return nil
	})
}

// Backup to S3, list, inspect, verify, diff, restore a wiped node from it,
// and prune, all through the CLI against the real server.
func TestBackupListVerifyRestoreAndPruneOnS3(t *testing.T) {
	s := server(t)
	lc := tc.Processes(t, 3)
	c := tc.Open(t, lc.APIAddrs())
	ctx := tc.Context(t)
	b := bucket(t, s)
	to := "s3://" + b + "/cluster/backups"
	env := append(s.Env(), client.EnvCluster+"="+lc.APIAddrs())
	set := func(key string, v uint32) {
		if _, err := c.SetValue(ctx, key, wire.Uint32Value("v", v)); err != nil {
			t.Fatal(err)
		}
	}
	set("A", 1)
	var first, second backup.Result
	jsonCLI(t, env, &first, "backup", "create", "--to", to, "--node", "node3", "--data-dir", t.TempDir())
	if !strings.HasPrefix(first.Path, to+"/") {
		t.Fatalf("the set is at %s, not under %s", first.Path, to)
	}
	set("A", 2)
	set("B", 3)
	jsonCLI(t, env, &second, "backup", "create", "--to", to, "--compress", "--data-dir", t.TempDir())

	sets := listSets(t, env, to)
	if len(sets) != 2 || sets[0].Path != first.Path || sets[1].Path != second.Path {
		t.Fatalf("list: %+v", sets)
	}
	// The flags do what the environment does.
	noEndpoint := []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey, "AWS_ENDPOINT_URL=", "CLUSTERKEEP_S3_PATH_STYLE="}
	var l struct{ Backups []offline.Summary }
	jsonCLI(t, noEndpoint, &l, "backup", "list", to, "--s3-endpoint", s.Endpoint, "--s3-path-style", "--s3-region", s.Region)
	if len(l.Backups) != 2 {
		t.Fatalf("list with --s3-endpoint: %+v", l.Backups)
	}
	var v map[string]any
	jsonCLI(t, env, &v, "backup", "verify", first.Path)
	if v["ok"] != true {
		t.Fatalf("verify: %v", v)
	}
	jsonCLI(t, env, &v, "backup", "verify", second.Path)
	var in offline.Inspection
	jsonCLI(t, env, &in, "backup", "inspect", second.Path)
	if in.Manifest.BackupID != second.BackupID || in.Keys == 0 {
		t.Fatalf("inspect: %+v", in)
	}
	var d struct{ Changes []offline.Change }
	jsonCLI(t, env, &d, "backup", "diff", first.Path, second.Path)
	if len(d.Changes) != 3 { // A/v changed, B and B/v added
		t.Fatalf("diff: %+v", d.Changes)
	}

	// node3's disk dies: it comes back from the first backup, on S3.
	lc.Stop("node3", true)
	n3 := lc.Nodes[2]
	os.RemoveAll(n3.DataDir)
	var r map[string]any
	jsonCLI(t, env, &r, "restore", first.Path, "--data-dir", n3.DataDir)
	if r["applied"] != "now" || r["node"] != "node3" {
		t.Fatalf("restore: %v", r)
	}
	if _, err := lc.Start(ctx, "node3"); err != nil {
		t.Fatal(err)
	}
	waitHolds(t, n3, "A", "v", 2)
	waitHolds(t, n3, "B", "v", 3)

	// Prune: dry, then for real.
	tg := s3Target(t, s, b, "cluster/backups", nil)
	before := keys(t, tg, "")
	var dry backup.PruneResult
	jsonCLI(t, env, &dry, "backup", "prune", to, "--keep-last", "1", "--dry-run")
	if !dry.DryRun || len(dry.Kept) != 1 || dry.Kept[0].Path != second.Path || len(dry.Removed) != 1 || dry.Removed[0].Path != first.Path {
		t.Fatalf("prune --dry-run: %+v", dry)
	}
	if got := strings.Join(dry.Kept[0].Reasons, "; "); got != "last 1 of 1; newest verified backup" {
		t.Fatalf("kept for %q", got)
	}
	if after := keys(t, tg, ""); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("a dry run changed the bucket: %v, was %v", after, before)
	}
	var pr backup.PruneResult
	jsonCLI(t, env, &pr, "backup", "prune", to, "--keep-last", "1")
	if len(pr.Removed) != 1 || pr.Removed[0].Path != first.Path || len(pr.Verified) != 1 || pr.Verified[0] != second.Path {
		t.Fatalf("prune: %+v", pr)
	}
	if sets := listSets(t, env, to); len(sets) != 1 || sets[0].Path != second.Path {
		t.Fatalf("list after prune: %+v", sets)
	}
	firstName := filepath.Base(first.Path)
	if left := keys(t, tg, "cluster/backups/"+firstName+"/"); len(left) != 0 {
		t.Fatalf("the pruned set left objects: %v", left)
	}
	jsonCLI(t, env, &v, "backup", "verify", second.Path)
}

// A backup process killed with SIGKILL in the middle of an upload leaves
// nothing that list shows, nothing that verifies; the next backup works,
// and the leftovers are removed once abandoned.
func TestBackupKilledMidUploadOnS3(t *testing.T) {
	s := server(t)
	nodes := tc.InProcessWith(t, 1, func(i int, cfg *agent.Config) { cfg.SessionTimeout = "2s" })
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	// 48 MiB: the database is uploaded in several 16 MiB parts.
	for i := range 48 {
		if _, err := c.SetValue(ctx, fmt.Sprintf("Blobs/b%d", i), wire.BinaryValue("data", bytes.Repeat([]byte{byte(i), 1, 2, 3}, 1<<18))); err != nil {
			t.Fatal(err)
		}
	}
	b := bucket(t, s)
	to := "s3://" + b + "/bk"
	tg := s3Target(t, s, b, "bk", nil)
	env := append(s.Env(), client.EnvCluster+"="+nodes[0].API())

	killedMidUpload := 0
	for attempt := 0; attempt < 5 && killedMidUpload == 0; attempt++ {
		cmd := exec.Command(tc.Binary(t), "backup", "create", "--to", to, "--data-dir", t.TempDir(), "--json")
		cmd.Env = append(cmd.Environ(), env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		// Kill it as soon as an upload is under way on the server.
		uploading := false
		for !uploading {
			select {
			case <-exited:
			default:
				for u := range tg.Client().ListIncompleteUploads(ctx, b, "bk/", true) {
					if u.Err == nil {
						uploading = true
					}
				}
				if !uploading {
					time.Sleep(2 * time.Millisecond)
				}
				continue
			}
			break
		}
		cmd.Process.Kill()
		<-exited
		if uploading && !cmd.ProcessState.Success() {
			killedMidUpload++
		}
	}
	if killedMidUpload == 0 {
		t.Fatal("no backup could be caught in the middle of an upload")
	}
	if sets := listSets(t, env, to); len(sets) != 0 {
		t.Fatalf("a killed backup is listed: %+v", sets)
	}
	partials, err := tg.Partials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(partials) == 0 {
		t.Fatal("the killed upload left nothing the target sees")
	}
	for _, p := range partials {
		if p.Abandoned {
			t.Fatalf("a fresh partial set is taken as abandoned: %+v", p)
		}
		_, errOut, code := cli(t, env, "backup", "verify", to+"/"+p.Name)
		if code == 0 || !(strings.Contains(errOut, "incomplete") || strings.Contains(errOut, "not a backup set")) {
			t.Fatalf("verify of the killed backup's leftovers: exit %d: %s", code, errOut)
		}
	}
	// The next backup works.
	var res backup.Result
	jsonCLI(t, env, &res, "backup", "create", "--to", to, "--data-dir", t.TempDir())
	var v map[string]any
	jsonCLI(t, env, &v, "backup", "verify", res.Path)
	if sets := listSets(t, env, to); len(sets) != 1 || sets[0].Path != res.Path {
		t.Fatalf("list: %+v", sets)
	}
	// Prune leaves the young leftovers; once they are old enough they go,
	// unfinished uploads included, and the complete set stays.
	var pr backup.PruneResult
	jsonCLI(t, env, &pr, "backup", "prune", to, "--keep-last", "1")
	for _, p := range pr.Partials {
		if p.Removed {
			t.Fatalf("prune removed a young partial set: %+v", p)
		}
	}
	old := s3Target(t, s, b, "bk", func(o *backend.S3Options) { o.PartialAge = time.Nanosecond })
	partials, err = old.Partials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range partials {
		if !p.Abandoned {
			t.Fatalf("an old partial set is not abandoned: %+v", p)
		}
		if err := old.RemovePartial(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	name := filepath.Base(res.Path)
	for _, k := range keys(t, tg, "bk/") {
		if !strings.HasPrefix(k, "bk/"+name+"/") {
			t.Errorf("left after cleanup: %s", k)
		}
	}
	for u := range tg.Client().ListIncompleteUploads(ctx, b, "bk/", true) {
		if u.Err == nil {
			t.Errorf("unfinished upload left after cleanup: %s", u.Key)
		}
	}
	jsonCLI(t, env, &v, "backup", "verify", res.Path)
}

// dirSum hashes every file under dir.
func dirSum(t *testing.T, dir string) string {
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			f, _ := os.Open(p)
			if f != nil {
				fmt.Fprintf(h, "%s\n", p)
				io.Copy(h, f)
				f.Close()
			}
		}
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}

// An object changed in the bucket, one added, and a manifest changed are
// each refused by verify and by restore, which changes nothing.
func TestTamperedObjectIsRefusedOnS3(t *testing.T) {
	s := server(t)
	nodes := tc.InProcessWith(t, 1, nil)
	ctx := tc.Context(t)
	c := tc.Open(t, nodes[0].API())
	if _, err := c.SetValue(ctx, "K", wire.StringValue("v", "hello")); err != nil {
		t.Fatal(err)
	}
	b := bucket(t, s)
	to := "s3://" + b + "/bk"
	tg := s3Target(t, s, b, "bk", nil)
	env := append(s.Env(), client.EnvCluster+"="+nodes[0].API())
	put := func(key string, data []byte) {
		t.Helper()
		if _, err := tg.Client().PutObject(ctx, b, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(key string) []byte {
		t.Helper()
		o, err := tg.Client().GetObject(ctx, b, key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		data, err := io.ReadAll(o)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	refused := func(what, path string) {
		t.Helper()
		_, errOut, code := cli(t, env, "backup", "verify", path)
		if code == 0 || !strings.Contains(errOut, "corrupt") {
			t.Fatalf("%s: verify: exit %d: %s", what, code, errOut)
		}
		dataDir := t.TempDir()
		before := dirSum(t, dataDir)
		_, errOut, code = cli(t, env, "restore", path, "--data-dir", dataDir)
		if code == 0 || !strings.Contains(errOut, "corrupt") || !strings.Contains(errOut, "nothing was changed") {
			t.Fatalf("%s: restore: exit %d: %s", what, code, errOut)
		}
		if dirSum(t, dataDir) != before {
			t.Fatalf("%s: a refused restore changed the data directory", what)
		}
	}
	backupOnce := func() (string, string) {
		var res backup.Result
		jsonCLI(t, env, &res, "backup", "create", "--to", to, "--data-dir", t.TempDir())
		var v map[string]any
		jsonCLI(t, env, &v, "backup", "verify", res.Path)
		return res.Path, "bk/" + filepath.Base(res.Path) + "/"
	}

	// One byte of the database changed, same size.
	path, prefix := backupOnce()
	var db string
	for _, k := range keys(t, tg, prefix) {
		if strings.HasSuffix(k, "/"+hive.FileName) {
			db = k
		}
	}
	if db == "" {
		t.Fatalf("no database object under %s: %v", prefix, keys(t, tg, prefix))
	}
	data := get(db)
	data[len(data)/2] ^= 0xff
	put(db, data)
	refused("a changed database object", path)

	// An object the manifest does not list.
	path, prefix = backupOnce()
	put(prefix+"data/extra", []byte("not part of the backup"))
	refused("an added object", path)

	// The manifest changed.
	path, prefix = backupOnce()
	m := get(prefix + backend.ManifestName)
	put(prefix+backend.ManifestName, bytes.Replace(m, []byte(`"hive_seq": `), []byte(`"hive_seq": 1`), 1))
	refused("a changed manifest", path)
}
