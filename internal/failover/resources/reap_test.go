package resources

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReap plays an earlier agent run that left process groups behind (no
// shim: nothing else would end them) and records of them.
func TestReap(t *testing.T) {
	boot, err := bootID()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		script string
		// env: the group's processes carry the resource's name.
		env bool
		// leaderGone: the leader has exited and been reaped; its
		// children run on in its group.
		leaderGone bool
		// edit changes the record from the truth.
		edit func(*record)
		kill bool
	}{
		{name: "a group left by a dead agent", script: "sleep 1000 & sleep 1000", env: true, kill: true},
		{name: "recycled pid: another start time", script: "sleep 1000", env: true, edit: func(r *record) { r.StartTime++ }},
		{name: "another boot", script: "sleep 1000", env: true, edit: func(r *record) { r.BootID = "another-boot" }},
		{name: "leader gone, its children the resource's", script: "sleep 1000 & exit 0", env: true, leaderGone: true, kill: true},
		{name: "leader gone, children not the resource's", script: "sleep 1000 & exit 0", leaderGone: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
				t.Fatal(err)
			}
			name := uniqueName("reap")
			cmd := exec.Command("sh", "-c", c.script)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if c.env {
				cmd.Env = append(os.Environ(), EnvResource+"="+name)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pgid := cmd.Process.Pid
			t.Cleanup(func() {
				if groupAlive(pgid) {
					unix.Kill(-pgid, unix.SIGKILL)
				}
				cmd.Wait()
			})
			// Read while the leader is at least a zombie of ours.
			p, err := readProc(pgid)
			if err != nil {
				t.Fatal(err)
			}
			rec := record{Resource: name, PGID: pgid, StartTime: p.start, BootID: boot}
			if c.edit != nil {
				c.edit(&rec)
			}
			path, err := writeRecord(cfg.StateDir, rec)
			if err != nil {
				t.Fatal(err)
			}
			if c.leaderGone {
				cmd.Wait()
				eventually(t, "only the leader's child is left", func() bool {
					m, _ := groupMembers(pgid)
					_, err := readProc(pgid)
					return len(m) == 1 && err != nil
				})
			} else {
				eventually(t, "the group runs", func() bool { m, _ := groupMembers(pgid); return len(m) > 0 })
			}

			killed, err := Reap(cfg)
			if err != nil {
				t.Fatalf("reap: %v", err)
			}
			if c.kill {
				want := name + " (process group " + strconv.Itoa(pgid) + ")"
				if len(killed) != 1 || killed[0] != want {
					t.Errorf("reap killed %q, want [%q]", killed, want)
				}
				if groupAlive(pgid) {
					t.Errorf("process group %d still has processes", pgid)
				}
			} else {
				if len(killed) != 0 {
					t.Errorf("reap killed %q, want nothing", killed)
				}
				if !groupAlive(pgid) {
					t.Errorf("process group %d was killed", pgid)
				}
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("record %s left: %v", filepath.Base(path), err)
			}
		})
	}

	t.Run("no state directory yet", func(t *testing.T) {
		killed, err := Reap(ExecConfig{StateDir: filepath.Join(t.TempDir(), "none")})
		if err != nil || len(killed) != 0 {
			t.Errorf("reap: %q, %v", killed, err)
		}
	})
}

// TestReapAfterAgentDied: the record the exec runner writes lets a later
// agent run kill a group that outlived its agent. For the group to outlive
// it, the shim is a stand-in that fails at its job: it ignores its
// lifeline and its parent-death signal.
func TestReapAfterAgentDied(t *testing.T) {
	cfg := testConfig(t)
	cfg.Shim = []string{"/bin/sh", "-c", `trap '' ` + unix.SignalName(shimDeathSignal)[3:] + `; shift; "$@"`, "stand-in-shim"}
	name := uniqueName("survivor")
	spec, err := jsonString(testAgentSpec{Config: cfg, Resource: execResource(name, map[string]string{"start": cmdParam("sh", "-c", "sleep 1000 & sleep 1000")})})
	if err != nil {
		t.Fatal(err)
	}
	agent, pgid := startTestAgent(t, spec)
	t.Cleanup(func() {
		if groupAlive(pgid) {
			unix.Kill(-pgid, unix.SIGKILL)
		}
	})
	eventually(t, "the resource's processes run", func() bool { return len(resourceProcs(t, name)) >= 4 })
	agent.Process.Kill()
	agent.Wait()
	if n := len(resourceProcs(t, name)); n < 4 {
		t.Fatalf("%d processes of the resource left, want all 4 (the shim failed)", n)
	}

	killed, err := Reap(cfg)
	if err != nil {
		t.Fatalf("reap: %v", err)
	}
	if want := name + " (process group " + strconv.Itoa(pgid) + ")"; len(killed) != 1 || killed[0] != want {
		t.Errorf("reap killed %q, want [%q]", killed, want)
	}
	if ps := resourceProcs(t, name); len(ps) > 0 {
		t.Errorf("processes left after Reap: %v", ps)
	}
	if got := records(t, cfg.StateDir); len(got) != 0 {
		t.Errorf("records after Reap: %v", got)
	}
}
