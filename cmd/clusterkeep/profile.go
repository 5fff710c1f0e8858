package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// EnvProfileDir, when set, makes every clusterkeep process serve CPU and
// heap profiles on a loopback port of its own and write that address to
// DIR/<command>-<pid>.addr. It is for the benchmarks (bench/ckbench
// -profile); nothing else sets it.
const EnvProfileDir = "CLUSTERKEEP_PPROF_DIR"

func init() {
	dir := os.Getenv(EnvProfileDir)
	if dir == "" {
		return
	}
	if err := serveProfiles(dir); err != nil {
		slog.Warn("profiles not served", "env", EnvProfileDir, "err", err)
	}
}

func serveProfiles(dir string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for profiles: %w", err)
	}
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
	addrFile := filepath.Join(dir, fmt.Sprintf("%s-%d.addr", name, os.Getpid()))
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
	// GET /heap: the heap profile now.
	mux.HandleFunc("/heap", func(w http.ResponseWriter, r *http.Request) {
		pprof.Lookup("heap").WriteTo(w, 0)
	})
	go http.Serve(ln, mux)
	return nil
}
