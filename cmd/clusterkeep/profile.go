package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/resources"
)

// EnvProfileDir, when set, makes every clusterkeep process serve CPU, block
// and heap profiles on a loopback port of its own and write that address to
// DIR/<command>-<pid>.addr. A command other than the agent also profiles
// its whole run, as it may end before anyone asks: DIR/<command>-<pid>.cpu.pprof
// and, at its end, .heap.pprof. It is for the benchmarks (bench/ckbench
// -profile); nothing else sets it.
const EnvProfileDir = "CLUSTERKEEP_PPROF_DIR"

// stopProfile ends and writes the whole-run profiles; main calls it before
// the process exits.
var stopProfile = func() {}

func init() {
	dir := os.Getenv(EnvProfileDir)
	if dir == "" || (len(os.Args) > 1 && os.Args[1] == resources.ShimArg) {
		return
	}
	// Waits of 100 µs and more are sampled for /block; the benchmarks
	// read it to see what a write waits on, which a CPU profile omits.
	runtime.SetBlockProfileRate(int(100 * time.Microsecond))
	if err := serveProfiles(dir); err != nil {
		slog.Warn("profiles not served", "env", EnvProfileDir, "err", err)
	}
	if len(os.Args) > 1 && os.Args[1] != "agent" {
		if err := profileRun(dir); err != nil {
			slog.Warn("run not profiled", "env", EnvProfileDir, "err", err)
		}
	}
}

// profileRun profiles the CPU from now until stopProfile, which also writes
// the heap profile.
func profileRun(dir string) error {
	base := filepath.Join(dir, fmt.Sprintf("%s-%d", commandName(), os.Getpid()))
	f, err := os.Create(base + ".cpu.pprof")
	if err != nil {
		return fmt.Errorf("create the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("start the CPU profile: %w", err)
	}
	stopProfile = func() {
		pprof.StopCPUProfile()
		f.Close()
		if h, err := os.Create(base + ".heap.pprof"); err == nil {
			pprof.Lookup("heap").WriteTo(h, 0)
			h.Close()
		}
	}
	return nil
}

// commandName is the command's first two words, e.g. "backup-create".
func commandName() string {
	name := "clusterkeep"
	if len(os.Args) > 1 {
		name = strings.Join(os.Args[1:min(len(os.Args), 3)], "-")
		name = strings.Map(func(r rune) rune {
			if r == '/' || r == ' ' {
				return '_'
			}
			return r
		}, name)
	}
	return name
}

func serveProfiles(dir string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for profiles: %w", err)
	}
	addrFile := filepath.Join(dir, fmt.Sprintf("%s-%d.addr", commandName(), os.Getpid()))
	if err := os.WriteFile(addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
		ln.Close()
		return fmt.Errorf("record the profile address: %w", err)
	}
	mux := http.NewServeMux()
	// GET /cpu?seconds=N: a CPU profile of the next N seconds.
	mux.HandleFunc("/cpu", func(w http.ResponseWriter, r *http.Request) {
		secs, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || secs <= 0 {
			secs = 5
		}
		if err := pprof.StartCPUProfile(w); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		select {
		case <-time.After(time.Duration(secs) * time.Second):
		case <-r.Context().Done():
		}
		pprof.StopCPUProfile()
	})
	// GET /block: where goroutines have waited (channels, locks, selects)
	// since the process started; the difference of two is the wait
	// between them (go tool pprof -base).
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		pprof.Lookup("block").WriteTo(w, 0)
	})
	// GET /heap: the heap profile now.
	mux.HandleFunc("/heap", func(w http.ResponseWriter, r *http.Request) {
		pprof.Lookup("heap").WriteTo(w, 0)
	})
	go http.Serve(ln, mux)
	return nil
}
