// Command ckres is the resource the tests run in groups: it appends what
// it does to a shared log, so a test can tell when it ran on which node
// and prove a group never ran on two nodes at once. Test support only.
//
// Each line is "EVENT NODE NAME UNIXNANO": start when it starts, alive
// every -beat while it runs, stop when SIGTERM stops it. With -listen it
// serves TCP on that address (a health check target, and a second copy on
// the same loopback address cannot start); with -exit-after it exits with
// status 3 after that long (a resource that keeps failing).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	logPath := flag.String("log", "", "the shared log to append to")
	name := flag.String("name", "", "the resource's name in the log (default $CLUSTERKEEP_RESOURCE)")
	listen := flag.String("listen", "", "serve TCP on this address")
	beat := flag.Duration("beat", 20*time.Millisecond, "how often to log alive")
	exitAfter := flag.Duration("exit-after", 0, "exit with status 3 after this long")
	flag.Parse()
	if *name == "" {
		*name = os.Getenv("CLUSTERKEEP_RESOURCE")
	}
	node := os.Getenv("CLUSTERKEEP_NODE")
	f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ckres:", err)
		os.Exit(1)
	}
	write := func(event string) {
		fmt.Fprintf(f, "%s %s %s %d\n", event, node, *name, time.Now().UnixNano())
	}
	// The start line comes first: whoever sees the resource ready (its
	// port answers) finds its start logged.
	write("start")
	if *listen != "" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ckres:", err)
			os.Exit(2)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(*beat)
	var exit <-chan time.Time
	if *exitAfter > 0 {
		exit = time.After(*exitAfter)
	}
	for {
		select {
		case <-tick.C:
			write("alive")
		case <-stop:
			write("stop")
			os.Exit(0)
		case <-exit:
			write("exit")
			os.Exit(3)
		}
	}
}
