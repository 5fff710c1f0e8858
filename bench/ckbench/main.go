// Command ckbench is clusterkeep's benchmark suite. For each hive size it
// starts a real three-node clusterkeep cluster on loopback, and beside it a
// three-member etcd cluster (Debian's etcd, installed by bench/setup.sh),
// loads both with the same keys, and measures, in rounds so that every
// ratio compares figures of the same round:
//
//  1. clusterkeep backup create against the machine's limit for the same
//     bytes (cp of the node's clusdb, sync, openssl dgst -sha256 of the copy);
//  2. write latency (p50, p99) and throughput with concurrent writers, idle
//     and with backups running back to back;
//  3. the backup's peak memory (its VmHWM, sampled from /proc);
//  4. restores: a wiped node restored and caught up, and the whole cluster
//     rolled back authoritatively to all three members serving it, with
//     the restore command's own time, peak memory and bytes written, and
//     the bytes written by it and the three agents (/proc/PID/io);
//  5. etcd side by side: three-member write throughput, etcdctl snapshot
//     save, and etcdctl snapshot restore plus the start of one member.
//
// Each figure is reported as median (min–max) over -runs rounds, with its
// target where issue 11 sets one.
//
//	go run ./bench/ckbench                       # 100k and 1M keys of 1 KiB
//	go run ./bench/ckbench -keys 100000 -runs 3  # one size
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	keys      []int
	valueSize int
	runs      int
	writers   int
	writeFor  time.Duration
	etcd      bool
	work      string
	repo      string
	profile   string
	compare   string
	only      map[string]bool
}

func main() {
	keys := flag.String("keys", "100000,1000000", "comma-separated hive sizes (keys of -value bytes)")
	valueSize := flag.Int("value", 1024, "value size in bytes")
	runs := flag.Int("runs", 3, "rounds: each figure is taken once per round")
	writers := flag.Int("writers", 16, "concurrent writers for the write figures")
	writeFor := flag.Duration("write-for", 10*time.Second, "how long each write run lasts (at least one whole backup with backups running)")
	etcd := flag.Bool("etcd", true, "measure etcd side by side (runs bench/setup.sh when etcd is not installed)")
	dir := flag.String("dir", "", "work directory (default: a temporary one, removed at the end)")
	profile := flag.String("profile", "", "write into this directory CPU profiles of the agents during the first round's write runs, and CPU and heap profiles of every clusterkeep command the suite runs (backup create, restore) over its whole run")
	compare := flag.String("compare", "", "another clusterkeep binary: each round also runs its backup create (alone and under the writers) and its authoritative restore command beside this tree's, on the same cluster, for before/after figures of a change to the backup or restore process")
	only := flag.String("only", "", "comma-separated parts to run (backup,writes,restore); default all")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	o := options{valueSize: *valueSize, runs: *runs, writers: *writers, writeFor: *writeFor, etcd: *etcd, profile: *profile, only: map[string]bool{}}
	for _, s := range strings.Split(*keys, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fatalf("-keys: %q is not a positive number", s)
		}
		o.keys = append(o.keys, n)
	}
	for _, p := range strings.Split(*only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.only[p] = true
		}
	}
	if *compare != "" {
		abs, err := filepath.Abs(*compare)
		if err != nil {
			fatalf("-compare: %v", err)
		}
		o.compare = abs
	}
	if o.runs < 1 {
		fatalf("-runs must be at least 1")
	}
	_, self, _, _ := runtime.Caller(0)
	o.repo = filepath.Clean(filepath.Join(filepath.Dir(self), "..", ".."))
	o.work = *dir
	if o.work == "" {
		var err error
		if o.work, err = os.MkdirTemp("", "ckbench-"); err != nil {
			fatalf("%v", err)
		}
		defer os.RemoveAll(o.work)
	} else if err := os.MkdirAll(o.work, 0o755); err != nil {
		fatalf("%v", err)
	}
	if o.profile != "" {
		abs, err := filepath.Abs(o.profile)
		if err != nil {
			fatalf("%v", err)
		}
		o.profile = abs
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			fatalf("%v", err)
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		if current != nil {
			current.note("Interrupted (%v): the figures so far.", s)
			current.print()
		}
		fatalf("interrupted")
	}()
	if o.etcd {
		setupEtcd(o.repo)
	} else {
		fmt.Println("etcd side by side: off (-etcd=false)")
	}
	fmt.Printf("machine: %d cores, %s, %.1f GiB memory, %s\n", runtime.NumCPU(), cpuModel(), memTotalGiB(), kernel())
	fmt.Printf("rounds: %d; writers: %d; write runs of %v; values of %d bytes\n", o.runs, o.writers, o.writeFor, o.valueSize)
	for _, n := range o.keys {
		runSize(context.Background(), o, n)
	}
}

// setupEtcd runs the suite's setup script when etcd or etcdctl is missing.
func setupEtcd(repo string) {
	_, e1 := exec.LookPath("etcd")
	_, e2 := exec.LookPath("etcdctl")
	if e1 == nil && e2 == nil {
		return
	}
	fmt.Println("etcd or etcdctl is not installed: running bench/setup.sh")
	cmd := exec.Command(filepath.Join(repo, "bench", "setup.sh"))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fatalf("bench/setup.sh: %v (run it by hand, or pass -etcd=false)", err)
	}
}

func (o options) want(part string) bool { return len(o.only) == 0 || o.only[part] }

// cleanups run, last first, on a normal end and from fatalf, as deferred
// calls do not run on exit.
var cleanups []func()

func atExit(f func()) { cleanups = append(cleanups, f) }

func runCleanups() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func fatalf(format string, a ...any) {
	runCleanups()
	fmt.Fprintf(os.Stderr, "ckbench: "+format+"\n", a...)
	os.Exit(1)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotalGiB() float64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / (1 << 20)
		}
	}
	return 0
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return "Linux " + strings.TrimSpace(string(b))
}
