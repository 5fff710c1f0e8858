package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/spf13/cobra"
)

func clusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "The cluster as a whole"}
	info := &cobra.Command{
		Use: "info", Short: "Show the cluster's name, id, generation, leader and members (GetClusterInformation)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			c, err := g.open(ctx)
			if err != nil {
				return err
			}
			info := c.Info()
			return g.out.Result(info, func(w io.Writer) {
				fmt.Fprintf(w, "cluster:    %s\nid:         %s\ngeneration: %d\nversion:    %s\nleader:     %s\nsequence:   %d\n\n",
					info.Name, info.ID, info.Generation, info.Version, orDash(info.Leader), info.Seq)
				nodeTable(w, info.Nodes)
			})
		},
	}
	cmd.AddCommand(info, rotateJoinTokenCmd(g))
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func nodeTable(w io.Writer, nodes []wire.NodeInfo) {
	var rows [][]string
	for _, n := range nodes {
		role := nodeRole(n)
		why := n.Why
		if n.RestorePending != "" {
			why = strings.TrimSpace("restore pending (backup " + n.RestorePending + ") " + why)
		}
		rows = append(rows, []string{n.Name, string(n.State), role, n.APIAddr, fmt.Sprint(n.Applied), why})
	}
	ui.Table(w, []string{"NODE", "STATE", "ROLE", "API", "APPLIED", "WHY"}, rows)
}

// nodeRole is a member's part in consensus, as the dashboard shows it:
// leader, follower, or non-voter (a member that replicates but does not
// vote, such as one still joining).
func nodeRole(n wire.NodeInfo) string {
	switch {
	case n.Leader:
		return "leader"
	case n.Voter:
		return "follower"
	}
	return "non-voter"
}

func nodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Members of the cluster"}
	list := &cobra.Command{
		Use: "list", Short: "List the members with their states", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			c, err := g.open(ctx)
			if err != nil {
				return err
			}
			info := c.Info()
			return g.out.Result(map[string]any{"nodes": info.Nodes}, func(w io.Writer) { nodeTable(w, info.Nodes) })
		},
	}
	action := func(name, short string, call func(*client.Cluster, context.Context, string) (wire.Member, error)) *cobra.Command {
		return &cobra.Command{
			Use: name + " NODE", Short: short, Args: exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx, cancel := g.context(cmd)
				defer cancel()
				c, err := g.open(ctx)
				if err != nil {
					return err
				}
				m, err := call(c, ctx, args[0])
				if err != nil {
					return err
				}
				return g.out.Result(m, func(w io.Writer) { fmt.Fprintf(w, "%s: %s done\n", m.Name, name) })
			},
		}
	}
	var leaveAddr string
	leave := &cobra.Command{
		Use: "leave", Short: "Make a node leave its cluster gracefully (its cluster data is moved aside)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			st, err := client.Leave(ctx, leaveAddr)
			if err != nil {
				return err
			}
			return g.out.Result(st, func(w io.Writer) { fmt.Fprintf(w, "%s left the cluster\n", st.NodeName) })
		},
	}
	leave.Flags().StringVar(&leaveAddr, "node-api", "127.0.0.1:7400", "API address of the node that leaves")
	var drain bool
	pause := action("pause", "Pause a node: it stays a member and keeps the groups it runs, but is given no new one (--drain: its groups move away)",
		func(c *client.Cluster, ctx context.Context, node string) (wire.Member, error) {
			if drain {
				return c.DrainNode(ctx, node)
			}
			return c.PauseNode(ctx, node)
		})
	pause.Flags().BoolVar(&drain, "drain", false, "move the node's groups to other nodes as well")
	cmd.AddCommand(list, pause,
		action("resume", "Resume a paused node", (*client.Cluster).ResumeNode),
		action("evict", "Evict a node from the cluster for good", (*client.Cluster).EvictNode),
		leave)
	return cmd
}

func rotateJoinTokenCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-join-token",
		Short: "Replace the cluster's join token (after an eviction); root on a node, through its local socket",
		Long: `Replace the cluster's join token with a new random one and print it. A
node that joins needs the new one; nodes already members are not affected.
Do it after evicting a machine: it knew the old token. Only root on a node
may, through the node's local socket:

  clusterkeep --cluster unix:/var/lib/clusterkeep/api.sock cluster rotate-join-token`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCluster(cmd, func(ctx context.Context, c *client.Cluster) error {
				token, err := c.RotateJoinToken(ctx)
				if err != nil {
					return fmt.Errorf("rotate the join token: %w", err)
				}
				return g.out.Result(map[string]string{"join_token": token}, func(w io.Writer) { fmt.Fprintln(w, token) })
			})
		},
	}
}
