// Command ckbench measures clusterkeep on a real three-node cluster on
// loopback: the backup of the cluster database against the machine's limit
// for the same bytes (cp, sync, openssl dgst -sha256), the backup's peak
// memory, and write latency with and without a backup running. Each figure
// is taken -runs times and reported as median (min–max).
//
//	go run ./bench/ckbench -keys 100000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
)

func main() {
	keys := flag.Int("keys", 100000, "keys of -value bytes to load")
	valueSize := flag.Int("value", 1024, "value size in bytes")
	runs := flag.Int("runs", 3, "runs of each figure")
	writers := flag.Int("writers", 16, "concurrent writers for the latency figures")
	writeFor := flag.Duration("write-for", 5*time.Second, "how long each latency run writes")
	dir := flag.String("dir", "", "work directory (default: a temporary one, removed)")
	flag.Parse()
	ctx := context.Background()
	work := *dir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "ckbench-"); err != nil {
			fatalf("%v", err)
		}
		defer os.RemoveAll(work)
	}
	bin := filepath.Join(work, "clusterkeep")
	build := exec.Command("go", "build", "-o", bin, "./cmd/clusterkeep")
	_, self, _, _ := runtime.Caller(0)
	build.Dir = filepath.Join(filepath.Dir(self), "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fatalf("build: %v\n%s", err, out)
	}
	lc, err := localcluster.Up(ctx, filepath.Join(work, "cluster"), 3, bin)
	if lc != nil {
		stopCluster = func() {
			for _, n := range lc.Nodes {
				lc.Stop(n.Name, true)
			}
		}
		defer stopCluster()
	}
	if err != nil {
		fatalf("%v", err)
	}
	// Clients here and the CLI it runs trust and prove what the cluster made.
	for _, kv := range lc.Env() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	c, err := client.OpenCluster(ctx, lc.APIAddrs())
	if err != nil {
		fatalf("%v", err)
	}
	fmt.Printf("machine: %d cores, %s; clusterkeep on loopback, 3 nodes\n", runtime.NumCPU(), cpuModel())
	start := time.Now()
	load(ctx, c, *keys, *valueSize)
	loadTook := time.Since(start)
	dbPath := filepath.Join(lc.Nodes[0].DataDir, hive.FileName)
	fi, _ := os.Stat(dbPath)
	fmt.Printf("loaded %d keys of %d bytes in %v (%.0f keys/s); clusdb %.1f MiB\n\n", *keys, *valueSize, loadTook.Round(time.Millisecond), float64(*keys)/loadTook.Seconds(), float64(fi.Size())/(1<<20))

	// 1. Backup against cp + sync + openssl of the same file, in the same run.
	var backups, limits, rss []float64
	for i := range *runs {
		to := filepath.Join(work, fmt.Sprintf("backups-%d", i))
		t0 := time.Now()
		cmd := exec.Command(bin, "backup", "create", "--to", to, "--data-dir", filepath.Join(work, "none"), "--cluster", lc.APIAddrs(), "--json")
		out, err := cmd.Output()
		if err != nil {
			fatalf("backup: %v %s", err, out)
		}
		backups = append(backups, time.Since(t0).Seconds())
		rss = append(rss, float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)/1024)
		var res struct{ Node string }
		json.Unmarshal(out, &res)
		src := filepath.Join(lc.Nodes[0].DataDir, hive.FileName)
		for _, n := range lc.Nodes {
			if n.Name == res.Node {
				src = filepath.Join(n.DataDir, hive.FileName)
			}
		}
		limits = append(limits, rawLimit(src, filepath.Join(work, fmt.Sprintf("raw-%d", i))))
		os.RemoveAll(to)
	}
	fmt.Println("| figure | median | min | max |")
	fmt.Println("|---|---|---|---|")
	row("backup create (s)", backups)
	row("cp + sync + openssl dgst -sha256 (s)", limits)
	ratios := make([]float64, len(backups))
	for i := range backups {
		ratios[i] = backups[i] / limits[i]
	}
	row("backup / raw limit (same run)", ratios)
	row("backup create max RSS (MiB)", rss)

	// 2. Write latency, idle and with backups running back to back.
	var idleP50, idleP99, bkP50, bkP99, idleRate, bkRate []float64
	var failed int64
	for range *runs {
		p50, p99, rate, f := writeLoad(ctx, lc, *writers, *valueSize, *writeFor, nil)
		idleP50, idleP99, idleRate = append(idleP50, p50), append(idleP99, p99), append(idleRate, rate)
		failed += f
		stop := make(chan struct{})
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
				to := filepath.Join(work, "bk-load")
				exec.Command(bin, "backup", "create", "--to", to, "--data-dir", filepath.Join(work, "none"), "--cluster", lc.APIAddrs()).Run()
				os.RemoveAll(to)
			}
		}()
		p50, p99, rate, f = writeLoad(ctx, lc, *writers, *valueSize, *writeFor, stop)
		wg.Wait()
		bkP50, bkP99, bkRate = append(bkP50, p50), append(bkP99, p99), append(bkRate, rate)
		failed += f
	}
	row(fmt.Sprintf("write p50, %d writers, idle (ms)", *writers), idleP50)
	row(fmt.Sprintf("write p99, %d writers, idle (ms)", *writers), idleP99)
	row(fmt.Sprintf("write p50, %d writers, during backups (ms)", *writers), bkP50)
	row(fmt.Sprintf("write p99, %d writers, during backups (ms)", *writers), bkP99)
	p99r := make([]float64, len(bkP99))
	for i := range bkP99 {
		p99r[i] = bkP99[i] / idleP99[i]
	}
	row("p99 during backups / idle p99 (same run)", p99r)
	row("writes/s idle", idleRate)
	row("writes/s during backups", bkRate)
	fmt.Printf("\nfailed writes: %d\n", failed)

	// 4. Restores: a wiped node restored and caught up, and the whole
	// cluster rolled back authoritatively, to all three serving it.
	var nonAuth, auth []float64
	for i := range *runs {
		before := uint64(time.Now().UnixNano())
		mark(ctx, lc, before)
		to := filepath.Join(work, fmt.Sprintf("restore-backups-%d", i))
		out, err := exec.Command(bin, "backup", "create", "--to", to, "--data-dir", filepath.Join(work, "none"), "--cluster", lc.APIAddrs(), "--node", "node3", "--json").Output()
		if err != nil {
			fatalf("backup: %v %s", err, out)
		}
		var res struct{ Path string }
		json.Unmarshal(out, &res)
		nonAuth = append(nonAuth, timeNonAuthoritative(ctx, lc, bin, res.Path))
		auth = append(auth, timeAuthoritative(ctx, lc, bin, res.Path, before))
		os.RemoveAll(to)
	}
	row("restore of a wiped node, to caught up (s)", nonAuth)
	row("authoritative restore, to 3 nodes serving it (s)", auth)
}

