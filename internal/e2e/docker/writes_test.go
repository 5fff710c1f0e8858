package docker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// ack is one acknowledged write: a key of its own, and the sequence number
// the cluster gave it.
type ack struct {
	key  string
	seq  uint64
	done time.Time
}

// writers are clients on the host that each write a sequence of new keys
// (PREFIX/w<i>/k<n>) through the cluster, as fast as it acknowledges them,
// and record every acknowledged one. A write that fails or times out is
// not acknowledged; the next one writes the next key.
type writers struct {
	c      *cluster
	prefix string
	stopCh chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	acks   []ack
	failed int
	last   error
}

func (c *cluster) startWriters(prefix string, n int) *writers {
	w := &writers{c: c, prefix: prefix, stopCh: make(chan struct{})}
	for g := range n {
		w.wg.Add(1)
		go w.run(g)
	}
	return w
}

func (w *writers) stopped() bool {
	select {
	case <-w.stopCh:
		return true
	default:
		return false
	}
}

func (w *writers) run(g int) {
	defer w.wg.Done()
	var h *client.Cluster
	for i := 0; !w.stopped(); i++ {
		if h == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var err error
			h, err = w.c.open(ctx)
			cancel()
			if err != nil {
				w.fail(err)
				continue
			}
		}
		key := fmt.Sprintf("%s/w%d/k%06d", w.prefix, g, i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		seq, err := h.SetValue(ctx, key, wire.Uint64Value("n", uint64(i)))
		cancel()
		if err != nil {
			w.fail(err)
			continue
		}
		w.mu.Lock()
		w.acks = append(w.acks, ack{key: key, seq: seq, done: time.Now()})
		w.mu.Unlock()
	}
}

func (w *writers) fail(err error) {
	w.mu.Lock()
	w.failed++
	w.last = err
	w.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
}

// count is how many writes were acknowledged so far.
func (w *writers) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// waitMore waits until n more writes than now are acknowledged: the
// cluster keeps taking writes.
func (w *writers) waitMore(what string, n int) {
	w.c.t.Helper()
	from := w.count()
	w.c.eventually(what, 2*time.Minute, func() error {
		if got := w.count() - from; got < n {
			w.mu.Lock()
			defer w.mu.Unlock()
			return fmt.Errorf("%d of %d more writes acknowledged (%d failed, last: %v)", got, n, w.failed, w.last)
		}
		return nil
	})
}

// stop ends the writers and returns every acknowledged write.
func (w *writers) stop() []ack {
	close(w.stopCh)
	w.wg.Wait()
	w.c.t.Logf("writers %s: %d writes acknowledged, %d failed or timed out", w.prefix, len(w.acks), w.failed)
	return w.acks
}

// checkAcked checks that no acknowledged write is lost: the cluster gave
// each a sequence number of its own (no two leaders ever committed at the
// same point), and every node's own copy ends holding every one of them,
// the three copies alike.
func (c *cluster) checkAcked(prefix string, acks []ack) {
	c.t.Helper()
	if len(acks) == 0 {
		c.t.Fatal("no write was acknowledged")
	}
	bySeq := map[uint64]string{}
	for _, a := range acks {
		if other, ok := bySeq[a.seq]; ok {
			c.t.Fatalf("two acknowledged writes share sequence number %d: %s and %s", a.seq, other, a.key)
		}
		bySeq[a.seq] = a.key
	}
	exports := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		c.eventually(n.name+" holds every acknowledged write", 2*time.Minute, func() error {
			text, err := c.export(n, prefix)
			if err != nil {
				return err
			}
			keys, err := keysOf(text)
			if err != nil {
				return err
			}
			var missing []string
			for _, a := range acks {
				if !keys[strings.ToLower(a.key)] {
					missing = append(missing, a.key)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%d of %d acknowledged writes missing, first %s", len(missing), len(acks), missing[0])
			}
			exports[i] = text
			return nil
		})
	}
	c.eventually("the three copies alike", time.Minute, func() error {
		for i, n := range c.nodes {
			text, err := c.export(n, prefix)
			if err != nil {
				return err
			}
			exports[i] = text
		}
		for i := range exports[1:] {
			if exports[i+1] != exports[0] {
				return fmt.Errorf("%s and %s differ", c.nodes[0].name, c.nodes[i+1].name)
			}
		}
		return nil
	})
	c.t.Logf("all %d acknowledged writes of %s are on the three nodes", len(acks), prefix)
}
