package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// notAPID is above any pid_max: no process has it.
const notAPID = 2147483646

// partialDir makes a working directory named as o would, modified at mod.
func partialDir(t *testing.T, dir, name, marker string, o owner, mod time.Time) string {
	t.Helper()
	n := "." + name + marker + o.tag() + "-123"
	p := filepath.Join(dir, n)
	if err := os.MkdirAll(filepath.Join(p, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mod, mod); err != nil {
		t.Fatal(err)
	}
	return n
}

// Partial sets on a directory several hosts share: a process id is looked
// up only for a partial of this host, boot and PID namespace; any other is
// abandoned only once its writer's heartbeat is older than PartialAge, and
// one that does not say who writes it never is.
func TestDirPartialsOnASharedMount(t *testing.T) {
	dir := t.TempDir()
	d := NewDir(dir)
	d.PartialAge = time.Hour
	me := self()
	fresh, stale := time.Now().Add(-time.Minute), time.Now().Add(-2*time.Hour)
	other := owner{host: "backup-host-2.example", machine: "0123456789ab", pid: notAPID}
	rebooted := owner{host: me.host, machine: "ba9876543210", pid: notAPID}
	cases := []struct {
		name      string
		id        string
		abandoned bool
		why       string
	}{
		{"this host, its process gone", partialDir(t, dir, "a", partialMarker, owner{me.host, me.machine, notAPID}, fresh), true, "is gone"},
		{"this host, its process runs", partialDir(t, dir, "b", partialMarker, owner{me.host, me.machine, 1}, stale), false, "runs"},
		{"this process", partialDir(t, dir, "c", partialMarker, me, stale), false, "this process"},
		{"another host, heartbeat fresh: its process is not looked up here", partialDir(t, dir, "d", partialMarker, other, fresh), false, "cannot be asked"},
		{"another host, heartbeat stale", partialDir(t, dir, "e", partialMarker, other, stale), true, "no heartbeat"},
		{"this host's name in another boot, fresh", partialDir(t, dir, "f", partialMarker, rebooted, fresh), false, "before it restarted"},
		{"this host's name in another boot, stale", partialDir(t, dir, "g", partialMarker, rebooted, stale), true, "no heartbeat"},
		{"a removal begun on another host, fresh", partialDir(t, dir, "h", removingMarker, other, fresh), false, "cannot be asked"},
		{"a removal begun on another host, stale", partialDir(t, dir, "i", removingMarker, other, stale), true, "no heartbeat"},
		{"an older clusterkeep's, process id only", mkdir(t, dir, ".j"+partialMarker+"2147483646-99", stale), false, "did not record"},
		{"no writer in the name", mkdir(t, dir, ".k"+partialMarker+"x", stale), false, "not known"},
	}
	ps, err := d.Partials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Partial{}
	for _, p := range ps {
		byID[p.ID] = p
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ok := byID[c.id]
			if !ok {
				t.Fatalf("%s is not listed among %v", c.id, ps)
			}
			if p.Abandoned != c.abandoned || !strings.Contains(p.Why, c.why) {
				t.Errorf("%s: abandoned %v (%s), want %v (%q)", c.id, p.Abandoned, p.Why, c.abandoned, c.why)
			}
		})
	}

	// Begin removes the abandoned ones and only those.
	w, err := d.Begin(context.Background(), "new")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, c := range cases {
		_, err := os.Stat(filepath.Join(dir, c.id))
		if gone := os.IsNotExist(err); gone != c.abandoned {
			t.Errorf("%s: removed %v, want %v", c.name, gone, c.abandoned)
		}
	}
}

func mkdir(t *testing.T, dir, name string, mod time.Time) string {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, name), mod, mod); err != nil {
		t.Fatal(err)
	}
	return name
}

