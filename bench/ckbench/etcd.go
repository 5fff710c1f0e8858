package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// etcdCluster is three etcd members on loopback, started by the benchmark
// (Debian's etcd-server), and the etcdload client program.
type etcdCluster struct {
	dir     string
	load    string // the etcdload binary
	members []etcdMember
}

type etcdMember struct {
	name, client, peer, dataDir string
	cmd                         *exec.Cmd
}

// quota lifts etcd's default 2 GiB backend quota: 1M keys of 1 KiB and
// their history take more.
const etcdQuota = "8589934592"

func buildEtcdLoad(o options) string {
	bin := filepath.Join(o.work, "etcdload")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(o.repo, "bench", "etcdload")
	if out, err := build.CombinedOutput(); err != nil {
		fatalf("build bench/etcdload: %v\n%s", err, out)
	}
	return bin
}

func etcdVersion() string {
	out, err := exec.Command("etcd", "--version").Output()
	if err != nil {
		return "unknown"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(strings.TrimPrefix(first, "etcd Version:"))
}

func freeAddrs(n int) []string {
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fatalf("find a free port: %v", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

func startEtcd(dir, loadBin string) *etcdCluster {
	e := &etcdCluster{dir: dir, load: loadBin}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fatalf("%v", err)
	}
	addrs := freeAddrs(6)
	var initial []string
	for i := range 3 {
		m := etcdMember{name: fmt.Sprintf("etcd%d", i+1), client: addrs[2*i], peer: addrs[2*i+1], dataDir: filepath.Join(dir, fmt.Sprintf("etcd%d", i+1))}
		e.members = append(e.members, m)
		initial = append(initial, m.name+"=http://"+m.peer)
	}
	for i := range e.members {
		m := &e.members[i]
		m.cmd = startEtcdMember(m, strings.Join(initial, ","), "new", filepath.Join(dir, m.name+".log"))
		cmd := m.cmd
		atExit(func() { stopProcess(cmd) })
	}
	e.waitHealthy(e.endpoints())
	return e
}

// startEtcdMember starts one etcd member with the benchmark's settings.
func startEtcdMember(m *etcdMember, initial, state, logPath string) *exec.Cmd {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fatalf("%v", err)
	}
	defer logf.Close()
	cmd := exec.Command("etcd", "--name", m.name, "--data-dir", m.dataDir,
		"--listen-client-urls", "http://"+m.client, "--advertise-client-urls", "http://"+m.client,
		"--listen-peer-urls", "http://"+m.peer, "--initial-advertise-peer-urls", "http://"+m.peer,
		"--initial-cluster", initial, "--initial-cluster-state", state, "--initial-cluster-token", "ckbench",
		"--quota-backend-bytes", etcdQuota, "--max-txn-ops", "500", "--max-request-bytes", "4194304",
		"--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fatalf("start etcd: %v", err)
	}
	return cmd
}

func stopProcess(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func (e *etcdCluster) stop() {
	for _, m := range e.members {
		stopProcess(m.cmd)
	}
}

func (e *etcdCluster) endpoints() string {
	var eps []string
	for _, m := range e.members {
		eps = append(eps, m.client)
	}
	return strings.Join(eps, ",")
}

func etcdctl(args ...string) ([]byte, error) {
	cmd := exec.Command("etcdctl", args...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	return cmd.CombinedOutput()
}

func (e *etcdCluster) waitHealthy(endpoints string) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := etcdctl("--endpoints", endpoints, "endpoint", "health")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			fatalf("etcd did not become healthy: %v %s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs etcdload against endpoints and decodes its JSON result.
func (e *etcdCluster) run(endpoints string, out any, args ...string) {
	cmd := exec.Command(e.load, append([]string{"-endpoints", endpoints}, args...)...)
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		fatalf("etcdload %v: %v", args, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			fatalf("etcdload %v: %v: %s", args, err, raw)
		}
	}
}

// loadKeys loads n keys of size bytes in transactions of 500 puts, four at
// a time: the same shape as the hive's load.
func (e *etcdCluster) loadKeys(n, size int) time.Duration {
	var r struct{ Seconds float64 }
	e.run(e.endpoints(), &r, "load", "-keys", fmt.Sprint(n), "-value", fmt.Sprint(size), "-batch", "500", "-conc", "4")
	return time.Duration(r.Seconds * float64(time.Second))
}

func (e *etcdCluster) write(writers, size int, d time.Duration) writeRun {
	var raw struct {
		P50  float64 `json:"p50_ms"`
		P99  float64 `json:"p99_ms"`
		Rate float64 `json:"rate"`
		Fail int64   `json:"failed"`
	}
	e.run(e.endpoints(), &raw, "write", "-writers", fmt.Sprint(writers), "-value", fmt.Sprint(size), "-for", d.String())
	return writeRun{p50: raw.P50, p99: raw.P99, rate: raw.Rate, failed: raw.Fail}
}

func (e *etcdCluster) mark(v string) {
	e.run(e.endpoints(), nil, "mark", "-value", v)
}

// snapshot runs etcdctl snapshot save against the second member (a
// follower, most often) and returns its time.
func (e *etcdCluster) snapshot(to string) float64 {
	t0 := time.Now()
	if out, err := etcdctl("--endpoints", e.members[1].client, "snapshot", "save", to); err != nil {
		fatalf("etcdctl snapshot save: %v %s", err, out)
	}
	return time.Since(t0).Seconds()
}

// restoreOne times etcdctl snapshot restore into a new data directory and
// the start of one member on it, until a linearizable read returns the
// marker the snapshot holds.
func (e *etcdCluster) restoreOne(snap, dir, want string) float64 {
	os.RemoveAll(dir)
	addrs := freeAddrs(2)
	m := etcdMember{name: "restored", client: addrs[0], peer: addrs[1], dataDir: filepath.Join(dir, "data")}
	initial := m.name + "=http://" + m.peer
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fatalf("%v", err)
	}
	t0 := time.Now()
	if out, err := etcdctl("snapshot", "restore", snap, "--name", m.name, "--data-dir", m.dataDir,
		"--initial-cluster", initial, "--initial-advertise-peer-urls", "http://"+m.peer, "--initial-cluster-token", "ckbench-restored"); err != nil {
		fatalf("etcdctl snapshot restore: %v %s", err, out)
	}
	cmd := startEtcdMember(&m, initial, "new", filepath.Join(dir, "etcd.log"))
	e.run(m.client, nil, "wait", "-value", want)
	took := time.Since(t0).Seconds()
	stopProcess(cmd)
	os.RemoveAll(dir)
	return took
}

func (e *etcdCluster) dbMiB() float64 {
	return fileMiB(filepath.Join(e.members[0].dataDir, "member", "snap", "db"))
}
