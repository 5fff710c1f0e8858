package main

import (
	"fmt"
	"io"
	"log/slog"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/consensuslog"
	"github.com/clusterkeep/clusterkeep/internal/restore"
	"github.com/spf13/cobra"
)

func restoreCmd(g *globals) *cobra.Command {
	var o restore.Options
	var identities func() ([]age.Identity, error)
	cmd := &cobra.Command{
		Use:   "restore PATH",
		Short: "Restore a backup: on this node, on the whole cluster (--authoritative), or one key (--key)",
		Long: `Restore a backup set. The whole set is verified first, every byte against
its checksum, as it is read once into this node's data directory; a set
that fails changes nothing. --deep also checks the backup's database page
by page and key by key.

Without --authoritative, this node (--data-dir) gets the backup's database
(and its registry, when the backup was taken on this node): when its service
starts it rejoins, and the cluster's newer state replaces what was restored.

--data-dir must exist. A node whose data is gone is restored into an empty
directory made for it, and --node NAME says which node that is: the member
the backup was taken on. It is refused while that node answers at its
address: two processes would claim to be the same node.

With --authoritative the whole cluster is rolled back: every other member's
service must be stopped (they are asked; a member that cannot be reached
stops the restore unless --force), the generation is raised, and this node
starts as a cluster of one holding the backup's state. Start the other
members afterwards, in any order: each moves its state aside and rejoins.

While this node's service runs, its files cannot be replaced: the restore is
staged and applied at the service's next start. Old files are moved aside
under DATA_DIR/aside, never deleted.

--key KEY writes one key or subtree of the backup into the running cluster
as one transaction, without any rollback.

An encrypted backup needs --identity FILE (an age identity file of one of
its recipients): without it, or with a wrong one, nothing is restored. With
--identity, a backup that is not encrypted is refused (its encryption may
have been removed by someone who replaced it).

Application writers' files go back only to paths a writer configured on
this node today owns, never through or over a symbolic link.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Path = args[0]
			var err error
			if o.Identities, err = identities(); err != nil {
				return err
			}
			if o.Key != "" && (o.Authoritative || o.NewCluster) {
				return usageError{fmt.Errorf("--key restores into the running cluster: it goes with neither --authoritative nor --new-cluster")}
			}
			if o.NewCluster && !o.Authoritative {
				return usageError{fmt.Errorf("--new-cluster goes with --authoritative")}
			}
			o.Cluster = g.clusterAddrs()
			o.LogStart = consensuslog.Start
			o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
			ctx, cancel := g.context(cmd)
			defer cancel()
			res, err := restore.Run(ctx, o)
			if err != nil {
				if res != nil && len(res.Checked) > 0 && !g.json {
					for _, p := range res.Checked {
						g.out.Infof("  %s (%s): %s %s", p.Name, p.API, p.State, p.Why)
					}
				}
				return err
			}
			return g.out.Result(res, func(w io.Writer) {
				if res.Kind == "key" {
					fmt.Fprintf(w, "restored %s from backup %s into cluster %s (keys: %d), sequence %d\n", o.Key, res.BackupID, res.Cluster, res.Keys, res.Seq)
					return
				}
				fmt.Fprintf(w, "%s restore of backup %s (cluster %s) on node %s: applied %s\n", res.Kind, res.BackupID, res.Cluster, res.Node, res.Applied)
				if res.Generation > 0 {
					fmt.Fprintf(w, "generation: %d\n", res.Generation)
				}
				for _, p := range res.Checked {
					fmt.Fprintf(w, "  member %s (%s): %s\n", p.Name, p.API, p.State)
				}
				if res.Note != "" {
					fmt.Fprintln(w, res.Note)
				}
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Authoritative, "authoritative", false, "roll the whole cluster back to the backup")
	f.StringVar(&o.DataDir, "data-dir", defaultDataDir(), "this node's data directory (it must exist)")
	f.StringVar(&o.Node, "node", "", "the node (name or id) an empty --data-dir is restored for")
	f.BoolVar(&o.Force, "force", false, "go on although some members cannot be reached (see --help for the risk)")
	f.BoolVar(&o.NewCluster, "new-cluster", false, "create the backup's cluster on this new machine (disaster recovery)")
	f.StringVar(&o.Key, "key", "", "restore only this key and its subtree, into the running cluster")
	f.BoolVar(&o.Deep, "deep", false, "also run bbolt's full structural check and the hive's walk of every key and value on the backup's database (by default its checksums and its header are checked)")
	identities = identityFlag(cmd)
	return cmd
}
