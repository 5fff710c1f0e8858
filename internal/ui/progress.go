package ui

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress reports a long operation: its phase and bytes done. The same
// code drives a bar on a terminal and nothing in scripts (which get the
// summary as JSON).
type Progress interface {
	// Phase starts a named step; total is its byte count, or 0 if unknown.
	Phase(name string, total int64)
	// Add counts n more bytes done.
	Add(n int64)
	// Done ends the display.
	Done()
}

// NewProgress returns a bar on stderr when it is a terminal and the
// output is not JSON, and a silent Progress otherwise.
func (o *Output) NewProgress() Progress {
	if o.JSON {
		return silent{}
	}
	f, ok := o.Err.(*os.File)
	if !ok {
		return silent{}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return silent{}
	}
	return &bar{w: f, start: time.Now()}
}

type silent struct{}

func (silent) Phase(string, int64) {}
func (silent) Add(int64)           {}
func (silent) Done()               {}

type bar struct {
	w     io.Writer
	mu    sync.Mutex
	phase string
	total int64
	done  int64
	start time.Time
	since time.Time // start of the phase
	drawn time.Time
}

func (b *bar) Phase(name string, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.phase, b.total, b.done, b.since = name, total, 0, time.Now()
	b.draw(true)
}

func (b *bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.draw(false)
}

func (b *bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw(true)
	fmt.Fprintln(b.w)
}

func (b *bar) draw(force bool) {
	now := time.Now()
	if !force && now.Sub(b.drawn) < 100*time.Millisecond {
		return
	}
	b.drawn = now
	rate := float64(b.done) / max(now.Sub(b.since).Seconds(), 1e-3)
	line := fmt.Sprintf("%-12s %s", b.phase, Bytes(b.done))
	if b.total > 0 {
		frac := min(float64(b.done)/float64(b.total), 1)
		width := 24
		fill := int(frac * float64(width))
		line += fmt.Sprintf(" / %s [%s%s] %3.0f%%", Bytes(b.total), strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100)
	}
	line += fmt.Sprintf("  %s/s", Bytes(int64(rate)))
	fmt.Fprintf(b.w, "\r\033[K%s", line)
}

// Bytes formats a byte count for people.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
