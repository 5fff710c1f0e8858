package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/spf13/cobra"
)

func writersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "writers", Short: "The shadow-copy writers of a node"}
	var node string
	var refresh bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List a node's writers with id, state, last error, components and restore method",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			c, err := g.open(ctx)
			if err != nil {
				return err
			}
			addr := c.Current()
			if node != "" {
				if addr, err = nodeAPI(c.Info(), node); err != nil {
					return err
				}
			}
			res, err := client.Node(addr).Writers(ctx, refresh)
			if err != nil {
				return err
			}
			return g.out.Result(res, func(w io.Writer) {
				fmt.Fprintf(w, "writers of node %s\n\n", res.Node)
				var rows [][]string
				for _, st := range res.Writers {
					m := st.Metadata
					var comps []string
					for _, c := range m.Components {
						n := len(c.Files) + len(c.Streams)
						comps = append(comps, fmt.Sprintf("%s (%s, %d)", c.Name, c.Type, n))
					}
					rows = append(rows, []string{m.Name, m.ID, string(st.State), string(m.RestoreMethod), strings.Join(comps, ", "), orDash(st.LastError)})
				}
				ui.Table(w, []string{"NAME", "ID", "STATE", "RESTORE METHOD", "COMPONENTS", "LAST ERROR"}, rows)
			})
		},
	}
	list.Flags().StringVar(&node, "node", "", "the node to ask (name); default: the node the client talks to")
	list.Flags().BoolVar(&refresh, "refresh", false, "ask every writer to identify itself again first")
	cmd.AddCommand(list)
	return cmd
}

// nodeAPI finds a member's API address by name or id.
func nodeAPI(info wire.ClusterInfo, node string) (string, error) {
	var names []string
	for _, n := range info.Nodes {
		if strings.EqualFold(n.Name, node) || n.ID == node {
			return n.APIAddr, nil
		}
		names = append(names, n.Name)
	}
	return "", fmt.Errorf("no node %q in cluster %s (nodes: %s)", node, info.Name, strings.Join(names, ", "))
}
