package testcluster

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// Ack is one acknowledged write made by Writers.
type Ack struct {
	Key  string
	Val  uint64
	Seq  uint64
	Done time.Time
}

// Writers starts n writers, each setting increasing values of "n" on its
// own key Load/w<i> through the node at addrs[i%len(addrs)]. The returned
// stop ends them and returns every acknowledged write.
func Writers(t testing.TB, addrs []string, n int) (stop func() []Ack) {
	var mu sync.Mutex
	var acks []Ack
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := Open(t, addrs[w%len(addrs)])
			key := fmt.Sprintf("Load/w%d", w)
			for i := uint64(1); ; i++ {
				select {
				case <-done:
					return
				default:
				}
				seq, err := c.SetValue(Context(t), key, wire.Uint64Value("n", i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acks = append(acks, Ack{key, i, seq, time.Now()})
				mu.Unlock()
			}
		}()
	}
	return func() []Ack {
		close(done)
		wg.Wait()
		return acks
	}
}

// CheckPointInTime checks a copy of the hive taken at sequence number seq
// after the moment began: every write acknowledged before began is at or
// below seq, and each key holds the last value acknowledged at or below
// seq (value reads the copy).
func CheckPointInTime(acks []Ack, began time.Time, seq uint64, value func(key string) (uint64, error)) error {
	last := map[string]uint64{}
	for _, a := range acks {
		if a.Done.Before(began) && a.Seq > seq {
			return fmt.Errorf("%s=%d acknowledged before the copy began (seq %d) is past its sequence %d", a.Key, a.Val, a.Seq, seq)
		}
		if a.Seq <= seq {
			last[a.Key] = max(last[a.Key], a.Val)
		}
	}
	for key, want := range last {
		got, err := value(key)
		if err != nil || got != want {
			return fmt.Errorf("%s: the copy at seq %d holds %d (%v), want %d", key, seq, got, err, want)
		}
	}
	return nil
}
