package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/clusterkeep/clusterkeep/bench/benchutil"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// ours is the clusterkeep side: the binary, the local cluster and where
// backups go.
type ours struct {
	o   options
	bin string
	lc  *localcluster.Cluster
	dir string
}

// cmdTimeout bounds each clusterkeep command the benchmark runs (their
// default, 60 s, is short for a restore of a 1M-key hive).
const cmdTimeout = "30m"

func buildOurs(o options) string {
	bin := filepath.Join(o.work, "clusterkeep")
	build := exec.Command("go", "build", "-o", bin, "./cmd/clusterkeep")
	build.Dir = o.repo
	if out, err := build.CombinedOutput(); err != nil {
		fatalf("build clusterkeep: %v\n%s", err, out)
	}
	return bin
}

func startOurs(ctx context.Context, o options, bin, dir string) *ours {
	u := &ours{o: o, bin: bin, dir: dir}
	lc, err := localcluster.Up(ctx, filepath.Join(dir, "cluster"), 3, bin)
	if lc != nil {
		atExit(func() {
			for _, n := range lc.Nodes {
				lc.Stop(n.Name, true)
			}
		})
	}
	if err != nil {
		fatalf("start clusterkeep: %v", err)
	}
	// Clients here and the CLI it runs trust and prove what the cluster
	// made: its authority and admin token.
	for _, kv := range lc.Env() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	u.lc = lc
	return u
}

func (u *ours) stop() {
	for _, n := range u.lc.Nodes {
		u.lc.Stop(n.Name, false)
	}
}

func (u *ours) cluster(ctx context.Context) *client.Cluster {
	c, err := client.OpenCluster(ctx, u.lc.APIAddrs())
	if err != nil {
		fatalf("open the cluster: %v", err)
	}
	return c
}

// load writes n keys of size bytes in transactions of 500 set-value
// operations, four transactions at a time, through the cluster API (each
// transaction is one consensus entry, applied by every node).
func (u *ours) load(ctx context.Context, n, size int) time.Duration {
	const batch, conc = 500, 4
	c := u.cluster(ctx)
	var next atomic.Int64
	var wg sync.WaitGroup
	val := value(size)
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(batch)) - batch
				if from >= n {
					return
				}
				ops := make([]wire.Op, 0, batch)
				for k := from; k < min(from+batch, n); k++ {
					ops = append(ops, wire.SetValue(fmt.Sprintf("Load/%03d/k%07d", k%1000, k), wire.BinaryValue("v", val)))
				}
				if _, err := c.Txn(ctx, wire.Txn{Ops: ops}); err != nil {
					fatalf("load clusterkeep: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// value is size bytes of a repeating pattern.
func value(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

func (u *ours) dbPath(node string) string {
	for _, n := range u.lc.Nodes {
		if n.Name == node {
			return filepath.Join(n.DataDir, hive.FileName)
		}
	}
	return filepath.Join(u.lc.Nodes[0].DataDir, hive.FileName)
}

type backupRun struct {
	seconds float64
	rssMiB  float64
	node    string
	path    string
}

// backup runs `clusterkeep backup create` as an operator would, a process
// of its own, and measures its time and peak memory.
func (u *ours) backup(to string, args ...string) backupRun { return u.backupWith(u.bin, to, args...) }

// backupWith is backup with the clusterkeep binary bin (-compare's).
func (u *ours) backupWith(bin, to string, args ...string) backupRun {
	a := append([]string{"backup", "create", "--to", to, "--data-dir", filepath.Join(u.dir, "no-node"),
		"--cluster", u.lc.APIAddrs(), "--json", "--timeout", cmdTimeout}, args...)
	cmd := exec.Command(bin, a...)
	var out bytes.Buffer
	cmd.Stdout = &out
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		fatalf("backup create: %v", err)
	}
	done := make(chan struct{})
	peak := make(chan float64)
	go func() { peak <- benchutil.WatchHWM(cmd.Process.Pid, done) }()
	err := cmd.Wait()
	took := time.Since(t0)
	close(done)
	hwm := <-peak
	if err != nil {
		fatalf("backup create: %v %s", err, out.Bytes())
	}
	var res struct{ Node, Path string }
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		fatalf("backup create's result: %v: %s", err, out.Bytes())
	}
	return backupRun{seconds: took.Seconds(), rssMiB: hwm, node: res.Node, path: res.Path}
}

// rawLimit is cp of the file, sync, then openssl's SHA-256 of the copy.
func rawLimit(src, dst string) float64 {
	t0 := time.Now()
	for _, args := range [][]string{{"cp", src, dst}, {"sync"}, {"openssl", "dgst", "-sha256", dst}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			fatalf("%v: %v %s", args, err, out)
		}
	}
	took := time.Since(t0).Seconds()
	os.Remove(dst)
	return took
}

