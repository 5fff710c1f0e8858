package main

import (
	"fmt"
	"io"

	"github.com/clusterkeep/clusterkeep/internal/aside"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/spf13/cobra"
)

func asideCmd(g *globals) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "aside",
		Short: "List and remove the copies of this node's state kept aside (after evictions and restores)",
		Long: `A node never deletes its old cluster state: when it is evicted, when an
authoritative restore made its state stale, or when a restore replaced its
files, the old database and consensus log are moved, as they were, to
DATA_DIR/aside/NAME. Each such folder reads like a stopped node's data
directory:

  clusterkeep config get KEY NAME --data-dir DATA_DIR/aside/NAME

Remove the copies you no longer want with 'aside remove'.`,
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", defaultDataDir(), "the node's data directory")

	list := &cobra.Command{
		Use: "list", Short: "List the copies kept aside, with their reason, time and size", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := aside.List(dataDir)
			if err != nil {
				return err
			}
			if cs == nil {
				cs = []aside.Copy{}
			}
			return g.out.Result(cs, func(w io.Writer) {
				if len(cs) == 0 {
					fmt.Fprintf(w, "nothing kept aside in %s\n", dataDir)
					return
				}
				var rows [][]string
				for _, c := range cs {
					rows = append(rows, []string{c.Name, c.Reason, c.Time.Format("2006-01-02 15:04:05Z"), ui.Bytes(c.Bytes)})
				}
				ui.Table(w, []string{"NAME", "REASON", "SET ASIDE", "SIZE"}, rows)
				n, b := aside.Total(cs)
				fmt.Fprintf(w, "\n%d copies, %s, in %s\n", n, ui.Bytes(b), dataDir)
			})
		},
	}

	var all bool
	remove := &cobra.Command{
		Use: "remove NAME... | --all", Short: "Delete copies kept aside (all named are checked before any is deleted)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usageError{fmt.Errorf("aside remove: name the copies to delete (see 'clusterkeep aside list'), or give --all")}
			}
			cs, err := aside.List(dataDir)
			if err != nil {
				return err
			}
			names := args
			if all {
				names = nil
				for _, c := range cs {
					names = append(names, c.Name)
				}
			}
			if err := aside.Remove(dataDir, names); err != nil {
				return err
			}
			var freed int64
			for _, c := range cs {
				for _, n := range names {
					if c.Name == n {
						freed += c.Bytes
					}
				}
			}
			out := struct {
				Removed []string `json:"removed"`
				Bytes   int64    `json:"bytes"`
			}{append([]string{}, names...), freed}
			return g.out.Result(out, func(w io.Writer) {
				fmt.Fprintf(w, "removed %d copies kept aside (%s)\n", len(names), ui.Bytes(freed))
			})
		},
	}
	remove.Flags().BoolVar(&all, "all", false, "delete every copy kept aside")
	cmd.AddCommand(list, remove)
	return cmd
}
