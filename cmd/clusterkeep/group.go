package main

// resource and group: the roles' configuration as the cluster records it.
// Nothing acts on it yet; group move, online, offline and status come with
// the resource manager.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/spf13/cobra"
)

const rolesNote = `The leader places each group wanted online on a node (its preferred owners
first) and moves it when that node is lost, when a resource keeps failing,
or when asked; each node runs what it owns. See group status.`

// groupFlags are the flags of group create and set.
type groupFlags struct {
	resources, possible, preferred []string
	threshold                      int
	period                         time.Duration
	failback, window, wanted       string
}

func (gf *groupFlags) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSliceVar(&gf.resources, "resources", nil, "the group's resources, in start order (stopped in reverse)")
	f.StringSliceVar(&gf.possible, "possible-owners", nil, "the nodes the group may run on (default: all)")
	f.StringSliceVar(&gf.preferred, "preferred-owners", nil, "the nodes tried first, in order")
	f.IntVar(&gf.threshold, "failover-threshold", 2, "at most this many failovers in --failover-period, then the group stays offline (0: no automatic failover)")
	f.DurationVar(&gf.period, "failover-period", roles.DefaultFailoverPeriod, "the period of --failover-threshold")
	f.StringVar(&gf.failback, "failback", roles.FailbackNever, "failback to a more preferred owner: never, immediately, or window")
	f.StringVar(&gf.window, "failback-window", "", "with --failback window: the daily window, HH:MM-HH:MM (UTC)")
	f.StringVar(&gf.wanted, "wanted", roles.WantedOffline, "the wanted state: online or offline")
}

func (gf *groupFlags) apply(cmd *cobra.Command, g *roles.Group, create bool) error {
	ch := func(name string) bool { return create || cmd.Flags().Changed(name) }
	if ch("resources") {
		g.Resources = gf.resources
	}
	if ch("possible-owners") {
		g.PossibleOwners = gf.possible
	}
	if ch("preferred-owners") {
		g.PreferredOwners = gf.preferred
	}
	if ch("failover-threshold") {
		g.FailoverThreshold = gf.threshold
	}
	if ch("failover-period") {
		g.FailoverPeriod = roles.Duration(gf.period)
	}
	if ch("failback") {
		g.Failback.Policy = gf.failback
		if gf.failback != roles.FailbackWindow {
			g.Failback.WindowStart, g.Failback.WindowEnd = "", ""
		}
	}
	if ch("failback-window") && gf.window != "" {
		s, e, ok := strings.Cut(gf.window, "-")
		if !ok {
			return usageError{fmt.Errorf("--failback-window %q: want HH:MM-HH:MM", gf.window)}
		}
		g.Failback.WindowStart, g.Failback.WindowEnd = s, e
	}
	if ch("wanted") {
		g.Wanted = gf.wanted
	}
	return nil
}

func groupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Groups (roles): resources that run and fail over together",
		Long: "Groups (roles): resources that run and fail over together.\n\n" + rolesNote}
	put := func(create bool) *cobra.Command {
		var gf groupFlags
		use, short := "create NAME --resources R1,R2 [--preferred-owners N1,N2] [...]", "Create a group"
		if !create {
			use, short = "set NAME [flags of create]", "Change a group: the flags given replace what is recorded"
		}
		c := &cobra.Command{
			Use: use, Short: short, Long: short + ".\n\n" + rolesNote, Args: exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx, cancel := g.context(cmd)
				defer cancel()
				c, err := g.open(ctx)
				if err != nil {
					return err
				}
				grp, mode := roles.Group{Name: args[0]}, wire.PutCreate
				if !create {
					mode = wire.PutReplace
					list, err := c.Groups(ctx)
					if err != nil {
						return fmt.Errorf("read the groups: %w", err)
					}
					found := false
					for _, x := range list {
						if strings.EqualFold(x.Name, args[0]) {
							grp, found = x, true
						}
					}
					if !found {
						return fmt.Errorf("no group named %s", args[0])
					}
				}
				if err := gf.apply(cmd, &grp, create); err != nil {
					return err
				}
				grp.Normalize()
				if err := grp.Validate(); err != nil {
					return usageError{err}
				}
				out, err := c.PutGroup(ctx, grp, mode)
				if err != nil {
					return fmt.Errorf("record group %s: %w", grp.Name, err)
				}
				return g.out.Result(out, func(w io.Writer) { fmt.Fprintf(w, "group %s recorded\n", out.Name) })
			},
		}
		gf.bind(c)
		return c
	}
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Remove a group (its resources stay, in no group)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			c, err := g.open(ctx)
			if err != nil {
				return err
			}
			if err := c.RemoveGroup(ctx, args[0]); err != nil {
				return fmt.Errorf("remove group %s: %w", args[0], err)
			}
			return g.out.Result(map[string]any{"removed": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "group %s removed\n", args[0]) })
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List the groups", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			c, err := g.open(ctx)
			if err != nil {
				return err
			}
			list, err := c.Groups(ctx)
			if err != nil {
				return fmt.Errorf("list the groups: %w", err)
			}
			return g.out.Result(list, func(w io.Writer) {
				var rows [][]string
				for _, x := range list {
					fb := x.Failback.Policy
					if fb == roles.FailbackWindow {
						fb += " " + x.Failback.WindowStart + "-" + x.Failback.WindowEnd
					}
					rows = append(rows, []string{x.Name, x.Wanted, orDash(strings.Join(x.Resources, ",")),
						orDash(strings.Join(x.PossibleOwners, ",")), orDash(strings.Join(x.PreferredOwners, ",")),
						strconv.Itoa(x.FailoverThreshold) + " in " + ui.ShortDuration(time.Duration(x.FailoverPeriod)), fb})
				}
				ui.Table(w, []string{"NAME", "WANTED", "RESOURCES", "POSSIBLE", "PREFERRED", "FAILOVERS", "FAILBACK"}, rows)
			})
		},
	}
	cmd.AddCommand(put(true), put(false), remove, list, groupStatusCmd(g), groupEventsCmd(g),
		groupActionCmd(g, "online", "Bring a group online (clears a failover threshold that held it offline)"),
		groupActionCmd(g, "offline", "Take a group offline: its resources stop, in reverse order"),
		groupActionCmd(g, "move", "Move a group to another node (--node; default: the best other node)"))
	return cmd
}

func groupStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "status [NAME]", Short: "Each group's (or one group's) owner, state, resources, last failure and failovers", Args: rangeArgs(0, 1),
		Example: "  clusterkeep group status\n  clusterkeep group status site",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCluster(cmd, func(ctx context.Context, c *client.Cluster) error {
				st, err := c.GroupsStatus(ctx)
				if err != nil {
					return fmt.Errorf("group status: %w", err)
				}
				if len(args) == 1 {
					if st, err = oneGroup(st, args[0]); err != nil {
						return err
					}
				}
				return g.out.Result(st, func(w io.Writer) { groupStatusText(w, st, time.Now()) })
			})
		},
	}
}

// oneGroup is the status of the group named name (case-insensitively).
func oneGroup(st []placement.GroupStatus, name string) ([]placement.GroupStatus, error) {
	var names []string
	for _, s := range st {
		if strings.EqualFold(s.Name, name) {
			return []placement.GroupStatus{s}, nil
		}
		names = append(names, s.Name)
	}
	known := "there are none"
	if len(names) > 0 {
		known = "they are " + strings.Join(names, ", ")
	}
	return nil, fmt.Errorf("group status %s: %w: no group named %s (%s)", name, client.ErrNotFound, name, known)
}

// ownerHint says that a group's owner stopped renewing its lease, and
// when the group fails over: until then it shows the owner's last state.
func ownerHint(s placement.GroupStatus, now time.Time) string {
	if !s.OwnerUnreachable {
		return ""
	}
	hint := "owner unreachable"
	if !s.OwnerLastHeard.IsZero() {
		hint += fmt.Sprintf(" (last heard %s ago)", ui.ShortDuration(now.Sub(s.OwnerLastHeard).Round(time.Second)))
	}
	if left := s.OwnerLeaseEnds.Sub(now); left > 0 {
		return hint + fmt.Sprintf("; its lease ends %s (in %s), then the group fails over",
			s.OwnerLeaseEnds.UTC().Format("15:04:05Z"), ui.ShortDuration(left.Round(time.Second)))
	}
	return hint + "; its lease has ended: failing over"
}

// groupEventsCmd follows the groups' changes of state and placement: it
// watches their records in the hive and prints each change, until
// interrupted (or --timeout, if given).
func groupEventsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "events", Short: "Follow the groups' changes of state and owner as they happen", Args: exactArgs(0),
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
			seen := map[string]string{}
			var after uint64
			for first := true; ; first = false {
				list, err := c.GroupsStatus(ctx)
				if err != nil {
					return fmt.Errorf("group status: %w", err)
				}
				for _, st := range list {
					k := st.State + "|" + st.Owner + "|" + st.Next + "|" + st.Reason
					if seen[st.Name] == k {
						continue
					}
					seen[st.Name] = k
					ev := map[string]any{"time": time.Now().UTC(), "group": st.Name, "state": st.State, "owner": st.Owner,
						"next": st.Next, "reason": st.Reason, "initial": first}
					if g.json {
						if err := json.NewEncoder(g.out.Out).Encode(ev); err != nil {
							return err
						}
						continue
					}
					owner := orDash(st.Owner)
					if st.Next != "" {
						owner += " -> " + st.Next
					}
					fmt.Fprintf(g.out.Out, "%s  %-16s %-8s %-16s %s\n", time.Now().UTC().Format(time.RFC3339), st.Name, st.State, owner, st.Reason)
				}
				res, err := c.Watch(ctx, "Cluster/Roles/Placement", after, 30*time.Second)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				after = res.Seq
			}
		},
	}
}

