package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

var ourBin, etcdLoadBin string

// current is the table being filled, printed as it stands if the run is
// interrupted.
var current *table

// runSize measures everything on hives of n keys and prints the table.
func runSize(ctx context.Context, o options, n int) {
	dir := filepath.Join(o.work, fmt.Sprintf("keys-%d", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fatalf("%v", err)
	}
	defer os.RemoveAll(dir)
	if ourBin == "" {
		ourBin = buildOurs(o)
	}
	if o.profile != "" {
		os.Setenv("CLUSTERKEEP_PPROF_DIR", o.profile)
	}
	t := &table{title: fmt.Sprintf("%d keys of %d bytes, %d writers, %d rounds", n, o.valueSize, o.writers, o.runs)}
	current = t
	u := startOurs(ctx, o, ourBin, dir)
	took := u.load(ctx, n, o.valueSize)
	t.note("clusterkeep: loaded in %.1f s (%.0f keys/s) through the cluster API, transactions of 500 set-value, 4 in flight; clusdb %.1f MiB.",
		took.Seconds(), float64(n)/took.Seconds(), fileMiB(u.dbPath("node1")))
	var e *etcdCluster
	if o.etcd {
		if etcdLoadBin == "" {
			etcdLoadBin = buildEtcdLoad(o)
		}
		e = startEtcd(filepath.Join(dir, "etcd"), etcdLoadBin)
		took := e.loadKeys(n, o.valueSize)
		t.note("etcd %s: loaded in %.1f s (%.0f keys/s) through the v3 client, transactions of 500 puts, 4 in flight; member db %.1f MiB.",
			etcdVersion(), took.Seconds(), float64(n)/took.Seconds(), e.dbMiB())
	}
	for round := range o.runs {
		fmt.Fprintf(os.Stderr, "ckbench: %d keys, round %d of %d\n", n, round+1, o.runs)
		if o.want("backup") {
			backupRound(o, t, u, e, dir)
		}
		if o.want("writes") {
			writesRound(ctx, o, t, u, e, round)
		}
		if o.want("restore") {
			restoreRound(ctx, o, t, u, e, dir)
		}
	}
	if e != nil {
		e.stop()
	}
	u.stop()
	t.print()
}

func backupRound(o options, t *table, u *ours, e *etcdCluster, dir string) {
	to := filepath.Join(dir, "backups")
	b := u.backup(to)
	raw := rawLimit(u.dbPath(b.node), filepath.Join(dir, "raw-copy"))
	os.RemoveAll(to)
	t.fig("1. backup create (s)", "%.3f").add(b.seconds)
	t.fig("1. cp + sync + openssl dgst -sha256 of clusdb (s)", "%.3f").add(raw)
	t.targeted("1. backup / raw limit (same round)", "%.2f", "<= 1.25", func(v float64) bool { return v <= 1.25 }).add(b.seconds / raw)
	t.targeted("3. backup create peak memory (MiB)", "%.1f", "<= 64", func(v float64) bool { return v <= 64 }).add(b.rssMiB)
	if o.compare != "" {
		c := u.backupWith(o.compare, to)
		os.RemoveAll(to)
		t.fig("1c. backup create, -compare's binary (s)", "%.3f").add(c.seconds)
		t.fig("1c. -compare's backup / raw limit (same round)", "%.2f").add(c.seconds / raw)
		t.fig("1c. -compare's backup / this one's (same round)", "%.2f").add(c.seconds / b.seconds)
		t.fig("3c. -compare's backup peak memory (MiB)", "%.1f").add(c.rssMiB)
	}
	if e != nil {
		snap := filepath.Join(dir, "etcd.snapshot")
		s := e.snapshot(snap)
		os.Remove(snap)
		t.fig("5. etcdctl snapshot save (s)", "%.3f").add(s)
		t.targeted("5. etcd snapshot save / backup create (same round)", "%.2f", ">= 4", func(v float64) bool { return v >= 4 }).add(s / b.seconds)
	}
}

func writesRound(ctx context.Context, o options, t *table, u *ours, e *etcdCluster, round int) {
	w := fmt.Sprint(o.writers)
	var stopProf func()
	if round == 0 && o.profile != "" {
		stopProf = u.profileAgents(ctx, o.profile, "idle", o.writeFor)
	}
	idle := u.writeLoad(ctx, o.writers, o.valueSize, o.writeFor, nil)
	if stopProf != nil {
		stopProf()
		stopProf = u.profileAgents(ctx, o.profile, "backups", o.writeFor)
	}
	var bk, cbk writeRun
	var nb, cnb int
	// With -compare the two kinds of backup alternate which goes first.
	if o.compare != "" && round%2 == 1 {
		cbk, cnb = u.writeDuringBackups(ctx, o.compare, o.writers, o.valueSize, o.writeFor)
	}
	bk, nb = u.writeDuringBackups(ctx, u.bin, o.writers, o.valueSize, o.writeFor)
	if stopProf != nil {
		stopProf()
	}
	if o.compare != "" && round%2 == 0 {
		cbk, cnb = u.writeDuringBackups(ctx, o.compare, o.writers, o.valueSize, o.writeFor)
	}
	t.fig("2. write p50, "+w+" writers, idle (ms)", "%.1f").add(idle.p50)
	t.fig("2. write p99, "+w+" writers, idle (ms)", "%.1f").add(idle.p99)
	t.fig("2. write p50, "+w+" writers, during backups (ms)", "%.1f").add(bk.p50)
	t.fig("2. write p99, "+w+" writers, during backups (ms)", "%.1f").add(bk.p99)
	t.targeted("2. p99 during backups / idle p99 (same round)", "%.2f", "<= 1.25", func(v float64) bool { return v <= 1.25 }).add(bk.p99 / idle.p99)
	t.fig("2. slowest write during backups (ms)", "%.1f").add(bk.max)
	t.targeted("2. failed writes (idle + during backups)", "%.0f", "= 0", func(v float64) bool { return v == 0 }).add(float64(idle.failed + bk.failed))
	t.fig("2. writes/s idle", "%.0f").add(idle.rate)
	t.fig("2. writes/s during backups", "%.0f").add(bk.rate)
	t.fig("2. backups completed during the write run", "%.0f").add(float64(nb))
	if o.compare != "" {
		t.fig("2c. write p50 during -compare's backups (ms)", "%.1f").add(cbk.p50)
		t.fig("2c. write p99 during -compare's backups (ms)", "%.1f").add(cbk.p99)
		t.fig("2c. p99 during -compare's backups / idle p99 (same round)", "%.2f").add(cbk.p99 / idle.p99)
		t.fig("2c. slowest write during -compare's backups (ms)", "%.1f").add(cbk.max)
		t.fig("2c. failed writes during -compare's backups", "%.0f").add(float64(cbk.failed))
		t.fig("2c. writes/s during -compare's backups", "%.0f").add(cbk.rate)
		t.fig("2c. -compare's backups completed during the write run", "%.0f").add(float64(cnb))
	}
	if e != nil {
		ew := e.write(o.writers, o.valueSize, o.writeFor)
		t.fig("5. etcd write p50, "+w+" writers (ms)", "%.1f").add(ew.p50)
		t.fig("5. etcd write p99, "+w+" writers (ms)", "%.1f").add(ew.p99)
		t.fig("5. etcd writes/s", "%.0f").add(ew.rate)
		t.fig("5. etcd failed writes", "%.0f").add(float64(ew.failed))
		t.targeted("5. our writes/s / etcd's (same round)", "%.2f", ">= 1.5", func(v float64) bool { return v >= 1.5 }).add(idle.rate / ew.rate)
	}
}

func restoreRound(ctx context.Context, o options, t *table, u *ours, e *etcdCluster, dir string) {
	before := uint64(time.Now().UnixNano())
	u.mark(ctx, before)
	to := filepath.Join(dir, "restore-backups")
	b := u.backup(to, "--node", "node3")
	nonAuth, wiped := u.restoreWiped(ctx, b.path)
	auth := u.restoreAuthoritative(ctx, u.bin, b.path, before)
	var cmp authRun
	if o.compare != "" {
		cmp = u.restoreAuthoritative(ctx, o.compare, b.path, before)
	}
	os.RemoveAll(to)
	const mib = 1 << 20
	t.fig("4. restore of a wiped node, command to caught up (s)", "%.2f").add(nonAuth)
	t.fig("4. restore of a wiped node, the command alone (s)", "%.2f").add(wiped.seconds)
	t.fig("4. restore of a wiped node, command peak memory (MiB)", "%.1f").add(wiped.rssMiB)
	t.fig("4. restore of a wiped node, command bytes written (MiB)", "%.1f").add(float64(wiped.writeBytes) / mib)
	t.fig("4. authoritative restore, command to 3 nodes serving it (s)", "%.2f").add(auth.seconds)
	t.fig("4. authoritative restore, the command alone (s)", "%.2f").add(auth.cmd.seconds)
	t.targeted("4. authoritative restore command peak memory (MiB)", "%.1f", "<= 64", func(v float64) bool { return v <= 64 }).add(auth.cmd.rssMiB)
	t.fig("4. authoritative restore command, bytes written (MiB)", "%.1f").add(float64(auth.cmd.writeBytes) / mib)
	t.fig("4. authoritative restore, bytes written by the command and 3 agents (MiB)", "%.1f").add(float64(auth.writeBytes) / mib)
	if auth.hiveBytes > 0 {
		t.targeted("4. authoritative restore, bytes written / hive size", "%.2f", "<= 3.5", func(v float64) bool { return v <= 3.5 }).add(float64(auth.writeBytes) / float64(auth.hiveBytes))
	}
	if o.compare != "" {
		t.fig("4c. -compare's authoritative restore, command to 3 nodes serving it (s)", "%.2f").add(cmp.seconds)
		t.fig("4c. -compare's authoritative restore command alone (s)", "%.2f").add(cmp.cmd.seconds)
		t.fig("4c. -compare's authoritative restore command peak memory (MiB)", "%.1f").add(cmp.cmd.rssMiB)
		t.fig("4c. -compare's authoritative restore command, bytes written (MiB)", "%.1f").add(float64(cmp.cmd.writeBytes) / mib)
		t.fig("4c. -compare's authoritative restore, bytes written by the command and 3 agents (MiB)", "%.1f").add(float64(cmp.writeBytes) / mib)
	}
	if e != nil {
		want := fmt.Sprint(before)
		e.mark(want)
		snap := filepath.Join(dir, "etcd-restore.snapshot")
		e.snapshot(snap)
		s := e.restoreOne(snap, filepath.Join(dir, "etcd-restored"), want)
		os.Remove(snap)
		t.fig("5. etcdctl snapshot restore + start of 1 member (s)", "%.2f").add(s)
		t.targeted("5. etcd's restore / our authoritative restore (same round)", "%.2f", "> 1", func(v float64) bool { return v > 1 }).add(s / auth.seconds)
	}
}

// profileAgents takes a CPU profile of every agent for d, written to
// dir/<phase>-<node>.cpu.pprof, then its block profile so far
// (<phase>-<node>.block.pprof); the returned function waits for them.
func (u *ours) profileAgents(ctx context.Context, dir, phase string, d time.Duration) func() {
	var wg sync.WaitGroup
	for _, n := range u.lc.Nodes {
		matches, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("*-%d.addr", n.PID)))
		if len(matches) == 0 {
			fmt.Fprintf(os.Stderr, "ckbench: no profile address for %s (pid %d)\n", n.Name, n.PID)
			continue
		}
		addr, err := os.ReadFile(matches[0])
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := fmt.Sprintf("http://%s/cpu?seconds=%d", addr, int(d.Seconds()))
			resp, err := http.Get(url)
			if err != nil {
				fmt.Fprintf(os.Stderr, "ckbench: profile %s: %v\n", n.Name, err)
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%s.cpu.pprof", phase, n.Name)))
			if err != nil {
				return
			}
			defer f.Close()
			io.Copy(f, resp.Body)
			// The waits since the agent started, to this phase's end:
			// go tool pprof -base idle-N.block.pprof backups-N.block.pprof
			// is what the backups' run added.
			if resp, err := http.Get(fmt.Sprintf("http://%s/block", addr)); err == nil {
				defer resp.Body.Close()
				if f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%s.block.pprof", phase, n.Name))); err == nil {
					defer f.Close()
					io.Copy(f, resp.Body)
				}
			}
		}()
	}
	return wg.Wait
}
