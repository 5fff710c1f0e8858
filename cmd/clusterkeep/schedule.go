package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/schedule"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/spf13/cobra"
)

func scheduleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "schedule", Short: "Scheduled backups, taken by the cluster's leader"}
	var sc schedule.Config
	var every, cron string
	set := &cobra.Command{
		Use:   "set (--every DURATION | --cron SPEC) --to TARGET [--keep-last N ...] [--recipient KEY] [--paused]",
		Short: "Set the backup schedule (kept in the cluster database)",
		Long: `Set the backup schedule. It lives in the cluster database, so it is
replicated, backed up and restored with the rest. The leader takes each run
(through the same node selection as backup create), claiming it in the
database first, so exactly one node takes it; a run missed while the
cluster was down is taken once when it comes back; a failed run is retried
with backoff (30s, doubling, at most 30m) until the next one is due.

--every takes a Go duration (6h, 30m); --cron five fields in UTC (minute
hour day-of-month month day-of-week), or @hourly, @daily, @weekly, @monthly.
The target is a directory on the leader's host (a shared mount, typically;
a relative path is made absolute here), or s3://bucket/prefix (the agents
need the AWS credentials and endpoint in their environment).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case every != "" && cron != "":
				return usageError{fmt.Errorf("--every and --cron exclude each other")}
			case every != "":
				sc.Spec = "@every " + every
			case cron != "":
				sc.Spec = cron
			default:
				return usageError{fmt.Errorf("give --every DURATION or --cron SPEC")}
			}
			if !strings.HasPrefix(sc.Target, "s3://") && sc.Target != "" {
				// A path on this host, made absolute here: the leader
				// takes it as given.
				abs, err := filepath.Abs(sc.Target)
				if err != nil {
					return usageError{err}
				}
				sc.Target = abs
			}
			if err := sc.Validate(); err != nil {
				return usageError{err}
			}
			return g.withCluster(cmd, func(ctx context.Context, c *client.Cluster) error {
				if err := c.SetSchedule(ctx, sc); err != nil {
					return fmt.Errorf("set the schedule: %w", err)
				}
				return showSchedule(g, cmd, c)
			})
		},
	}
	f := set.Flags()
	f.StringVar(&every, "every", "", "take a backup every DURATION (e.g. 6h)")
	f.StringVar(&cron, "cron", "", "take a backup at the times of this cron expression (UTC)")
	f.StringVar(&sc.Target, "to", "", "where the sets go: a directory on the leader's host")
	f.IntVar(&sc.KeepLast, "keep-last", 0, "retention: keep the last N sets")
	f.IntVar(&sc.KeepDaily, "keep-daily", 0, "retention: keep the newest set of each of the last N days")
	f.IntVar(&sc.KeepWeekly, "keep-weekly", 0, "retention: keep the newest set of each of the last N weeks")
	f.IntVar(&sc.KeepMonthly, "keep-monthly", 0, "retention: keep the newest set of each of the last N months")
	f.StringArrayVar(&sc.Recipients, "recipient", nil, "encrypt every set with age to this public key (repeatable)")
	f.BoolVar(&sc.Paused, "paused", false, "record the schedule but take no run")
	show := &cobra.Command{
		Use: "show", Short: "Show the schedule, its last runs and the next", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCluster(cmd, func(ctx context.Context, c *client.Cluster) error {
				return showSchedule(g, cmd, c)
			})
		},
	}
	var wait bool
	runNow := &cobra.Command{
		Use: "run-now [--wait]", Short: "Ask the leader to take a scheduled run at once", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCluster(cmd, func(ctx context.Context, c *client.Cluster) error {
				asked, err := c.RunSchedule(ctx)
				if err != nil {
					return fmt.Errorf("run the schedule now: %w", err)
				}
				if !wait {
					return g.out.Result(map[string]any{"asked": asked}, func(w io.Writer) { fmt.Fprintf(w, "asked the leader for a run at %s\n", asked.Format(time.RFC3339)) })
				}
				for {
					s, err := c.Schedule(ctx)
					if err != nil {
						return err
					}
					if l := s.State.Last; !l.Started.Before(asked) && l.Result != schedule.Running {
						if l.Result == schedule.Failed {
							return fmt.Errorf("the run failed: %s", l.Error)
						}
						return g.out.Result(l, func(w io.Writer) { fmt.Fprintf(w, "backed up to %s\n", l.Path) })
					}
					select {
					case <-ctx.Done():
						return fmt.Errorf("wait for the run: %w", ctx.Err())
					case <-time.After(500 * time.Millisecond):
					}
				}
			})
		},
	}
	runNow.Flags().BoolVar(&wait, "wait", false, "wait until the run ends")
	remove := &cobra.Command{
		Use: "remove", Short: "Remove the schedule (its sets stay)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCluster(cmd, func(ctx context.Context, c *client.Cluster) error {
				if err := c.RemoveSchedule(ctx); err != nil {
					return fmt.Errorf("remove the schedule: %w", err)
				}
				return g.out.Result(map[string]bool{"removed": true}, func(w io.Writer) { fmt.Fprintln(w, "schedule removed") })
			})
		},
	}
	cmd.AddCommand(set, show, runNow, remove)
	return cmd
}

func showSchedule(g *globals, cmd *cobra.Command, c *client.Cluster) error {
	ctx, cancel := g.context(cmd)
	defer cancel()
	s, err := c.Schedule(ctx)
	if err != nil {
		return fmt.Errorf("show the schedule: %w", err)
	}
	return g.out.Result(s, func(w io.Writer) { printSchedule(w, s) })
}

func printSchedule(w io.Writer, s schedule.Status) {
	c, st := s.Config, s.State
	fmt.Fprintf(w, "schedule:  %s\ntarget:    %s\n", c.Spec, c.Target)
	if c.KeepLast+c.KeepDaily+c.KeepWeekly+c.KeepMonthly > 0 {
		fmt.Fprintf(w, "retention: last %d, daily %d, weekly %d, monthly %d\n", c.KeepLast, c.KeepDaily, c.KeepWeekly, c.KeepMonthly)
	}
	if len(c.Recipients) > 0 {
		fmt.Fprintf(w, "encrypted: to %d recipient(s)\n", len(c.Recipients))
	}
	switch {
	case c.Paused:
		fmt.Fprintln(w, "next run:  paused")
	case !s.NextRun.IsZero():
		fmt.Fprintf(w, "next run:  %s\n", s.NextRun.Format(time.RFC3339))
	}
	if st.Failures > 0 {
		fmt.Fprintf(w, "failing:   %d run(s) in a row; retry at %s\n", st.Failures, st.RetryAt.Format(time.RFC3339))
	}
	if len(st.History) == 0 && st.Last.Result == "" {
		fmt.Fprintln(w, "\nno run yet")
		return
	}
	var rows [][]string
	runs := st.History
	if st.Last.Result == schedule.Running {
		runs = append(runs, st.Last)
	}
	for _, r := range runs {
		what := r.Path
		if r.Error != "" {
			what = r.Error
		}
		node := r.Runner
		if n := s.Nodes[r.Runner]; n != "" {
			node = n
		}
		rows = append(rows, []string{r.Slot.Format(time.RFC3339), node, r.Result, what})
	}
	fmt.Fprintln(w)
	ui.Table(w, []string{"DUE", "NODE", "RESULT", "SET OR ERROR"}, rows)
}
