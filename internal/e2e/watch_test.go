package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// watchLines runs `clusterkeep config watch` with args and collects the
// lines it prints; the process is killed when the test ends.
type watchLines struct {
	mu    sync.Mutex
	lines []string
	cmd   *exec.Cmd
	err   strings.Builder
}

func startWatch(t *testing.T, env []string, args ...string) *watchLines {
	t.Helper()
	w := &watchLines{cmd: exec.Command(tc.Binary(t), append([]string{"config", "watch"}, args...)...)}
	w.cmd.Env = append(os.Environ(), env...)
	w.cmd.Stderr = &w.err
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		w.cmd.Process.Kill()
		w.cmd.Wait()
		if t.Failed() {
			t.Logf("config watch %v stderr:\n%s", args, w.err.String())
		}
	})
	return w
}

func (w *watchLines) snapshot() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// config watch follows the changes as they are committed, in order, and
// goes on through the death of the node it reads from, which was the
// leader, without a change missed or printed twice.
func TestConfigWatchFollowsThroughFailover(t *testing.T) {
	lc := tc.Processes(t, 3)
	ctx := tc.Context(t)
	c := tc.Open(t, lc.APIAddrs())
	base, err := c.CreateKey(ctx, "Apps/W")
	if err != nil {
		t.Fatal(err)
	}
	leader := c.Info().Leader
	var leaderAPI string
	addrs := []string{}
	for _, n := range lc.Nodes {
		if n.Name == leader {
			leaderAPI = n.API
		} else {
			addrs = append(addrs, n.API)
		}
	}
	// The watch reads through the leader first.
	cluster := strings.Join(append([]string{leaderAPI}, addrs...), ",")
	env := lc.Env()
	jsonWatch := startWatch(t, env, "Apps", "--cluster", cluster, "--json", "--since", strconv.FormatUint(base+1, 10))
	textWatch := startWatch(t, env, "Apps/W", "--cluster", cluster, "--since", strconv.FormatUint(base+1, 10))

	var want []uint64
	set := func(i int) {
		t.Helper()
		seq, err := c.SetValue(ctx, "Apps/W", wire.Uint32Value(fmt.Sprintf("v%d", i), uint32(i)))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, seq)
	}
	check := func(what string) {
		t.Helper()
		tc.Eventually(t, what, func() error {
			lines := jsonWatch.snapshot()
			if len(lines) < len(want) {
				return fmt.Errorf("%d of %d changes seen: %v", len(lines), len(want), lines)
			}
			for i, l := range lines {
				var ev wire.Event
				if err := json.Unmarshal([]byte(l), &ev); err != nil {
					t.Fatalf("line %q: not a JSON event: %v", l, err)
				}
				if i >= len(want) || ev.Seq != want[i] || ev.Kind != wire.OpSetValue || ev.Key != "Apps/W" || ev.Name != fmt.Sprintf("v%d", i) {
					t.Fatalf("change %d: %q, want set-value of Apps/W v%d at %v (all: %v)", i, l, i, want, lines)
				}
			}
			text := textWatch.snapshot()
			if len(text) < len(want) {
				return fmt.Errorf("text watch: %d of %d changes: %v", len(text), len(want), text)
			}
			for i, l := range text {
				if w := fmt.Sprintf("%d set-value Apps/W v%d", want[i], i); i >= len(want) || l != w {
					t.Fatalf("text change %d: %q, want %q (all: %q)", i, l, w, text)
				}
			}
			return nil
		})
	}
	for i := range 5 {
		set(i)
	}
	check("the first five changes")

	// The node both watches read from dies; it was the leader.
	if _, err := lc.Stop(leader, true); err != nil {
		t.Fatal(err)
	}
	for i := 5; i < 10; i++ {
		set(i)
	}
	check("the changes after the leader died")
	for _, w := range []*watchLines{jsonWatch, textWatch} {
		if w.cmd.ProcessState != nil {
			t.Fatalf("a watch ended: %v\n%s", w.cmd.ProcessState, w.err.String())
		}
	}
}