type writeRun struct {
	p50, p99, max, rate float64 // ms, ms, ms, writes/s
	failed              int64
}

// writeLoad runs writers, each with its own cluster handle, setting single
// 1 KiB values until d has passed and done (when given) is closed.
func (u *ours) writeLoad(ctx context.Context, writers, size int, d time.Duration, done <-chan struct{}) writeRun {
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	val := value(size)
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		c := u.cluster(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; !stop.Load(); i++ {
				t0 := time.Now()
				_, err := c.SetValue(ctx, fmt.Sprintf("Bench/w%d/k%d", w, i%1000), wire.BinaryValue("v", val))
				if err != nil {
					failed.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(d)
	if done != nil {
		<-done
	}
	stop.Store(true)
	wg.Wait()
	took := time.Since(start)
	return summarize(lat, failed.Load(), took)
}

func summarize(lat []time.Duration, failed int64, took time.Duration) writeRun {
	if len(lat) == 0 {
		return writeRun{failed: failed}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return writeRun{p50: ms(lat[len(lat)/2]), p99: ms(lat[int(0.99*float64(len(lat)-1))]), max: ms(lat[len(lat)-1]),
		rate: float64(len(lat)) / took.Seconds(), failed: failed}
}

// writeDuringBackups runs the writers while backups (made by the binary
// bin) run back to back, for at least d and at least one whole backup.
func (u *ours) writeDuringBackups(ctx context.Context, bin string, writers, size int, d time.Duration) (writeRun, int) {
	stop := make(chan struct{})
	firstDone := make(chan struct{})
	var n int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			to := filepath.Join(u.dir, "bk-load")
			u.backupWith(bin, to)
			os.RemoveAll(to)
			n++
			if i == 0 {
				close(firstDone)
			}
		}
	}()
	r := u.writeLoad(ctx, writers, size, d, firstDone)
	close(stop)
	wg.Wait()
	return r, n
}

// mark sets Bench/Mark to v through the cluster.
func (u *ours) mark(ctx context.Context, v uint64) {
	if _, err := u.cluster(ctx).SetValue(ctx, "Bench/Mark", wire.Uint64Value("v", v)); err != nil {
		fatalf("mark: %v", err)
	}
}

// holds reports whether nd's own copy has Bench/Mark = v.
func holds(ctx context.Context, nd localcluster.Node, v uint64) bool {
	got, err := client.Node(nd.API).GetValue(ctx, "Bench/Mark", "v", client.Stale())
	return err == nil && got.Uint64 == v
}

// restoreCmd is one run of `clusterkeep restore`: its time, peak memory
// and bytes written.
type restoreCmd struct {
	seconds, rssMiB float64
	writeBytes      int64
}

// runRestore runs `bin restore args...` as an operator would, a process of
// its own. Its bytes written are the kernel's write_bytes of /proc/PID/io,
// read through wait4's rusage (ru_oublock is that counter in 512-byte
// units), as /proc/PID is gone once the process is reaped.
func (u *ours) runRestore(bin string, args ...string) restoreCmd {
	cmd := exec.Command(bin, append([]string{"restore"}, append(args, "--timeout", cmdTimeout)...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		fatalf("restore: %v", err)
	}
	done := make(chan struct{})
	peak := make(chan float64)
	go func() { peak <- benchutil.WatchHWM(cmd.Process.Pid, done) }()
	err := cmd.Wait()
	took := time.Since(t0)
	close(done)
	hwm := <-peak
	if err != nil {
		fatalf("restore %v: %v %s", args, err, out.Bytes())
	}
	var wb int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		wb = ru.Oublock * 512
	}
	return restoreCmd{seconds: took.Seconds(), rssMiB: hwm, writeBytes: wb}
}

// restoreWiped wipes node3, restores it from the backup and waits until it
// holds a value written after the backup.
func (u *ours) restoreWiped(ctx context.Context, backup string) (float64, restoreCmd) {
	after := uint64(time.Now().UnixNano())
	u.mark(ctx, after)
	n3 := u.lc.Nodes[2]
	u.lc.Stop(n3.Name, true)
	os.RemoveAll(n3.DataDir)
	// A wiped node's folder is made empty again and the restore is told
	// which node it is for, as an operator does (restore refuses a folder
	// that does not exist).
	if err := os.Mkdir(n3.DataDir, 0o700); err != nil {
		fatalf("recreate %s: %v", n3.DataDir, err)
	}
	t0 := time.Now()
	c := u.runRestore(u.bin, backup, "--data-dir", n3.DataDir, "--node", n3.Name)
	u.start(ctx, n3.Name)
	for !holds(ctx, n3, after) {
		u.tooLong(t0, "the wiped node to catch up")
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(t0).Seconds(), c
}

// authRun is an authoritative restore: command to every node serving the
// backup, the command alone, and the bytes written by the command and the
// three agents it took.
type authRun struct {
	seconds    float64
	cmd        restoreCmd
	writeBytes int64
	hiveBytes  int64
}

// restoreAuthoritative stops the cluster, rolls it back to the backup with
// the restore command of bin, and waits until every node serves the
// backup's mark at the new generation.
func (u *ours) restoreAuthoritative(ctx context.Context, bin, backup string, want uint64) authRun {
	st, _ := client.GetNodeState(ctx, u.lc.Nodes[0].DataDir)
	oldGen := st.Generation
	if err := u.lc.Down(); err != nil {
		fatalf("%v", err)
	}
	t0 := time.Now()
	c := u.runRestore(bin, backup, "--authoritative", "--data-dir", u.lc.Nodes[0].DataDir)
	pids := make([]int, len(u.lc.Nodes))
	var wg sync.WaitGroup
	for i, n := range u.lc.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pids[i] = u.start(ctx, n.Name)
		}()
	}
	wg.Wait()
	for _, n := range u.lc.Nodes {
		for {
			st, _ := client.GetNodeState(ctx, n.DataDir)
			if st.Generation > oldGen && holds(ctx, n, want) {
				break
			}
			u.tooLong(t0, "the authoritative restore to reach "+n.Name)
			time.Sleep(20 * time.Millisecond)
		}
	}
	r := authRun{seconds: time.Since(t0).Seconds(), cmd: c, writeBytes: c.writeBytes}
	// The agents started after the command: all they wrote since is the
	// restore's.
	who := fmt.Sprintf("command %.1f", float64(c.writeBytes)/(1<<20))
	for i, pid := range pids {
		wb, err := benchutil.WriteBytes(pid)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ckbench: bytes written by %s: %v\n", u.lc.Nodes[i].Name, err)
		}
		r.writeBytes += wb
		who += fmt.Sprintf(", %s %.1f", u.lc.Nodes[i].Name, float64(wb)/(1<<20))
	}
	if fi, err := os.Stat(u.dbPath("node1")); err == nil {
		r.hiveBytes = fi.Size()
	}
	fmt.Fprintf(os.Stderr, "ckbench: the authoritative restore's bytes written (MiB): %s; hive %.1f\n", who, float64(r.hiveBytes)/(1<<20))
	// What the stale members moved aside is kept by design; the benchmark
	// removes it, or rounds of a 1M-key hive would fill the disk.
	for _, n := range u.lc.Nodes {
		os.RemoveAll(filepath.Join(n.DataDir, "aside"))
	}
	return r
}

// start starts a node and returns its pid; the callers wait for what they measure, so a start
// slower than localcluster's own wait (a node moving a large state aside)
// is not an error, but a node whose process is gone is.
func (u *ours) start(ctx context.Context, name string) int {
	nd, err := u.lc.Start(ctx, name)
	if err == nil {
		return nd.PID
	}
	if nd == nil || nd.PID <= 0 || syscall.Kill(nd.PID, 0) != nil {
		fatalf("start %s: %v", name, err)
	}
	fmt.Fprintf(os.Stderr, "ckbench: %v; waiting on\n", err)
	return nd.PID
}

// tooLong gives up on a restore that has not finished in half an hour.
func (u *ours) tooLong(t0 time.Time, what string) {
	if time.Since(t0) > 30*time.Minute {
		fatalf("gave up waiting for %s after %v", what, time.Since(t0).Round(time.Second))
	}
}

func fileMiB(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}
