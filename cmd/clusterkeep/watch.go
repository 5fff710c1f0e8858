package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/spf13/cobra"
)

// watchPoll is how long one watch call waits on the node for a change.
const watchPoll = 30 * time.Second

func configWatch(g *globals) *cobra.Command {
	var since uint64
	c := &cobra.Command{
		Use:   "watch [KEY]",
		Short: "Follow the changes to a subtree (the whole hive by default) as they are committed",
		Long: `Print each change to the subtree at KEY (the whole hive by default) as it is
committed, one line each: its sequence number, the operation, the key and the
value's name (--json: one object a line). It starts with the changes after
now, or with the change of sequence number --since. It goes on until
interrupted (or --timeout, if given), through a leader change and through
the stop of the node it reads from (it continues on another member, with no
change missed or repeated). When the changes it needs are no longer kept
(a node keeps the last few thousand), it says so and stops: re-read the
subtree (config export) and watch again from its sequence number.`,
		Example: `  clusterkeep config watch Apps/Web
  clusterkeep config watch --since 120 --json`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if cmd.Flags().Changed("timeout") {
				var cancel context.CancelFunc
				ctx, cancel = g.context(cmd)
				defer cancel()
			}
			c, err := g.open(ctx)
			if err != nil {
				return err
			}
			w := &watcher{c: c, after: c.Info().Seq, json: g.json, out: g.out.Out, notice: g.out.Infof}
			if len(args) == 1 {
				w.path = args[0]
			}
			if cmd.Flags().Changed("since") && since > 0 {
				w.after = since - 1
			} else if cmd.Flags().Changed("since") {
				w.after = 0
			}
			err = w.run(ctx)
			if ctx.Err() != nil {
				return nil // interrupted, or --timeout: the end the user asked for
			}
			return err
		},
	}
	c.Flags().Uint64Var(&since, "since", 0, "start with the change of this sequence number (default: changes after now)")
	return c
}

// watcher follows a subtree's changes through the cluster's members.
type watcher struct {
	c      *client.Cluster
	path   string
	after  uint64 // every change up to this sequence number was printed
	json   bool
	out    io.Writer
	notice func(format string, a ...any)
}

func (w *watcher) run(ctx context.Context) error {
	waiting := false
	for {
		res, err := w.c.Watch(ctx, w.path, w.after, watchPoll)
		if errors.Is(err, client.ErrCompacted) {
			res, err = w.elsewhere(ctx)
		}
		switch {
		case err == nil:
			if waiting {
				w.notice("a member answers again (%s): watching from sequence %d", w.c.Current(), w.after+1)
				waiting = false
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, client.ErrUnavailable):
			// The whole cluster may be restarting: keep trying, and say so.
			if !waiting {
				w.notice("no member answers (%v); still trying", err)
				waiting = true
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		default:
			return err
		}
		for _, ev := range res.Events {
			if ev.Seq <= w.after {
				continue
			}
			if err := w.print(ev); err != nil {
				return err
			}
		}
		if last := len(res.Events); last > 0 && res.Events[last-1].Seq > w.after {
			w.after = res.Events[last-1].Seq
		}
		if res.Seq > w.after {
			w.after = res.Seq
		}
	}
}

// elsewhere looks for a member that still keeps the changes after w.after
// (a node keeps them since it started: the one that answered may have
// restarted since) and goes on through it; none is ErrCompacted.
func (w *watcher) elsewhere(ctx context.Context) (wire.WatchResult, error) {
	for _, addr := range w.c.Addrs()[1:] {
		if _, err := client.Node(addr).Watch(ctx, w.path, w.after, time.Millisecond); err != nil {
			continue
		}
		c, err := client.OpenCluster(ctx, addr)
		if err != nil {
			continue
		}
		w.c = c
		return c.Watch(ctx, w.path, w.after, watchPoll)
	}
	key := w.path
	if key == "" {
		key = "the hive"
	}
	return wire.WatchResult{}, fmt.Errorf("%w: the changes to %s after sequence %d are no longer kept by any member: re-read it (clusterkeep config export %s) and watch again from the sequence number it was read at (--since)",
		client.ErrCompacted, key, w.after, strings.TrimSpace(w.path))
}

func (w *watcher) print(ev wire.Event) error {
	if w.json {
		return json.NewEncoder(w.out).Encode(ev)
	}
	line := fmt.Sprintf("%d %s %s", ev.Seq, ev.Kind, orDash(ev.Key))
	if ev.Name != "" {
		line += " " + ev.Name
	}
	_, err := fmt.Fprintln(w.out, line)
	return err
}