// mark sets Bench/Mark to v through the cluster.
func mark(ctx context.Context, lc *localcluster.Cluster, v uint64) {
	c, err := client.OpenCluster(ctx, lc.APIAddrs())
	if err != nil {
		fatalf("%v", err)
	}
	if _, err := c.SetValue(ctx, "Bench/Mark", hive.Uint64Value("v", v)); err != nil {
		fatalf("%v", err)
	}
}

// holds reports whether nd's own copy has Bench/Mark = v.
func holds(ctx context.Context, nd localcluster.Node, v uint64) bool {
	got, err := client.Node(nd.API).GetValue(ctx, "Bench/Mark", "v", client.Stale())
	return err == nil && got.Uint64 == v
}

// timeNonAuthoritative wipes node3, restores it from the backup and waits
// until it holds a value written after the backup.
func timeNonAuthoritative(ctx context.Context, lc *localcluster.Cluster, bin, backup string) float64 {
	after := uint64(time.Now().UnixNano())
	mark(ctx, lc, after)
	n3 := lc.Nodes[2]
	lc.Stop(n3.Name, true)
	os.RemoveAll(n3.DataDir)
	t0 := time.Now()
	if out, err := exec.Command(bin, "restore", backup, "--data-dir", n3.DataDir).CombinedOutput(); err != nil {
		fatalf("restore: %v %s", err, out)
	}
	if _, err := lc.Start(ctx, n3.Name); err != nil {
		fatalf("%v", err)
	}
	for !holds(ctx, n3, after) {
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(t0).Seconds()
}

// timeAuthoritative rolls the cluster back to the backup and waits until
// every node serves the backup's value at the new generation.
func timeAuthoritative(ctx context.Context, lc *localcluster.Cluster, bin, backup string, want uint64) float64 {
	st, _ := client.GetNodeState(ctx, lc.Nodes[0].DataDir)
	oldGen := st.Generation
	if err := lc.Down(); err != nil {
		fatalf("%v", err)
	}
	t0 := time.Now()
	if out, err := exec.Command(bin, "restore", backup, "--authoritative", "--data-dir", lc.Nodes[0].DataDir).CombinedOutput(); err != nil {
		fatalf("restore --authoritative: %v %s", err, out)
	}
	var wg sync.WaitGroup
	for _, n := range lc.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := lc.Start(ctx, n.Name); err != nil {
				fatalf("%v", err)
			}
		}()
	}
	wg.Wait()
	for _, n := range lc.Nodes {
		for {
			st, _ := client.GetNodeState(ctx, n.DataDir)
			if st.Generation > oldGen && holds(ctx, n, want) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return time.Since(t0).Seconds()
}

// stopCluster stops the cluster's agents; fatalf calls it, as deferred
// calls do not run on exit.
var stopCluster = func() {}

func fatalf(format string, a ...any) {
	stopCluster()
	log.Fatalf(format, a...)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range splitLines(string(b)) {
		if len(l) > 10 && l[:10] == "model name" {
			for i := range l {
				if l[i] == ':' {
					return l[i+2:]
				}
			}
		}
	}
	return "unknown CPU"
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := range s {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// load writes n keys in transactions of 500, four at a time.
func load(ctx context.Context, c *client.Cluster, n, size int) {
	const batch = 500
	var next atomic.Int64
	var wg sync.WaitGroup
	val := make([]byte, size)
	for i := range val {
		val[i] = byte(i)
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(batch)) - batch
				if from >= n {
					return
				}
				var ops []hive.Op
				for k := from; k < min(from+batch, n); k++ {
					ops = append(ops, hive.SetValue(fmt.Sprintf("Load/%03d/k%07d", k%1000, k), hive.BinaryValue("v", val)))
				}
				if _, err := c.Txn(ctx, hive.Txn{Ops: ops}); err != nil {
					fatalf("load: %v", err)
				}
			}
		}()
	}
	wg.Wait()
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

// writeLoad runs writers for d (or until stop closes, if given) and returns
// p50 and p99 latency in ms, writes per second and failed writes.
func writeLoad(ctx context.Context, lc *localcluster.Cluster, writers, size int, d time.Duration, stop chan struct{}) (float64, float64, float64, int64) {
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	val := make([]byte, size)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.OpenCluster(ctx, lc.APIAddrs())
			if err != nil {
				fatalf("%v", err)
			}
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				_, err := c.SetValue(ctx, fmt.Sprintf("Bench/w%d/k%d", w, i%1000), hive.BinaryValue("v", val))
				el := time.Since(t0)
				if err != nil {
					failed.Add(1)
					continue
				}
				mu.Lock()
				lat = append(lat, el)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if stop != nil {
		close(stop)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	return ms(0.5), ms(0.99), float64(len(lat)) / d.Seconds(), failed.Load()
}

func row(name string, v []float64) {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	fmt.Printf("| %s | %.3f | %.3f | %.3f |\n", name, s[len(s)/2], s[0], s[len(s)-1])
}
