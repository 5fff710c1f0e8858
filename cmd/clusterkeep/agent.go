package main

import (
	"log/slog"
	"os"

	"github.com/clusterkeep/clusterkeep/internal/agent"
	"github.com/spf13/cobra"
)

func agentCmd(g *globals) *cobra.Command {
	var cfg agent.Config
	var file string
	var logJSON bool
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node of the cluster (the cluster service and its API)",
		Long: `Run one node: the cluster service on --data-dir and the cluster API on --api.

A node in no cluster creates one with --create NAME, or joins one with
--join ADDR (the API address of any member). A node that is already a
member ignores both and rejoins its cluster.

--config FILE reads the same settings from a JSON file (keys: data_dir,
name, api, api_advertise, raft, raft_advertise, create, join,
heartbeat_timeout, election_timeout, leader_lease, snapshot_threshold);
flags given on the command line win over the file.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" {
				fromFile, err := agent.LoadFile(file)
				if err != nil {
					return err
				}
				mergeFlags(cmd, &fromFile, &cfg)
				cfg = fromFile
			}
			var h slog.Handler = slog.NewTextHandler(os.Stderr, nil)
			if logJSON || g.json {
				h = slog.NewJSONHandler(os.Stderr, nil)
			}
			log := slog.New(h)
			a, err := agent.Start(cmd.Context(), cfg, log, os.Stderr)
			if err != nil {
				return err
			}
			select {
			case <-cmd.Context().Done():
				log.Info("stopping")
			case err = <-a.Done():
			}
			if cerr := a.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "read settings from this JSON file")
	f.StringVar(&cfg.DataDir, "data-dir", defaultDataDir(), "the node's data directory")
	f.StringVar(&cfg.Name, "name", "", "node name (default: the host name; fixed at first start)")
	f.StringVar(&cfg.API, "api", "127.0.0.1:7400", "address the cluster API listens on")
	f.StringVar(&cfg.APIAdvertise, "api-advertise", "", "API address given to clients and peers (default: --api)")
	f.StringVar(&cfg.Raft, "raft", "127.0.0.1:7401", "address for consensus traffic between nodes")
	f.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "peer address given to other nodes (default: --raft)")
	f.StringVar(&cfg.Create, "create", "", "create a cluster with this name if the node is in none")
	f.StringSliceVar(&cfg.Join, "join", nil, "join the cluster of this member (API address) if the node is in none")
	f.StringVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", "", "consensus heartbeat timeout (default 1s)")
	f.StringVar(&cfg.ElectionTimeout, "election-timeout", "", "consensus election timeout (default 1s)")
	f.StringVar(&cfg.LeaderLease, "leader-lease", "", "consensus leader lease (default 500ms)")
	f.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", 0, "log entries between consensus snapshots (default 8192)")
	f.StringVar(&cfg.FreezeWindow, "freeze-window", "", "longest time writers stay frozen in a backup (default 60s)")
	f.StringVar(&cfg.SessionTimeout, "session-timeout", "", "abort a backup or restore whose requester is silent this long (default 60s)")
	f.BoolVar(&logJSON, "log-json", false, "write logs as JSON (as --json does)")
	return cmd
}

// mergeFlags copies into dst the flags set explicitly on the command line.
func mergeFlags(cmd *cobra.Command, dst, flags *agent.Config) {
	set := func(name string, to *string, from string) {
		if cmd.Flags().Changed(name) {
			*to = from
		}
	}
	set("data-dir", &dst.DataDir, flags.DataDir)
	set("name", &dst.Name, flags.Name)
	set("api", &dst.API, flags.API)
	set("api-advertise", &dst.APIAdvertise, flags.APIAdvertise)
	set("raft", &dst.Raft, flags.Raft)
	set("raft-advertise", &dst.RaftAdvertise, flags.RaftAdvertise)
	set("create", &dst.Create, flags.Create)
	set("heartbeat-timeout", &dst.HeartbeatTimeout, flags.HeartbeatTimeout)
	set("election-timeout", &dst.ElectionTimeout, flags.ElectionTimeout)
	set("leader-lease", &dst.LeaderLease, flags.LeaderLease)
	set("freeze-window", &dst.FreezeWindow, flags.FreezeWindow)
	set("session-timeout", &dst.SessionTimeout, flags.SessionTimeout)
	if cmd.Flags().Changed("join") {
		dst.Join = flags.Join
	}
	if cmd.Flags().Changed("snapshot-threshold") {
		dst.SnapshotThreshold = flags.SnapshotThreshold
	}
	if dst.DataDir == "" {
		dst.DataDir = flags.DataDir
	}
	if dst.API == "" {
		dst.API = flags.API
	}
	if dst.Raft == "" {
		dst.Raft = flags.Raft
	}
}
