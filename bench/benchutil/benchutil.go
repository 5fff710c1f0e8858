// Package benchutil holds what the benchmark programs share: measuring a
// child process's own peak memory and the bytes it writes.
package benchutil

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// WatchHWM samples the process's peak resident set (VmHWM) every 5 ms
// until done closes, and returns the last (and so highest) value in MiB.
// The kernel's rusage is no measure here: a child started with vfork
// inherits its parent's peak at exec, so ru_maxrss reports the larger of
// the backup's peak and this benchmark's own.
func WatchHWM(pid int, done <-chan struct{}) float64 {
	var hwm float64
	for {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
					if kb, err := strconv.ParseFloat(f[1], 64); err == nil && kb/1024 > hwm {
						hwm = kb / 1024
					}
				}
			}
		}
		select {
		case <-done:
			return hwm
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// WriteBytes is the process's write_bytes from /proc/PID/io: the bytes it
// caused to be sent to storage (page-cache pages it dirtied), whatever
// became of them after.
func WriteBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == "write_bytes" {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/io has no write_bytes", pid)
}
