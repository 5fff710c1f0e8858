package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/backend"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/spf13/cobra"
)

// s3Settings passes the --s3-* flags given to the S3 target, which reads
// its settings from the environment, as the AWS tools do.
func (g *globals) s3Settings(cmd *cobra.Command) {
	flags := cmd.Flags()
	if flags.Changed("s3-endpoint") {
		os.Setenv(backend.EnvEndpointS3, g.s3Endpoint)
	}
	if flags.Changed("s3-path-style") {
		os.Setenv(backend.EnvPathStyle, fmt.Sprint(g.s3PathStyle))
	}
	if flags.Changed("s3-region") {
		os.Setenv(backend.EnvRegion, g.s3Region)
	}
}

func backupPrune(g *globals) *cobra.Command {
	var o backup.PruneOptions
	var identities func() ([]age.Identity, error)
	cmd := &cobra.Command{
		Use:   "prune TARGET --keep-last N | --keep-daily N | --keep-weekly N | --keep-monthly N [--dry-run]",
		Short: "Remove the backup sets a retention policy does not keep",
		Long: `Remove the backup sets of a target (a directory or s3://bucket/prefix) that
the retention policy does not keep, as restic's forget --keep-* does. A set
is kept if any rule keeps it:

  --keep-last N     the N newest sets
  --keep-daily N    the newest set of each of the N most recent days with sets
  --keep-weekly N   the same, per ISO week
  --keep-monthly N  the same, per month

Days, weeks and months are UTC ones. The policy applies to each cluster's
sets separately. The newest set of each cluster that verifies (read whole
now: every checksum, the database) is always kept; when none does, nothing
of that cluster is removed. Sets whose manifest does not read and sets that
were never completed are not backups and are never counted; what an
interrupted backup left is removed only when abandoned (its process gone,
for a directory; nothing written for 6 hours and not this process's, on S3).

--dry-run says what would be removed, and removes nothing.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Policy.Empty() {
				return usageError{fmt.Errorf("give at least one of --keep-last, --keep-daily, --keep-weekly, --keep-monthly")}
			}
			if err := o.Policy.Validate(); err != nil {
				return usageError{err}
			}
			var err error
			if o.Identities, err = identities(); err != nil {
				return err
			}
			o.Target = args[0]
			o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
			if !g.json {
				o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			ctx, cancel := g.context(cmd)
			defer cancel()
			p := g.out.NewProgress()
			p.Phase("verify the newest backup", 0)
			o.Progress = p.Add
			res, perr := backup.Prune(ctx, o)
			p.Done()
			if res == nil {
				return perr
			}
			if err := g.out.Result(res, func(w io.Writer) {
				verb := "removed"
				if res.DryRun {
					verb = "would remove"
				}
				var rows [][]string
				for _, s := range res.Kept {
					rows = append(rows, []string{"keep", s.Created.Format("2006-01-02 15:04:05Z"), s.Cluster, s.Path, strings.Join(s.Reasons, ", ")})
				}
				for _, s := range res.Removed {
					why := ""
					if s.Error != "" {
						why = "FAILED: " + s.Error
					}
					rows = append(rows, []string{verb, s.Created.Format("2006-01-02 15:04:05Z"), s.Cluster, s.Path, why})
				}
				ui.Table(w, []string{"ACTION", "TIME", "CLUSTER", "PATH", "WHY KEPT"}, rows)
				for _, u := range res.Unverified {
					fmt.Fprintf(w, "does not verify (kept unless the policy drops it): %s\n", u)
				}
				for _, u := range res.Unreadable {
					fmt.Fprintf(w, "left alone, not a readable set: %s\n", u)
				}
				for _, pp := range res.Partials {
					state := "left alone"
					if pp.Removed {
						state = "removed"
					} else if pp.Abandoned {
						state = verb
					}
					fmt.Fprintf(w, "incomplete set %s: %s (%s)\n", pp.Name, state, pp.Why)
				}
				fmt.Fprintf(w, "%d kept, %d %s\n", len(res.Kept), len(res.Removed), verb)
			}); err != nil {
				return err
			}
			return perr
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Policy.Last, "keep-last", 0, "keep the N newest sets")
	f.IntVar(&o.Policy.Daily, "keep-daily", 0, "keep the newest set of each of the N most recent days that have sets")
	f.IntVar(&o.Policy.Weekly, "keep-weekly", 0, "keep the newest set of each of the N most recent ISO weeks that have sets")
	f.IntVar(&o.Policy.Monthly, "keep-monthly", 0, "keep the newest set of each of the N most recent months that have sets")
	f.BoolVar(&o.DryRun, "dry-run", false, "say what would be removed; remove nothing")
	identities = identityFlag(cmd)
	return cmd
}
