package resources

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// startBus runs a private dbus-daemon for the test and returns its
// address.
func startBus(t *testing.T) string {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("NOT RUN: dbus-daemon is missing, so the D-Bus path of the systemd runner is not tested")
	}
	dir, err := os.MkdirTemp("", "bus") // short: a socket's path is at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cmd := exec.Command(daemon, "--session", "--print-address", "--nofork", "--address=unix:dir="+dir)
	addr, stderr, err := firstLine(t, cmd)
	if err != nil {
		t.Fatalf("dbus-daemon gave no address: %v: %s", err, stderr.String())
	}
	return strings.TrimSpace(addr)
}

// fakeSystemd is a stand-in for systemd in these tests, not systemd: on a
// private bus it owns systemd's name and answers the few calls the runner
// makes (StartUnit, StopUnit, KillUnit, and the ActiveState, SubState and
// Result properties) for units whose behaviour the test chooses.
type fakeSystemd struct {
	addr string
	conn *dbus.Conn

	mu    sync.Mutex
	units map[string]*fakeUnit
	jobs  uint32
}

type fakeUnit struct {
	props *prop.Properties
	// startJob is how a start job ends ("done" unless set).
	startJob string
	// stopHangs: a stop job never ends, and the unit stays deactivating
	// until it is killed.
	stopHangs bool
	// killed lists the signals KillUnit sent.
	killed []int32
}

const (
	sdManagerPath  = dbus.ObjectPath("/org/freedesktop/systemd1")
	sdManagerIface = "org.freedesktop.systemd1.Manager"
	sdUnitIface    = "org.freedesktop.systemd1.Unit"
	sdServiceIface = "org.freedesktop.systemd1.Service"
)

func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	f := &fakeSystemd{addr: startBus(t), units: map[string]*fakeUnit{}}
	conn, err := dialBus(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f.conn = conn
	if reply, err := conn.RequestName("org.freedesktop.systemd1", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own systemd's name on the private bus: %v %v", reply, err)
	}
	if err := conn.Export(fakeManager{f}, sdManagerPath, sdManagerIface); err != nil {
		t.Fatal(err)
	}
	if _, err := prop.Export(conn, sdManagerPath, prop.Map{sdManagerIface: {
		"SystemState": {Value: "running"},
		"Version":     {Value: "stand-in"},
	}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// addUnit adds an inactive unit.
func (f *fakeSystemd) addUnit(t *testing.T, name string, u *fakeUnit) *fakeUnit {
	t.Helper()
	p, err := prop.Export(f.conn, dbus.ObjectPath("/org/freedesktop/systemd1/unit/"+sd.PathBusEscape(name)), prop.Map{
		sdUnitIface:    {"ActiveState": {Value: "inactive"}, "SubState": {Value: "dead"}},
		sdServiceIface: {"Result": {Value: "success"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	u.props = p
	f.mu.Lock()
	f.units[name] = u
	f.mu.Unlock()
	return u
}

// set puts a unit in a state, as if it got there on its own.
func (f *fakeSystemd) set(name, active, sub, result string) {
	f.mu.Lock()
	u := f.units[name]
	f.mu.Unlock()
	u.props.SetMust(sdUnitIface, "ActiveState", active)
	u.props.SetMust(sdUnitIface, "SubState", sub)
	u.props.SetMust(sdServiceIface, "Result", result)
}

func (f *fakeSystemd) state(name string) string {
	f.mu.Lock()
	u := f.units[name]
	f.mu.Unlock()
	return u.props.GetMust(sdUnitIface, "ActiveState").(string)
}

func (f *fakeSystemd) killed(name string) []int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int32(nil), f.units[name].killed...)
}

// job makes a job for unit; result, unless "", is sent as its end.
func (f *fakeSystemd) job(unit, result string) dbus.ObjectPath {
	f.mu.Lock()
	f.jobs++
	id := f.jobs
	f.mu.Unlock()
	path := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", id))
	if result != "" {
		go f.conn.Emit(sdManagerPath, sdManagerIface+".JobRemoved", id, path, unit, result)
	}
	return path
}

func (f *fakeSystemd) unit(name string) (*fakeUnit, *dbus.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.units[name]
	if !ok {
		return nil, dbus.NewError("org.freedesktop.systemd1.NoSuchUnit", []any{"Unit " + name + " not found."})
	}
	return u, nil
}

// fakeManager is the stand-in's org.freedesktop.systemd1.Manager.
type fakeManager struct{ f *fakeSystemd }

func (m fakeManager) StartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	u, err := m.f.unit(name)
	if err != nil {
		return "", err
	}
	res := u.startJob
	if res == "" {
		res = "done"
	}
	if res == "done" {
		m.f.set(name, "active", "running", "success")
	} else {
		m.f.set(name, "failed", "failed", "exit-code")
	}
	return m.f.job(name, res), nil
}

func (m fakeManager) StopUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	u, err := m.f.unit(name)
	if err != nil {
		return "", err
	}
	if u.stopHangs {
		m.f.set(name, "deactivating", "stop-sigterm", "success")
		return m.f.job(name, ""), nil
	}
	m.f.set(name, "inactive", "dead", "success")
	return m.f.job(name, "done"), nil
}

func (m fakeManager) KillUnit(name, who string, signal int32) *dbus.Error {
	u, err := m.f.unit(name)
	if err != nil {
		return err
	}
	m.f.mu.Lock()
	u.killed = append(u.killed, signal)
	m.f.mu.Unlock()
	if signal == 9 && who == "all" {
		m.f.set(name, "failed", "failed", "signal")
	}
	return nil
}
