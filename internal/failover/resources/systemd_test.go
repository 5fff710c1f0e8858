package resources

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

func unitResource(unit string) roles.Resource {
	r := roles.Resource{Name: "svc", Type: "systemd", Params: map[string]string{"unit": unit}}
	r.Normalize()
	return r
}

// TestSystemdAvailableHere: this machine has no systemd, and the runner
// says so.
func TestSystemdAvailableHere(t *testing.T) {
	if fi, err := os.Stat(DefaultSystemdRoot); err == nil && fi.IsDir() {
		t.Skipf("systemd runs this machine (%s): its refusal is not seen here", DefaultSystemdRoot)
	}
	host, _ := os.Hostname()
	err := Runners(ExecConfig{})["systemd"].Available()
	if !errors.Is(err, roles.ErrUnavailable) {
		t.Fatalf("available: %v, want ErrUnavailable", err)
	}
	for _, want := range []string{"systemd does not run " + host, DefaultSystemdRoot} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}

func TestSystemdAvailable(t *testing.T) {
	root := t.TempDir()
	bare := startBus(t)
	f := newFakeSystemd(t)
	cases := []struct {
		name string
		s    *Systemd
		want string // "": available
	}{
		{"no systemd", &Systemd{Root: filepath.Join(root, "none")}, "systemd does not run"},
		{"no bus", &Systemd{Root: root, BusAddress: "unix:path=" + filepath.Join(root, "no-bus")}, "its system bus does not answer"},
		{"a bus without systemd", &Systemd{Root: root, BusAddress: bare}, "systemd does not answer on the system bus"},
		{"the stand-in for systemd", &Systemd{Root: root, BusAddress: f.addr}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.s.Available()
			if c.want == "" {
				if err != nil {
					t.Fatalf("available: %v", err)
				}
				return
			}
			if !errors.Is(err, roles.ErrUnavailable) {
				t.Fatalf("available: %v, want ErrUnavailable", err)
			}
			wantErr(t, err, c.want)
		})
	}
}

