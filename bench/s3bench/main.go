// Command s3bench compares a backup to an S3-compatible server on loopback
// (versitygw, POSIX back end, as the tests run it) with a backup of the
// same hive to a local directory, and measures the peak memory (its VmHWM,
// sampled from /proc) of the backup process for each. Each figure is taken -runs times and
// reported as median (min–max).
//
//	go run ./bench/s3bench -keys 100000 -value 1024
//	go run ./bench/s3bench -keys 1024 -value 1048576 -runs 1   # ~1 GiB
package main

import (
	"bytes"

	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterkeep/clusterkeep/bench/benchutil"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	"github.com/clusterkeep/clusterkeep/internal/s3server"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

func main() {
	keys := flag.Int("keys", 100000, "keys of -value bytes to load")
	valueSize := flag.Int("value", 1024, "value size in bytes")
	runs := flag.Int("runs", 3, "runs of each figure")
	dir := flag.String("dir", "", "work directory (default: a temporary one, removed)")
	flag.Parse()
	ctx := context.Background()
	work := *dir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "s3bench-"); err != nil {
			fatalf("%v", err)
		}
		defer os.RemoveAll(work)
	}
	bin := filepath.Join(work, "clusterkeep")
	build := exec.Command("go", "build", "-o", bin, "./cmd/clusterkeep")
	build.Dir = s3server.ModuleRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fatalf("build: %v\n%s", err, out)
	}
	gw, err := s3server.Install()
	if err != nil {
		fatalf("%v", err)
	}
	srv, err := s3server.Start(gw, filepath.Join(work, "s3"))
	if err != nil {
		fatalf("%v", err)
	}
	defer srv.Stop()
	if err := srv.MakeBucket(ctx, "bench"); err != nil {
		fatalf("make bucket: %v", err)
	}
	lc, err := localcluster.Up(ctx, filepath.Join(work, "cluster"), 1, bin)
	if lc != nil {
		defer func() {
			for _, n := range lc.Nodes {
				lc.Stop(n.Name, true)
			}
		}()
	}
	if err != nil {
		fatalf("%v", err)
	}
	env := append(os.Environ(), lc.Env()...)
	env = append(env, srv.Env()...)
	for _, kv := range lc.Env() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	c, err := client.OpenCluster(ctx, lc.APIAddrs())
	if err != nil {
		fatalf("%v", err)
	}
	fmt.Printf("machine: %d cores; clusterkeep on loopback, 1 node; versitygw (POSIX back end) on loopback, same disk\n", runtime.NumCPU())
	start := time.Now()
	load(ctx, c, *keys, *valueSize)
	fi, _ := os.Stat(filepath.Join(lc.Nodes[0].DataDir, hive.FileName))
	fmt.Printf("loaded %d keys of %d bytes in %v; clusdb %.1f MiB\n\n", *keys, *valueSize, time.Since(start).Round(time.Millisecond), float64(fi.Size())/(1<<20))

	backupOnce := func(to string) (float64, float64) {
		cmd := exec.Command(bin, "backup", "create", "--to", to, "--data-dir", filepath.Join(work, "none"), "--timeout", "1h", "--json")
		cmd.Env = env
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			fatalf("backup to %s: %v", to, err)
		}
		done, peak := make(chan struct{}), make(chan float64, 1)
		go func() { peak <- benchutil.WatchHWM(cmd.Process.Pid, done) }()
		err := cmd.Wait()
		took := time.Since(t0).Seconds()
		close(done)
		hwm := <-peak
		out := stdout.Bytes()
		if err != nil {
			fatalf("backup to %s: %v %s", to, err, out)
		}
		var res struct{ Path string }
		json.Unmarshal(out, &res)
		// The set is checked whole, as restore would read it.
		v := exec.Command(bin, "backup", "verify", res.Path, "--timeout", "1h")
		v.Env = env
		if out, err := v.CombinedOutput(); err != nil {
			fatalf("verify %s: %v %s", res.Path, err, out)
		}
		// The process's own peak (VmHWM), sampled while it runs: rusage's
		// ru_maxrss would report this program's peak too, inherited at exec.
		return took, hwm
	}
	var dirT, dirRSS, s3T, s3RSS, ratio []float64
	for i := range *runs {
		dt, dr := backupOnce(filepath.Join(work, fmt.Sprintf("backups-%d", i)))
		st, sr := backupOnce(fmt.Sprintf("s3://bench/run-%d", i))
		dirT, dirRSS, s3T, s3RSS = append(dirT, dt), append(dirRSS, dr), append(s3T, st), append(s3RSS, sr)
		ratio = append(ratio, st/dt)
		os.RemoveAll(filepath.Join(work, fmt.Sprintf("backups-%d", i)))
		os.RemoveAll(filepath.Join(srv.Dir, "bench", fmt.Sprintf("run-%d", i)))
	}
	fmt.Printf("| figure (%d runs) | median | min | max |\n|---|---|---|---|\n", *runs)
	row("backup create to a directory (s)", dirT)
	row("backup create to S3 on loopback (s)", s3T)
	row("S3 / directory (same run)", ratio)
	row("directory: backup peak memory (MiB)", dirRSS)
	row("S3: backup peak memory (MiB)", s3RSS)
}

func load(ctx context.Context, c *client.Cluster, n, size int) {
	batch := max(1, min(500, (4<<20)/size))
	var next atomic.Int64
	var wg sync.WaitGroup
	val := make([]byte, size)
	for i := range val {
		val[i] = byte(i * 7)
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(int64(batch))) - batch
				if from >= n {
					return
				}
				var ops []wire.Op
				for k := from; k < min(from+batch, n); k++ {
					ops = append(ops, wire.SetValue(fmt.Sprintf("Load/%03d/k%07d", k%1000, k), wire.BinaryValue("v", val)))
				}
				if _, err := c.Txn(ctx, wire.Txn{Ops: ops}); err != nil {
					fatalf("load: %v", err)
				}
			}
		}()
	}
	wg.Wait()
}

func row(name string, v []float64) {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	fmt.Printf("| %s | %.2f | %.2f | %.2f |\n", name, s[len(s)/2], s[0], s[len(s)-1])
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "s3bench: "+format+"\n", a...)
	os.Exit(1)
}
