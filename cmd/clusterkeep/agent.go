package main

import (
	"fmt"
	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	"log/slog"
	"os"

	"github.com/clusterkeep/clusterkeep/internal/agent"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/spf13/cobra"
)

func agentCmd(g *globals) *cobra.Command {
	var cfg agent.Config
	var file string
	var logJSON bool
	var joinTokenFile string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node of the cluster (the cluster service and its API)",
		Long: `Run one node: the cluster service on --data-dir and the cluster API on --api.

A node in no cluster creates one with --create NAME, or joins one with
--join ADDR (the API address of any member) and --join-token. A node that
is already a member ignores both and rejoins its cluster.

Security is on by default. Creating a cluster makes its certificate
authority (or takes yours: --ca-cert, --ca-key), a join token and a first
admin token (roles operator and backup), written to DATA_DIR/join-token
and DATA_DIR/admin-token (0600); give your own with --join-token and
--admin-token (or $CLUSTERKEEP_JOIN_TOKEN, $CLUSTERKEEP_ADMIN_TOKEN). Peers
talk mutual TLS with certificates of that authority; the API is TLS, and
takes a bearer token, or a node's certificate. The local socket
DATA_DIR/api.sock (0600) serves the API to root on the node without a token.

--config FILE reads the same settings from a JSON file (keys: data_dir,
name, api, api_advertise, raft, raft_advertise, create, join, join_token,
admin_token, ca_cert, ca_key, socket, heartbeat_timeout, election_timeout,
leader_lease, snapshot_threshold, freeze_window, session_timeout, metrics,
writers); flags given on the command line win over the file.

Metrics: every agent serves Prometheus metrics at https://API/metrics to a
token of any role, and its dashboard at https://API/ui/ (log in with a
token). --metrics ADDR serves GET /metrics also over plain HTTP, without a
token, on ADDR (say 127.0.0.1:9400 for a scraper on the same host); off by
default.`,
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
			if err := agentSecrets(&cfg, joinTokenFile); err != nil {
				return err
			}
			var h slog.Handler = slog.NewTextHandler(os.Stderr, nil)
			if logJSON || g.json {
				h = slog.NewJSONHandler(os.Stderr, nil)
			}
			log := slog.New(h)
			// Every file the agent writes holds cluster data: its owner's
			// only, whatever the umask (raft's snapshots included).
			fsutil.PrivateUmask()
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
	f.StringVar(&cfg.GroupLease, "group-lease", "", "how long a node's group lease holds: a node not heard from this long loses its groups (default 7s)")
	f.StringVar(&cfg.GroupLeaseMargin, "group-lease-margin", "", "how long before its lease ends a node that cannot renew it stops its groups (default 2.5s)")
	f.StringVar(&cfg.GroupLeaseRenew, "group-lease-renew", "", "how often a node renews its group lease (default 1s)")
	f.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", 0, "log entries between consensus snapshots (default 8192)")
	f.StringVar(&cfg.FreezeWindow, "freeze-window", "", "longest time writers stay frozen in a backup (default 60s)")
	f.StringVar(&cfg.SessionTimeout, "session-timeout", "", "abort a backup or restore whose requester is silent this long (default 60s)")
	f.BoolVar(&logJSON, "log-json", false, "write logs as JSON (as --json does)")
	f.StringVar(&cfg.JoinToken, "join-token", "", "the cluster's join token (default $"+agent.EnvJoinToken+")")
	f.StringVar(&joinTokenFile, "join-token-file", "", "read the join token from this file")
	f.StringVar(&cfg.AdminToken, "admin-token", "", "with --create: the first admin API token (default $"+agent.EnvAdminToken+", else a new one)")
	f.StringVar(&cfg.CACert, "ca-cert", "", "with --create: PEM certificate of your own authority (default $"+agent.EnvCACert+", else the cluster makes one)")
	f.StringVar(&cfg.CAKey, "ca-key", "", "with --create: PEM key of that authority (default $"+agent.EnvCAKey+")")
	f.StringVar(&cfg.Socket, "socket", "", "local API socket (default DATA_DIR/api.sock)")
	f.StringVar(&cfg.Metrics, "metrics", "", "also serve GET /metrics over plain HTTP, without a token, on this address (default off)")
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
	set("group-lease", &dst.GroupLease, flags.GroupLease)
	set("group-lease-margin", &dst.GroupLeaseMargin, flags.GroupLeaseMargin)
	set("group-lease-renew", &dst.GroupLeaseRenew, flags.GroupLeaseRenew)
	set("freeze-window", &dst.FreezeWindow, flags.FreezeWindow)
	set("session-timeout", &dst.SessionTimeout, flags.SessionTimeout)
	set("join-token", &dst.JoinToken, flags.JoinToken)
	set("admin-token", &dst.AdminToken, flags.AdminToken)
	set("ca-cert", &dst.CACert, flags.CACert)
	set("ca-key", &dst.CAKey, flags.CAKey)
	set("socket", &dst.Socket, flags.Socket)
	set("metrics", &dst.Metrics, flags.Metrics)
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

// agentSecrets fills the agent's secrets the flags and file left empty
// from a token file or the environment (never from flag defaults, which
// --help would print).
func agentSecrets(cfg *agent.Config, joinTokenFile string) error {
	if joinTokenFile != "" {
		t, err := client.ReadTokenFile(joinTokenFile)
		if err != nil {
			return usageError{fmt.Errorf("--join-token-file: %w", err)}
		}
		cfg.JoinToken = t
	}
	if cfg.JoinToken == "" {
		cfg.JoinToken = os.Getenv(agent.EnvJoinToken)
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = os.Getenv(agent.EnvAdminToken)
	}
	if cfg.Create != "" && cfg.CACert == "" && cfg.CAKey == "" {
		cfg.CACert, cfg.CAKey = os.Getenv(agent.EnvCACert), os.Getenv(agent.EnvCAKey)
	}
	return nil
}
