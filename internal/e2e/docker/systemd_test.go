package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// machine is one container booting systemd as PID 1: a Debian host of the
// package test, with clusterkeep installed from the package.
type machine struct {
	name      string // node1, node2, node3: the host name and the node name
	container string
	ip        string
}

// machines are the package test's three hosts on one private network.
type machines struct {
	t  *testing.T
	c  *cluster // the suite's helpers: network, docker, eventually
	ms []*machine
}

// The package as an operator uses it, on three Debian hosts that boot real
// systemd: the package installs the binary, the unit, the user and the
// folders and starts nothing; the agents run as clusterkeep.service, node1
// creates the cluster and the others join with its join token; a group of
// one systemd resource runs its unit on its owner, started by systemd for
// the unprivileged agent through polkit, and when the owner's host shuts
// down the unit runs on the next owner and nowhere else (systemctl on each
// host says so); the host comes back with its agent started at boot; when
// an owner's agent is killed, systemd stops the unit bound to it and
// restarts the agent; a backup is taken on a node; purging the package
// leaves the node's data.
func TestPackageOnThreeSystemdHosts(t *testing.T) {
	img := systemdImageFor(t)
	deb := buildDeb(t)
	m := &machines{t: t, c: &cluster{t: t, name: "cke2e-" + runID + "-pkg"}}
	m.boot(img)
	start := time.Now()

	// On the three at once: dpkg takes seconds on each.
	m.each(func(h *machine) error {
		if _, err := docker(ctx(t), "cp", deb, h.container+":/var/tmp/clusterkeep.deb"); err != nil {
			return err
		}
		_, err := m.try(h, "dpkg -i /var/tmp/clusterkeep.deb")
		return err
	})
	n1, n2, n3 := m.ms[0], m.ms[1], m.ms[2]
	// What the package made, and that it started nothing.
	for script, want := range map[string]string{
		"stat -c '%a %U:%G' /var/lib/clusterkeep":                                                          "700 clusterkeep:clusterkeep",
		"stat -c '%a %U:%G' /etc/clusterkeep":                                                              "750 root:clusterkeep",
		"getent passwd clusterkeep | cut -d: -f6,7":                                                        "/var/lib/clusterkeep:/usr/sbin/nologin",
		"systemctl is-enabled clusterkeep.service":                                                         "enabled",
		"systemctl is-active clusterkeep.service || :":                                                     "inactive",
		"systemd-analyze verify --man=no clusterkeep.service 2>&1":                                         "",
		"ls /usr/share/man/man1/clusterkeep-agent.1.gz /usr/share/bash-completion/completions/clusterkeep": "/usr/share/bash-completion/completions/clusterkeep\n/usr/share/man/man1/clusterkeep-agent.1.gz",
	} {
		if got := m.must(n1, script); got != want {
			t.Errorf("after dpkg -i, %s: %q, want %q", script, got, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The systemd resource's unit, bound to the agent's unit as the README
	// says, and listed in the polkit rule the package installed.
	m.each(func(h *machine) error {
		_, err := m.try(h, `printf '[Unit]\nDescription=clusterkeep package test service\nBindsTo=clusterkeep.service\nAfter=clusterkeep.service\n[Service]\nExecStart=/bin/sleep infinity\n' > /etc/systemd/system/ckdemo.service
sed -i 's|// "web.service",|"ckdemo.service",|' /etc/polkit-1/rules.d/50-clusterkeep.rules
grep -q '"ckdemo.service",' /etc/polkit-1/rules.d/50-clusterkeep.rules
systemctl daemon-reload`)
		return err
	})

	// node1 creates the cluster; the others join with its join token.
	m.configure(n1, `"create": "pkg"`)
	m.must(n1, "systemctl start clusterkeep")
	var token string
	m.c.eventually("node1 wrote the join token", 2*time.Minute, func() error {
		out, code := m.sh(n1, "cat /var/lib/clusterkeep/join-token")
		if code != 0 || out == "" {
			return fmt.Errorf("no join token yet (exit %d)", code)
		}
		token = out
		return nil
	})
	for _, h := range []*machine{n2, n3} {
		m.configure(h, `"join": ["`+n1.ip+`:7400"]`)
		m.must(h, "umask 077; echo CLUSTERKEEP_JOIN_TOKEN=\"$1\" > /etc/clusterkeep/agent.env; systemctl start clusterkeep", token)
	}
	m.waitAllUp(n1)
	t.Logf("three agents Up as clusterkeep.service %v after the install", time.Since(start).Round(time.Second))
	if got := m.must(n2, "stat -c %U /proc/$(systemctl show -P MainPID clusterkeep.service)"); got != "clusterkeep" {
		t.Fatalf("the agent runs as %q, want the user clusterkeep", got)
	}

	m.ck(n1, "resource", "add", "demo", "--type", "systemd", "--unit", "ckdemo.service")
	m.ck(n1, "group", "create", "site", "--resources", "demo", "--preferred-owners", "node2,node3", "--wanted", "online")
	m.waitGroup(n1, "site", "node2", "")
	m.waitUnits(map[*machine]bool{n1: false, n2: true, n3: false})

	// node2's host shuts down (systemd halts it, as `poweroff` would).
	stopped := time.Now()
	m.docker("stop", "-t", "120", n2.container)
	m.waitGroup(n1, "site", "", "node2")
	t.Logf("node2's host stopped: the group online elsewhere after %v", time.Since(stopped).Round(100*time.Millisecond))
	m.waitUnits(map[*machine]bool{n1: false, n3: true})

	// It boots again: its agent starts (enabled, configured) and rejoins;
	// the group stays where it is (failback never), so the unit does not
	// run on node2.
	m.docker("start", n2.container)
	m.waitBooted(n2)
	m.waitAllUp(n1)
	m.waitUnits(map[*machine]bool{n1: false, n2: false, n3: true})
	if st := m.waitGroup(n1, "site", "", ""); st.Owner != "node3" {
		t.Fatalf("after node2 came back the group runs on %s, want node3 (failback never)", st.Owner)
	}

	// node3's agent dies (SIGKILL): systemd kills what is left of its unit
	// (the unit guard among it), BindsTo= stops ckdemo.service, and
	// Restart=on-failure starts the agent again; the group is then Online
	// and its unit runs where it is Online, and nowhere else.
	since := "@" + strconv.FormatInt(time.Now().Unix()-1, 10)
	m.must(n3, "systemctl kill --signal=KILL --kill-whom=main clusterkeep.service")
	m.c.eventually("systemd restarted node3's agent", 2*time.Minute, func() error {
		out, _ := m.sh(n3, "echo $(systemctl show -P NRestarts clusterkeep.service) $(systemctl is-active clusterkeep.service)")
		if out != "1 active" {
			return fmt.Errorf("restarts, state: %s", out)
		}
		return nil
	})
	if out := m.must(n3, "journalctl --no-pager -o cat -u ckdemo.service --since "+since); !strings.Contains(out, "Stopped ckdemo.service") {
		t.Fatalf("ckdemo.service was not stopped when node3's agent died; its journal since: %q", out)
	}
	m.waitAllUp(n1)
	m.waitOwnerRunsUnit(n1, "site")

	// Back up on a node, as root, as the README does: the backup program
	// finds the node running on the host by itself.
	m.must(n1, "clusterkeep backup create --to /root/backups")
	if out := m.must(n1, "clusterkeep backup list /root/backups"); !strings.Contains(out, "pkg-") {
		t.Fatalf("backup list shows no set of the cluster pkg:\n%s", out)
	}

	// Purging the package stops the agent (its group is elsewhere) and
	// removes what it installed, and leaves the node's data.
	m.must(n1, "dpkg --purge clusterkeep")
	for script, want := range map[string]string{
		"test -e /usr/bin/clusterkeep && echo present || echo gone":                                "gone",
		"test -e /usr/lib/systemd/system/clusterkeep.service && echo present || echo gone":         "gone",
		"test -f /var/lib/clusterkeep/clusdb && test -f /var/lib/clusterkeep/node.db && echo kept": "kept",
		"grep -lx clusterkeep /proc/[0-9]*/comm 2>/dev/null || echo none":                          "none",
	} {
		if got := m.must(n1, script); got != want {
			t.Errorf("after dpkg --purge, %s: %q, want %q", script, got, want)
		}
	}
	t.Logf("the package test took %v after the image and the package were ready", time.Since(start).Round(time.Second))
}

// boot starts the three hosts on a private network and waits until
// systemd has booted each.
func (m *machines) boot(img string) {
	t := m.t
	net, pfx, err := m.c.network("net", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.teardown(net) })
	for i := range 3 {
		h := &machine{name: fmt.Sprintf("node%d", i+1), container: fmt.Sprintf("%s-node%d", m.c.name, i+1), ip: fmt.Sprintf("%s%d", pfx, 10+i)}
		m.ms = append(m.ms, h)
		// systemd as PID 1: the host's cgroups read-only, /run and
		// /run/lock as tmpfs, and SIGRTMIN+3 for docker stop, which
		// systemd takes as "halt".
		m.docker("run", "-d", "--name", h.container, "--hostname", h.name, "--label", runLabel+"="+runID,
			"--network", net, "--ip", h.ip, "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
			"--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp", "--stop-signal", "SIGRTMIN+3",
			img, "/lib/systemd/systemd")
	}
	for _, h := range m.ms {
		m.waitBooted(h)
	}
}

// waitBooted waits until systemd on h has finished booting.
func (m *machines) waitBooted(h *machine) {
	m.c.eventually(h.name+" booted", 3*time.Minute, func() error {
		out, _ := m.sh(h, "systemctl is-system-running")
		if out != "running" && out != "degraded" {
			return fmt.Errorf("systemctl is-system-running: %q", out)
		}
		return nil
	})
}

// configure writes h's /etc/clusterkeep/agent.json with more (create or
// join) and fast consensus timings.
func (m *machines) configure(h *machine, more string) {
	cfg := fmt.Sprintf(`{"name": %q, "api": "0.0.0.0:7400", "api_advertise": "%s:7400", "raft": "0.0.0.0:7401", "raft_advertise": "%s:7401",
"heartbeat_timeout": "500ms", "election_timeout": "500ms", "leader_lease": "250ms", %s}`, h.name, h.ip, h.ip, more)
	m.must(h, `printf '%s\n' "$1" > /etc/clusterkeep/agent.json`, cfg)
}

// sh runs a shell script in h (as root), with args as $1...; it returns
// its trimmed standard output and its exit code.
func (m *machines) sh(h *machine, script string, args ...string) (string, int) {
	m.t.Helper()
	out, _, code, err := run(ctx(m.t), "docker", append([]string{"exec", h.container, "sh", "-c", script, "sh"}, args...)...)
	if err != nil {
		m.t.Fatal(err)
	}
	return strings.TrimSpace(out), code
}

// must runs a script that must succeed.
func (m *machines) must(h *machine, script string, args ...string) string {
	m.t.Helper()
	out, err := m.try(h, script, args...)
	if err != nil {
		m.t.Fatal(err)
	}
	return out
}

// try runs a script and says how it failed if it did.
func (m *machines) try(h *machine, script string, args ...string) (string, error) {
	out, errOut, code, err := run(ctx(m.t), "docker", append([]string{"exec", h.container, "sh", "-c", script, "sh"}, args...)...)
	if err != nil || code != 0 {
		return "", fmt.Errorf("on %s: %s: exit %d %v: %s%s", h.name, script, code, err, out, errOut)
	}
	return strings.TrimSpace(out), nil
}

// each runs f on every host at once; any failure fails the test.
func (m *machines) each(f func(h *machine) error) {
	m.t.Helper()
	errs := make([]error, len(m.ms))
	var wg sync.WaitGroup
	for i, h := range m.ms {
		wg.Go(func() { errs[i] = f(h) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		m.t.Fatal(err)
	}
}

// ck runs the clusterkeep CLI on h as root, through the node's socket.
func (m *machines) ck(h *machine, args ...string) string {
	m.t.Helper()
	return m.must(h, `exec clusterkeep --cluster unix:/var/lib/clusterkeep/api.sock "$@"`, args...)
}

func (m *machines) docker(args ...string) string {
	m.t.Helper()
	return m.c.docker(args...)
}

// waitAllUp waits until the cluster, seen from h, has three members Up.
func (m *machines) waitAllUp(h *machine) {
	m.c.eventually("three nodes Up", 3*time.Minute, func() error {
		out, code := m.sh(h, "clusterkeep --cluster unix:/var/lib/clusterkeep/api.sock --timeout 10s cluster info --json 2>&1")
		if code != 0 {
			return fmt.Errorf("cluster info: %s", out)
		}
		var info wire.ClusterInfo
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			return err
		}
		return allUp(info)
	})
}

// waitGroup waits until group is Online on node (any when "") other than
// not (when not ""), as h sees it.
func (m *machines) waitGroup(h *machine, group, node, not string) placement.GroupStatus {
	var last placement.GroupStatus
	m.c.eventually("group "+group+" online", 3*time.Minute, func() error {
		out, code := m.sh(h, "clusterkeep --cluster unix:/var/lib/clusterkeep/api.sock --timeout 10s group status --json 2>&1")
		if code != 0 {
			return fmt.Errorf("group status: %s", out)
		}
		var list []placement.GroupStatus
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		for _, s := range list {
			if s.Name == group {
				last = s
				if s.State == "Online" && (node == "" || s.Owner == node) && (not == "" || s.Owner != not) {
					return nil
				}
			}
		}
		return fmt.Errorf("last status %+v", last)
	})
	return last
}

// waitOwnerRunsUnit waits until group is Online and ckdemo.service is
// active on its owner and on no other host, seen in one look.
func (m *machines) waitOwnerRunsUnit(h *machine, group string) {
	m.c.eventually("group "+group+" online, its unit active on its owner only", 3*time.Minute, func() error {
		out, code := m.sh(h, "clusterkeep --cluster unix:/var/lib/clusterkeep/api.sock --timeout 10s group status --json 2>&1")
		if code != 0 {
			return fmt.Errorf("group status: %s", out)
		}
		var list []placement.GroupStatus
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		var st placement.GroupStatus
		for _, s := range list {
			if s.Name == group {
				st = s
			}
		}
		if st.State != "Online" {
			return fmt.Errorf("status %+v", st)
		}
		var wrong []string
		for _, x := range m.ms {
			active, _ := m.sh(x, "systemctl is-active ckdemo.service")
			if (active == "active") != (x.name == st.Owner) {
				wrong = append(wrong, x.name+": "+active)
			}
		}
		if len(wrong) > 0 {
			return fmt.Errorf("group on %s; ckdemo.service: %s", st.Owner, strings.Join(wrong, ", "))
		}
		return nil
	})
}

// waitUnits waits until systemd on each host says ckdemo.service is
// active where want is true and not active elsewhere.
func (m *machines) waitUnits(want map[*machine]bool) {
	m.c.eventually("ckdemo.service active only where the group runs", 2*time.Minute, func() error {
		var wrong []string
		for h, active := range want {
			out, _ := m.sh(h, "systemctl is-active ckdemo.service")
			if (out == "active") != active {
				wrong = append(wrong, fmt.Sprintf("%s: %s", h.name, out))
			}
		}
		if len(wrong) > 0 {
			return fmt.Errorf("systemctl is-active ckdemo.service: %s", strings.Join(wrong, ", "))
		}
		return nil
	})
}

// teardown prints the agents' journals when the test failed, then removes
// the containers and the network.
func (m *machines) teardown(net string) {
	if m.t.Failed() {
		for _, h := range m.ms {
			out, _, _, _ := run(ctx(m.t), "docker", "exec", h.container, "journalctl", "--no-pager", "-n", "80", "-u", "clusterkeep", "-u", "ckdemo")
			m.t.Logf("--- %s journal, tail ---\n%s", h.name, out)
		}
	}
	var ctrs []string
	for _, h := range m.ms {
		ctrs = append(ctrs, h.container)
	}
	if len(ctrs) > 0 {
		docker(ctx(m.t), append([]string{"rm", "-f", "-v"}, ctrs...)...)
	}
	docker(ctx(m.t), "network", "rm", net)
}