func groupStatusText(w io.Writer, st []placement.GroupStatus, now time.Time) {
	var rows [][]string
	for _, s := range st {
		owner := orDash(s.Owner)
		if s.Next != "" {
			owner += " -> " + s.Next
		}
		why := s.Reason
		if h := ownerHint(s, now); h != "" {
			why = strings.TrimPrefix(why+"; "+h, "; ")
		}
		rows = append(rows, []string{s.Name, s.Wanted, s.State, owner,
			fmt.Sprintf("%d/%d in %s", s.Failovers, s.FailoverThreshold, ui.ShortDuration(time.Duration(s.FailoverPeriod))), orDash(why)})
	}
	ui.Table(w, []string{"GROUP", "WANTED", "STATE", "OWNER", "FAILOVERS", "WHY"}, rows)
	for _, s := range st {
		if len(s.Resources) == 0 && s.LastFailure == "" {
			continue
		}
		fmt.Fprintf(w, "\n%s", s.Name)
		if s.Owner != "" {
			fmt.Fprintf(w, " on %s", s.Owner)
		}
		fmt.Fprintln(w, ":")
		for _, r := range s.Resources {
			line := fmt.Sprintf("  %-16s %-9s restarts %d", r.Name, r.State, r.Restarts)
			if r.LastFailure != "" {
				line += fmt.Sprintf("  last failure %s: %s", r.LastFailureAt.Format(time.RFC3339), r.LastFailure)
			}
			fmt.Fprintln(w, line)
		}
		if s.LastFailure != "" {
			fmt.Fprintf(w, "  last failure of the group %s: %s\n", s.LastFailureAt.Format(time.RFC3339), s.LastFailure)
		}
	}
}

func groupActionCmd(g *globals, action, short string) *cobra.Command {
	var node string
	var wait bool
	cmd := &cobra.Command{
		Use: action + " NAME", Short: short, Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCluster(cmd, func(ctx context.Context, c *client.Cluster) error {
				var st placement.GroupStatus
				var err error
				if action == "move" {
					st, err = c.MoveGroup(ctx, args[0], node)
				} else {
					st, err = c.GroupAction(ctx, args[0], action)
				}
				if err != nil {
					return fmt.Errorf("%s group %s: %w", action, args[0], err)
				}
				if wait {
					if st, err = waitGroup(ctx, g, c, st, action, node); err != nil {
						return err
					}
				}
				return g.out.Result(st, func(w io.Writer) {
					fmt.Fprintf(w, "group %s: %s", st.Name, st.State)
					if st.Owner != "" {
						fmt.Fprintf(w, " on %s", st.Owner)
					}
					if st.Reason != "" {
						fmt.Fprintf(w, " (%s)", st.Reason)
					}
					fmt.Fprintln(w)
				})
			})
		},
	}
	if action == "move" {
		cmd.Flags().StringVar(&node, "node", "", "the node to move it to (default: the best other node)")
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the group is "+map[string]string{"online": "online", "offline": "offline", "move": "online on its new node"}[action])
	return cmd
}

// waitGroup polls the group's status until the action is done: online
// (on another node than before, for a move) or offline; a group that
// failed meanwhile is an error.
func waitGroup(ctx context.Context, g *globals, c *client.Cluster, from placement.GroupStatus, action, node string) (placement.GroupStatus, error) {
	g.out.Infof("waiting for group %s to be %s", from.Name, map[string]string{"online": "online", "offline": "offline", "move": "online elsewhere"}[action])
	for {
		list, err := c.GroupsStatus(ctx)
		if err != nil {
			return from, fmt.Errorf("wait for group %s: %w", from.Name, err)
		}
		for _, st := range list {
			if !strings.EqualFold(st.Name, from.Name) {
				continue
			}
			// Only a record changed since the request tells of its fate.
			fresh := st.Changed.After(from.Changed) || st.Epoch > from.Epoch
			switch {
			case action == "offline" && st.State == "Offline",
				action == "online" && st.State == "Online",
				action == "move" && st.State == "Online" && st.Owner != from.Owner && (node == "" || strings.EqualFold(st.Owner, node)):
				return st, nil
			case fresh && st.State == "Failed", fresh && action == "move" && strings.Contains(st.Reason, "refused"):
				return st, fmt.Errorf("group %s: %s: %s", st.Name, st.State, st.Reason)
			}
		}
		select {
		case <-ctx.Done():
			return from, fmt.Errorf("wait for group %s: %w", from.Name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
