package resources

import (
	"encoding/binary"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The lifeline is a pipe from the agent to a process that guards a
// resource (the exec shim, or a systemd unit's guard): end of file means
// the agent died; each 8-byte message is a lease deadline on the boot
// clock (CLOCK_BOOTTIME ns, 0: none) or disarm.

// lifelineFD is where the guarding process finds the read end of its
// lifeline; only the agent holds the write end, so it reaches end of file
// when the agent dies, however it dies, or when the agent closes it.
const lifelineFD = 3

// disarm, written down a unit guard's lifeline, tells it the agent
// stopped the unit itself: the guard leaves without acting.
const disarm = -1

// bootNow is CLOCK_BOOTTIME in nanoseconds: the clock the agent and the
// guarding processes share, which goes on through a suspend.
func bootNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return ts.Nano()
}

// What a guarding process learns from its lifeline.
type lifelineEvent int

const (
	agentGone  lifelineEvent = iota // end of file: the agent died
	leaseEnded                      // the last deadline passed
	disarmed                        // the agent stopped the resource itself
)

// watchLifeline reads the lifeline on f and sends the first event that
// ends the guard's watch. Messages are taken in the order written: a
// disarm written before the agent closed the pipe is seen as a disarm. The
// deadline is checked often rather than by a timer, whose clock does not
// count a suspend.
func watchLifeline(f *os.File) <-chan lifelineEvent {
	msgs := make(chan int64, 16)
	go func() {
		defer close(msgs)
		var b [8]byte
		for {
			if _, err := io.ReadFull(f, b[:]); err != nil {
				return
			}
			msgs <- int64(binary.LittleEndian.Uint64(b[:]))
		}
	}()
	out := make(chan lifelineEvent, 1)
	go func() {
		var deadline int64
		check := time.NewTicker(50 * time.Millisecond)
		defer check.Stop()
		for {
			select {
			case d, ok := <-msgs:
				switch {
				case !ok:
					out <- agentGone
					return
				case d == disarm:
					out <- disarmed
					return
				}
				deadline = d
			case <-check.C:
				if deadline > 0 && bootNow() >= deadline {
					out <- leaseEnded
					return
				}
			}
		}
	}()
	return out
}

// writeDeadline writes one message down the agent's end of a lifeline. A
// guarding process that is gone makes the write fail: nothing to do then.
func writeDeadline(w *os.File, d int64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(d))
	w.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := w.Write(b[:])
	return err
}

// fence is a runner's lease deadline and the lifelines it is told to: the
// latest deadline goes to every lifeline added, and each new one to all.
type fence struct {
	mu       sync.Mutex
	deadline int64
	lines    map[*os.File]bool
}

// Fence sets the deadline of every resource the runner runs and will
// start (the zero time: none).
func (f *fence) Fence(deadline time.Time) {
	var d int64
	if !deadline.IsZero() {
		d = bootNow() + int64(time.Until(deadline))
		if d <= 0 {
			d = 1
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadline = d
	for w := range f.lines {
		writeDeadline(w, d)
	}
}

// add tells the lifeline w the current deadline, and every later one.
func (f *fence) add(w *os.File) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lines == nil {
		f.lines = map[*os.File]bool{}
	}
	f.lines[w] = true
	if f.deadline != 0 {
		writeDeadline(w, f.deadline)
	}
}

// remove stops telling w.
func (f *fence) remove(w *os.File) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.lines, w)
}

// Fencer is a runner whose resources end by themselves at a deadline the
// agent keeps extending: then a resource cannot outlive the node's lease
// even when the agent is frozen or stuck.
type Fencer interface {
	Fence(deadline time.Time)
}

var _ Fencer = (*fence)(nil)