func TestSystemdStartMonitorStop(t *testing.T) {
	f := newFakeSystemd(t)
	f.addUnit(t, "web.service", &fakeUnit{})
	s := &Systemd{BusAddress: f.addr, Poll: 10 * time.Millisecond}
	inst, err := s.Start(context.Background(), unitResource("web.service"), nil)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if got := f.state("web.service"); got != "active" {
		t.Errorf("unit %s after Start, want active", got)
	}
	if err := inst.Monitor(context.Background()); err != nil {
		t.Errorf("monitor: %v", err)
	}
	if err := inst.Stop(context.Background(), 10*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got := f.state("web.service"); got != "inactive" {
		t.Errorf("unit %s after Stop, want inactive", got)
	}
	if k := f.killed("web.service"); len(k) != 0 {
		t.Errorf("a unit that stopped was killed: %v", k)
	}
	if err := inst.Monitor(context.Background()); !errors.Is(err, ErrExited) {
		t.Errorf("monitor after Stop: %v, want ErrExited", err)
	}
	select {
	case <-inst.Exited():
		t.Error("Exited closed for an end that Stop caused")
	default:
	}
	if err := inst.Stop(context.Background(), time.Second); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestSystemdStartFails(t *testing.T) {
	f := newFakeSystemd(t)
	f.addUnit(t, "broken.service", &fakeUnit{startJob: "failed"})
	s := &Systemd{BusAddress: f.addr}
	cases := []struct{ unit, want string }{
		{"broken.service", `start unit broken.service: the job ended "failed"`},
		{"missing.service", "Unit missing.service not found"},
	}
	for _, c := range cases {
		t.Run(c.unit, func(t *testing.T) {
			_, err := s.Start(context.Background(), unitResource(c.unit), nil)
			wantErr(t, err, c.want)
		})
	}
}

func TestSystemdExitsOnItsOwn(t *testing.T) {
	f := newFakeSystemd(t)
	f.addUnit(t, "web.service", &fakeUnit{})
	s := &Systemd{BusAddress: f.addr, Poll: 10 * time.Millisecond}
	inst, err := s.Start(context.Background(), unitResource("web.service"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Stop(context.Background(), time.Second)
	f.set("web.service", "failed", "failed", "exit-code")
	waitClosed(t, "Exited closes", inst.Exited())
	err = inst.Monitor(context.Background())
	if !errors.Is(err, ErrExited) {
		t.Fatalf("monitor: %v, want ErrExited", err)
	}
	if want := "unit web.service is failed (failed), result exit-code"; err.Error() != want {
		t.Errorf("monitor: %q, want %q", err, want)
	}
}

func TestSystemdStopKills(t *testing.T) {
	f := newFakeSystemd(t)
	f.addUnit(t, "stubborn.service", &fakeUnit{stopHangs: true})
	s := &Systemd{BusAddress: f.addr}
	inst, err := s.Start(context.Background(), unitResource("stubborn.service"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.Stop(context.Background(), 200*time.Millisecond); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if k := f.killed("stubborn.service"); !slices.Equal(k, []int32{9}) {
		t.Errorf("signals sent: %v, want SIGKILL", k)
	}
	if got := f.state("stubborn.service"); got != "failed" {
		t.Errorf("unit %s after Stop, want it killed", got)
	}
}

// A unit is no child of the agent: one that a killed agent left running is
// stopped by the next agent's Reap, and its record goes.
func TestSystemdReapStopsWhatAKilledAgentLeft(t *testing.T) {
	f := newFakeSystemd(t)
	f.addUnit(t, "left.service", &fakeUnit{})
	state := t.TempDir()
	s := &Systemd{BusAddress: f.addr, Poll: 10 * time.Millisecond, StateDir: state}
	if _, err := s.Start(context.Background(), unitResource("left.service"), nil); err != nil {
		t.Fatalf("start: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "units", "left.service")); err != nil {
		t.Fatalf("no record of the started unit: %v", err)
	}
	// The agent dies here; the next one reaps.
	next := &Systemd{BusAddress: f.addr, StateDir: state}
	stopped, err := next.Reap(context.Background())
	if err != nil || !slices.Equal(stopped, []string{"left.service"}) {
		t.Fatalf("reap: %v %v", stopped, err)
	}
	if got := f.state("left.service"); got != "inactive" {
		t.Fatalf("unit %s after Reap, want inactive", got)
	}
	if _, err := os.Stat(filepath.Join(state, "units", "left.service")); !os.IsNotExist(err) {
		t.Fatalf("record kept after the unit stopped: %v", err)
	}
	if again, err := next.Reap(context.Background()); err != nil || len(again) != 0 {
		t.Fatalf("second reap: %v %v", again, err)
	}
}

// A unit is no child of the agent, so a guard process stands in: when the
// agent dies (its end of the lifeline closes) or its lease deadline passes
// without a new one, the guard stops the unit.
func TestSystemdGuardStopsTheUnitWhenTheAgentDiesOrItsLeaseEnds(t *testing.T) {
	for _, how := range []string{"agent dies", "lease ends"} {
		t.Run(how, func(t *testing.T) {
			f := newFakeSystemd(t)
			f.addUnit(t, "guarded.service", &fakeUnit{})
			s := &Systemd{BusAddress: f.addr, Poll: 10 * time.Millisecond}
			s.Fence(time.Now().Add(time.Hour))
			inst, err := s.Start(context.Background(), unitResource("guarded.service"), nil)
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			i := inst.(*unitInstance)
			defer i.closeBus()
			if i.guard == nil {
				t.Fatal("no guard")
			}
			if how == "agent dies" {
				i.guard.lifeline.Close()
			} else {
				// Extended, the unit runs on; then not extended.
				for range 4 {
					s.Fence(time.Now().Add(300 * time.Millisecond))
					time.Sleep(100 * time.Millisecond)
				}
				if got := f.state("guarded.service"); got != "active" {
					t.Fatalf("unit %s while its lease was extended", got)
				}
				s.Fence(time.Now().Add(200 * time.Millisecond))
			}
			eventually(t, "the guard stops the unit", func() bool { return f.state("guarded.service") == "inactive" })
			if k := f.killed("guarded.service"); len(k) == 0 {
				t.Error("the unit's processes were not killed first")
			}
		})
	}
}

// A unit the agent stopped itself is left alone by its guard.
func TestSystemdGuardDisarmedByAStop(t *testing.T) {
	f := newFakeSystemd(t)
	f.addUnit(t, "calm.service", &fakeUnit{})
	s := &Systemd{BusAddress: f.addr, Poll: 10 * time.Millisecond}
	inst, err := s.Start(context.Background(), unitResource("calm.service"), nil)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	g := inst.(*unitInstance).guard
	if err := inst.Stop(context.Background(), 10*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	eventually(t, "the guard leaves", func() bool { return syscall.Kill(g.cmd.Process.Pid, 0) != nil })
	if k := f.killed("calm.service"); len(k) != 0 {
		t.Errorf("a stopped unit was killed by its guard: %v", k)
	}
}