// A writer renews its partial directory's modification time while it
// writes, so that another host never takes a long backup for an abandoned
// one; it stops when the set is committed or aborted.
func TestDirWriterHeartbeat(t *testing.T) {
	defer func(d time.Duration) { heartbeatEvery = d }(heartbeatEvery)
	heartbeatEvery = 20 * time.Millisecond
	dir := t.TempDir()
	d := NewDir(dir)
	for _, end := range []string{"commit", "abort"} {
		t.Run(end, func(t *testing.T) {
			w, err := d.Begin(context.Background(), "set-"+end)
			if err != nil {
				t.Fatal(err)
			}
			tmp := w.(*dirWriter).tmp
			if !strings.Contains(filepath.Base(tmp), partialMarker+self().tag()+"-") {
				t.Fatalf("the partial directory %s does not name its host", tmp)
			}
			old := time.Now().Add(-10 * time.Hour)
			if err := os.Chtimes(tmp, old, old); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				fi, err := os.Stat(tmp)
				if err != nil {
					t.Fatal(err)
				}
				if time.Since(fi.ModTime()) < time.Minute {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the heartbeat was not renewed: modified %s", fi.ModTime())
				}
				time.Sleep(5 * time.Millisecond)
			}
			// Seen from another host, it lives.
			o, _, _ := parseTag(strings.SplitN(filepath.Base(tmp), partialMarker, 2)[1])
			o.host = "elsewhere"
			fi, _ := os.Stat(tmp)
			if abandoned, why := d.judge(o.tag()+"-1", fi.ModTime()); abandoned {
				t.Fatalf("a partial whose writer beats is abandoned: %s", why)
			}
			final := filepath.Join(dir, "set-"+end)
			if end == "commit" {
				if err := w.Commit([]byte("{}")); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := w.Abort(); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(tmp); !os.IsNotExist(err) {
					t.Fatalf("abort left %s", tmp)
				}
				return
			}
			if err := os.Chtimes(final, old, old); err != nil {
				t.Fatal(err)
			}
			// Not waiting for a state: giving a heartbeat that should
			// have stopped the time to show it did not.
			time.Sleep(10 * heartbeatEvery)
			if fi, err := os.Stat(final); err != nil || !fi.ModTime().Equal(old) {
				t.Fatalf("the heartbeat goes on after the commit: %v %v", fi.ModTime(), err)
			}
		})
	}
}

func TestOwnerTag(t *testing.T) {
	for _, host := range []string{"node1", "backup-host-2.example.net", "we@ird/host name", "100%", "hôte"} {
		o := owner{host: host, machine: "0123456789ab", pid: 4242}
		tag := o.tag()
		if strings.ContainsAny(tag[strings.Index(tag, "@")+1:], "/ ") || strings.Count(tag, "@") != 2 {
			t.Errorf("%q: tag %q", host, tag)
		}
		got, legacy, ok := parseTag(tag + "-123456")
		if !ok || legacy || got != o {
			t.Errorf("%q: parsed %+v %v %v, want %+v", host, got, legacy, ok, o)
		}
	}
	long := owner{host: strings.Repeat("ü", 40), machine: "0123456789ab", pid: 4242}
	if tag := long.tag(); len(tag) > maxHostTag+30 {
		t.Errorf("a long host name makes a tag of %d bytes", len(tag))
	}
	if o, legacy, ok := parseTag("4242-123456"); !ok || !legacy || o.pid != 4242 {
		t.Errorf("a process id alone: %+v %v %v", o, legacy, ok)
	}
	for _, bad := range []string{"", "x-1", "1@h-1", "1@@m-1", "1@h@-1", "0@h@m-1", "1@h%zz@m-1", "1@h@m"} {
		if _, _, ok := parseTag(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// RemovePartial judges again: a partial whose writer beats again since it
// was listed as abandoned is not removed.
func TestDirRemovePartialJudgesAgain(t *testing.T) {
	dir := t.TempDir()
	d := NewDir(dir)
	d.PartialAge = time.Hour
	other := owner{host: "backup-host-2.example", machine: "0123456789ab", pid: notAPID}
	id := partialDir(t, dir, "a", partialMarker, other, time.Now().Add(-2*time.Hour))
	ps, err := d.Partials(context.Background())
	if err != nil || len(ps) != 1 || !ps[0].Abandoned {
		t.Fatalf("partials %+v %v", ps, err)
	}
	now := time.Now()
	os.Chtimes(filepath.Join(dir, id), now, now) // its writer beats again
	if err := d.RemovePartial(context.Background(), ps[0]); !errors.Is(err, ErrInUse) {
		t.Fatalf("remove a partial whose writer beats again: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, id, "data")); err != nil {
		t.Fatal(err)
	}
	old := now.Add(-2 * time.Hour)
	os.Chtimes(filepath.Join(dir, id), old, old)
	if err := d.RemovePartial(context.Background(), ps[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, id)); !os.IsNotExist(err) {
		t.Fatalf("the abandoned partial is still there: %v", err)
	}
}
