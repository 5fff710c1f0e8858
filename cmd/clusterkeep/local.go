package main

import (
	"fmt"
	"io"
	"os"

	"github.com/clusterkeep/clusterkeep/internal/localcluster"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/spf13/cobra"
)

func localCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{Use: "local", Short: "Run a cluster of agents on this machine's loopback, for trying and testing"}
	cmd.PersistentFlags().StringVar(&dir, "dir", "clusterkeep-local", "directory of the local cluster")

	var nodes int
	up := &cobra.Command{
		Use:   "up",
		Short: "Start a local cluster (or the stopped nodes of the one in --dir) and wait until every node is Up",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			ctx, cancel := g.context(cmd)
			defer cancel()
			c, err := localcluster.UpSaying(ctx, dir, nodes, self, nil, func(line string) { g.out.Infof("%s", line) })
			if err != nil {
				return err
			}
			return printLocal(g, c)
		},
	}
	up.Flags().IntVar(&nodes, "nodes", 3, "number of nodes of a new cluster")

	down := &cobra.Command{
		Use: "down", Short: "Stop every node of the local cluster (their data stays)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := localcluster.Load(dir)
			if err != nil {
				return err
			}
			if err := c.Down(); err != nil {
				return err
			}
			return printStatus(g, cmd, c)
		},
	}

	var kill bool
	stop := &cobra.Command{
		Use: "stop NODE", Short: "Stop one node's agent (SIGTERM; --kill for SIGKILL)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := localcluster.Load(dir)
			if err != nil {
				return err
			}
			if _, err := c.Stop(args[0], kill); err != nil {
				return err
			}
			return printStatus(g, cmd, c)
		},
	}
	stop.Flags().BoolVar(&kill, "kill", false, "kill with SIGKILL, as a crash would")

	start := &cobra.Command{
		Use: "start NODE", Short: "Start one stopped node's agent and wait until it runs", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := localcluster.Load(dir)
			if err != nil {
				return err
			}
			ctx, cancel := g.context(cmd)
			defer cancel()
			if _, err := c.Start(ctx, args[0]); err != nil {
				return err
			}
			return printStatus(g, cmd, c)
		},
	}

	status := &cobra.Command{
		Use: "status", Short: "Show each local node's process and node cluster state", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := localcluster.Load(dir)
			if err != nil {
				return err
			}
			return printStatus(g, cmd, c)
		},
	}
	cmd.AddCommand(up, down, stop, start, status)
	return cmd
}

func printLocal(g *globals, c *localcluster.Cluster) error {
	type node struct {
		Name    string `json:"name"`
		API     string `json:"api"`
		DataDir string `json:"data_dir"`
	}
	out := struct {
		Dir     string `json:"dir"`
		Cluster string `json:"cluster"`
		Nodes   []node `json:"nodes"`
		// Env is what a client needs: addresses, authority, token file.
		Env []string `json:"env"`
	}{Dir: c.Dir, Cluster: c.APIAddrs(), Env: c.Env()}
	for _, n := range c.Nodes {
		out.Nodes = append(out.Nodes, node{n.Name, n.API, n.DataDir})
	}
	return g.out.Result(out, func(w io.Writer) {
		var rows [][]string
		for _, n := range out.Nodes {
			rows = append(rows, []string{n.Name, n.API, n.DataDir})
		}
		fmt.Fprintf(w, "local cluster %q is up in %s\n\n", localcluster.ClusterName, c.Dir)
		ui.Table(w, []string{"NODE", "API", "DATA DIR"}, rows)
		fmt.Fprintf(w, "\nUse it from this shell:\n")
		for _, e := range out.Env {
			fmt.Fprintf(w, "  export %s\n", e)
		}
		fmt.Fprintf(w, "  export PATH=%s:$PATH\n", c.Dir+"/bin")
	})
}

func printStatus(g *globals, cmd *cobra.Command, c *localcluster.Cluster) error {
	ctx, cancel := g.context(cmd)
	defer cancel()
	st := c.Status(ctx)
	return g.out.Result(map[string]any{"dir": c.Dir, "nodes": st}, func(w io.Writer) {
		var rows [][]string
		for _, n := range st {
			pid := "-"
			if n.PID > 0 {
				pid = fmt.Sprint(n.PID)
			}
			rows = append(rows, []string{n.Name, n.Process, pid, string(n.State), n.API, n.DataDir})
		}
		ui.Table(w, []string{"NODE", "PROCESS", "PID", "STATE", "API", "DATA DIR"}, rows)
	})
}
