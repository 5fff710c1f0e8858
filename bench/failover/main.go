// Command failover measures how long a group takes to come back after its
// owner's agent is killed: a three-node cluster of agent processes on
// loopback runs one group of one exec resource that listens on a loopback
// port (its health check is a TCP check of that port); each round SIGKILLs
// the owner's agent and times, from the kill, until the port answers again
// (the resource started on another node and its check passes), then starts
// the killed agent again. It does this with the default lease settings and
// with the tightest documented ones, and prints median (min–max) per
// setting, apart for owners that were followers and owners that led.
//
//	go run ./bench/failover              # 7 rounds per setting
//	go run ./bench/failover -rounds 3
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/localcluster"
)

type setting struct {
	name string
	args []string
}

var settings = []setting{
	{"default (lease 7s, margin 2.5s, renew 1s; consensus 1s/1s)", []string{
		"--heartbeat-timeout", "1s", "--election-timeout", "1s", "--leader-lease", "500ms"}},
	{"tightest (lease 2s, margin 1s, renew 250ms; consensus 300ms/300ms)", []string{
		"--group-lease", "2s", "--group-lease-margin", "1s", "--group-lease-renew", "250ms",
		"--heartbeat-timeout", "300ms", "--election-timeout", "300ms", "--leader-lease", "150ms"}},
}

func main() {
	rounds := flag.Int("rounds", 7, "kills per setting")
	flag.Parse()
	if err := run(*rounds); err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

func run(rounds int) error {
	work, err := os.MkdirTemp("", "ck-failover-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin, res := filepath.Join(work, "clusterkeep"), filepath.Join(work, "ckres")
	for _, b := range [][2]string{{bin, "./cmd/clusterkeep"}, {res, "./internal/testcluster/ckres"}} {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	fmt.Printf("machine: %d cores, %s; %s\n\n", runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("%-70s %-9s %5s  %s\n", "setting", "owner", "n", "kill -> check passes on another node: median (min-max)")
	for i, s := range settings {
		follower, leader, err := measure(filepath.Join(work, fmt.Sprint(i)), bin, res, s, rounds)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		for _, row := range []struct {
			who string
			d   []time.Duration
		}{{"follower", follower}, {"leader", leader}, {"any", append(append([]time.Duration{}, follower...), leader...)}} {
			fmt.Printf("%-70s %-9s %5d  %s\n", s.name, row.who, len(row.d), stats(row.d))
		}
	}
	return nil
}

// measure runs rounds kills on a new cluster with setting s.
func measure(dir, bin, res string, s setting, rounds int) (follower, leader []time.Duration, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	lc, err := localcluster.UpWith(ctx, dir, 3, bin, s.args)
	if lc != nil {
		defer lc.Down()
	}
	if err != nil {
		return nil, nil, err
	}
	env := lc.Env()
	cli := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, lc.Binary, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			return "", fmt.Errorf("%v: %v: %s", args, err, ee.Stderr)
		}
		return string(out), err
	}
	ports, err := localcluster.FreePorts(1)
	if err != nil {
		return nil, nil, err
	}
	port := ports[0]
	start, _ := json.Marshal([]string{res, "-log", filepath.Join(dir, "runs.log"), "-listen", port})
	if _, err := cli("resource", "add", "svc", "--start", string(start), "--tcp", port,
		"--monitor-interval", "1s", "--monitor-timeout", "500ms"); err != nil {
		return nil, nil, err
	}
	if _, err := cli("group", "create", "g", "--resources", "svc", "--failover-threshold", "1000", "--wanted", "online"); err != nil {
		return nil, nil, err
	}
	for r := 0; r < rounds; r++ {
		st, err := waitOnline(ctx, cli, "")
		if err != nil {
			return nil, nil, err
		}
		// Rounds alternate: the owner a follower, then the leader.
		lead, err := leaderOf(ctx, lc)
		if err != nil {
			return nil, nil, err
		}
		wantLeader := r%2 == 1
		if (st.Owner == lead) != wantLeader {
			target := lead
			if !wantLeader {
				for _, n := range lc.Nodes {
					if n.Name != lead && n.Name != st.Owner {
						target = n.Name
					}
				}
			}
			if _, err := cli("group", "move", "g", "--node", target, "--wait"); err != nil {
				return nil, nil, err
			}
			if st, err = waitOnline(ctx, cli, ""); err != nil {
				return nil, nil, err
			}
		}
		if err := waitAnswers(ctx, port); err != nil {
			return nil, nil, err
		}
		if lead, err = leaderOf(ctx, lc); err != nil {
			return nil, nil, err
		}
		wasLeader := st.Owner == lead
		killed := time.Now()
		if _, err := lc.Stop(st.Owner, true); err != nil {
			return nil, nil, err
		}
		// The resource dies with its agent: wait until the port is closed,
		// then until it answers again, from the new owner.
		for answers(port) {
			time.Sleep(2 * time.Millisecond)
		}
		if err := waitAnswers(ctx, port); err != nil {
			return nil, nil, err
		}
		d := time.Since(killed)
		if wasLeader {
			leader = append(leader, d)
		} else {
			follower = append(follower, d)
		}
		fmt.Fprintf(os.Stderr, "  round %d: killed %s (leader %v): back after %v\n", r+1, st.Owner, wasLeader, d.Round(time.Millisecond))
		if _, err := lc.Start(ctx, st.Owner); err != nil {
			return nil, nil, err
		}
		if err := lc.WaitAllUp(ctx); err != nil {
			return nil, nil, err
		}
	}
	return follower, leader, nil
}

func waitOnline(ctx context.Context, cli func(...string) (string, error), not string) (placement.GroupStatus, error) {
	for {
		out, err := cli("group", "status", "--json")
		if err == nil {
			var list []placement.GroupStatus
			if err := json.Unmarshal([]byte(out), &list); err == nil && len(list) == 1 && list[0].State == "Online" && list[0].Owner != not {
				return list[0], nil
			}
		}
		select {
		case <-ctx.Done():
			return placement.GroupStatus{}, fmt.Errorf("group not online: %w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 50*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func waitAnswers(ctx context.Context, addr string) error {
	for !answers(addr) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never answered: %w", addr, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// leaderOf names the cluster's leader.
func leaderOf(ctx context.Context, lc *localcluster.Cluster) (string, error) {
	creds, err := lc.Credentials()
	if err != nil {
		return "", err
	}
	c, err := client.OpenClusterWith(ctx, strings.Split(lc.APIAddrs(), ","), client.WithCredentials(creds))
	if err != nil {
		return "", err
	}
	return c.Info().Leader, nil
}

func stats(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	s := append([]time.Duration{}, d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	r := func(x time.Duration) string { return fmt.Sprintf("%.2f s", x.Seconds()) }
	return fmt.Sprintf("%s (%s-%s)", r(med), r(s[0]), r(s[len(s)-1]))
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
