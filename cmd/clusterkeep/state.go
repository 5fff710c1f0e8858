package main

import (
	"fmt"
	"io"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/spf13/cobra"
)

func stateCmd(g *globals) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Print the node cluster state of this host's node (GetNodeClusterState)",
		Long: `Print the node cluster state of the node whose data directory is --data-dir:
NotInstalled (no node data), NotConfigured (not a member of a cluster),
NotRunning (a member whose cluster service is not running) or Running.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			st, err := client.GetNodeState(ctx, dataDir)
			if err != nil {
				return err
			}
			return g.out.Result(st, func(w io.Writer) {
				fmt.Fprintln(w, st.State)
				if st.NodeName != "" {
					fmt.Fprintf(w, "  node:    %s (%s)\n", st.NodeName, st.NodeID)
				}
				if st.ClusterName != "" {
					fmt.Fprintf(w, "  cluster: %s (%s), generation %d\n", st.ClusterName, st.ClusterID, st.Generation)
				}
				if st.RestorePending != "" {
					fmt.Fprintf(w, "  pending: restore of backup %s, applied at the next start of the service\n", st.RestorePending)
				}
				if st.Why != "" {
					fmt.Fprintf(w, "  why:     %s\n", st.Why)
				}
			})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "the node's data directory")
	return cmd
}
