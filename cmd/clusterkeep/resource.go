package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/spf13/cobra"
)

// resourceFlags are the flags of resource add and set.
type resourceFlags struct {
	typ                string
	params             []string
	unset              []string
	start, stop, check string
	tcp, http, unit    string
	interval, timeout  time.Duration
	startTimeout       time.Duration
	stopTimeout        time.Duration
	restartLimit       int
}

func (rf *resourceFlags) bind(cmd *cobra.Command, add bool) {
	f := cmd.Flags()
	f.StringVar(&rf.typ, "type", "exec", "resource type: "+strings.Join(roles.TypeNames(), ", "))
	f.StringArrayVar(&rf.params, "param", nil, "a parameter of the type, KEY=VALUE (repeatable)")
	if !add {
		f.StringArrayVar(&rf.unset, "unset-param", nil, "remove a parameter (repeatable)")
	}
	f.StringVar(&rf.start, "start", "", "exec: the command to run (a JSON array of strings, or words split as a shell would, without expansion)")
	f.StringVar(&rf.stop, "stop", "", "exec: a command run to stop it before it is signalled")
	f.StringVar(&rf.check, "check", "", "exec: a health command that exits 0 when healthy")
	f.StringVar(&rf.tcp, "tcp", "", "exec: health check, HOST:PORT accepts connections")
	f.StringVar(&rf.http, "http", "", "exec: health check, this URL answers 2xx or 3xx")
	f.StringVar(&rf.unit, "unit", "", "systemd: the unit's name (web.service)")
	f.DurationVar(&rf.interval, "monitor-interval", roles.DefaultMonitorInterval, "how often the resource is checked")
	f.DurationVar(&rf.timeout, "monitor-timeout", roles.DefaultMonitorTimeout, "how long one check may take")
	f.DurationVar(&rf.startTimeout, "start-timeout", roles.DefaultStartTimeout, "how long a started resource may take to pass its first check")
	f.DurationVar(&rf.stopTimeout, "stop-timeout", roles.DefaultStopTimeout, "how long a graceful stop may take before the resource is killed")
	f.IntVar(&rf.restartLimit, "restart-limit", 3, "restarts on the same node before the group fails over")
}

// apply puts the flags given (all of them for add) into r.
func (rf *resourceFlags) apply(cmd *cobra.Command, r *roles.Resource, add bool) error {
	ch := func(name string) bool { return add || cmd.Flags().Changed(name) }
	if ch("type") {
		r.Type = rf.typ
	}
	if r.Params == nil {
		r.Params = map[string]string{}
	}
	for _, k := range rf.unset {
		delete(r.Params, k)
	}
	for _, kv := range rf.params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError{fmt.Errorf("--param %q: want KEY=VALUE", kv)}
		}
		r.Params[k] = v
	}
	for flag, val := range map[string]string{"start": rf.start, "stop": rf.stop, "check": rf.check, "tcp": rf.tcp, "http": rf.http, "unit": rf.unit} {
		if cmd.Flags().Changed(flag) {
			r.Params[flag] = val
		}
	}
	if ch("monitor-interval") {
		r.MonitorInterval = roles.Duration(rf.interval)
	}
	if ch("monitor-timeout") {
		r.MonitorTimeout = roles.Duration(rf.timeout)
	}
	if ch("start-timeout") {
		r.StartTimeout = roles.Duration(rf.startTimeout)
	}
	if ch("stop-timeout") {
		r.StopTimeout = roles.Duration(rf.stopTimeout)
	}
	if ch("restart-limit") {
		r.RestartLimit = rf.restartLimit
	}
	return nil
}

func resourceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "resource", Short: "Resources: what a group runs", Long: "Resources: what a group runs.\n\n" + rolesNote}
	put := func(add bool) *cobra.Command {
		var rf resourceFlags
		use, short := "add NAME --type exec --start CMD [--check CMD|--tcp ADDR|--http URL] | --type systemd --unit UNIT", "Add a resource"
		if !add {
			use, short = "set NAME [flags of add]", "Change a resource: the flags given replace what is recorded"
		}
		c := &cobra.Command{
			Use: use, Short: short, Args: exactArgs(1),
			Long: short + `.

exec runs a command (--start) as a child process of the agent, with an
optional health check: --check (a command), --tcp HOST:PORT or --http URL.
A command is a JSON array of strings ('["/usr/bin/web", "--port", "80"]') or
words split as a shell would, with quotes but without expansion, pipes or
redirections (run ["sh", "-c", "..."] for those). systemd runs a unit
(--unit web.service) where systemd runs the node.

` + rolesNote,
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx, cancel := g.context(cmd)
				defer cancel()
				c, err := g.open(ctx)
				if err != nil {
					return err
				}
				r, mode := roles.Resource{Name: args[0]}, wire.PutCreate
				if !add {
					mode = wire.PutReplace
					list, err := c.Resources(ctx)
					if err != nil {
						return fmt.Errorf("read the resources: %w", err)
					}
					found := false
					for _, ri := range list {
						if strings.EqualFold(ri.Name, args[0]) {
							r, found = ri.Resource, true
						}
					}
					if !found {
						return fmt.Errorf("no resource named %s", args[0])
					}
				}
				if err := rf.apply(cmd, &r, add); err != nil {
					return err
				}
				r.Normalize()
				if err := r.Validate(); err != nil {
					return usageError{err}
				}
				out, err := c.PutResource(ctx, r, mode)
				if err != nil {
					return fmt.Errorf("record resource %s: %w", r.Name, err)
				}
				if out.Unavailable != "" {
					g.out.Infof("note: %s (nothing runs resources yet; a node without systemd will not be able to own a group holding it)", out.Unavailable)
				}
				return g.out.Result(out, func(w io.Writer) { fmt.Fprintf(w, "resource %s recorded\n", out.Name) })
			},
		}
		rf.bind(c, add)
		return c
	}
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Remove a resource (refused while a group holds it)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			c, err := g.open(ctx)
			if err != nil {
				return err
			}
			if err := c.RemoveResource(ctx, args[0]); err != nil {
				return fmt.Errorf("remove resource %s: %w", args[0], err)
			}
			return g.out.Result(map[string]any{"removed": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "resource %s removed\n", args[0]) })
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List the resources", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			c, err := g.open(ctx)
			if err != nil {
				return err
			}
			list, err := c.Resources(ctx)
			if err != nil {
				return fmt.Errorf("list the resources: %w", err)
			}
			return g.out.Result(list, func(w io.Writer) {
				var rows [][]string
				for _, r := range list {
					rows = append(rows, []string{r.Name, r.Type, orDash(r.Group), describeParams(r.Params),
						fmt.Sprintf("every %s (timeout %s), %d restart(s)", time.Duration(r.MonitorInterval), time.Duration(r.MonitorTimeout), r.RestartLimit)})
				}
				ui.Table(w, []string{"NAME", "TYPE", "GROUP", "PARAMETERS", "MONITOR"}, rows)
				for _, r := range list {
					if r.Unavailable != "" {
						fmt.Fprintf(w, "note: %s: %s\n", r.Name, r.Unavailable)
					}
				}
			})
		},
	}
	cmd.AddCommand(put(true), put(false), remove, list)
	return cmd
}

// describeParams writes a resource's parameters, the usual ones first.
func describeParams(p map[string]string) string {
	var parts []string
	for _, k := range []string{"start", "stop", "check", "tcp", "http", "unit"} {
		if v, ok := p[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	for k, v := range p {
		if !strings.Contains(" start stop check tcp http unit ", " "+k+" ") {
			parts = append(parts, k+"="+v)
		}
	}
	return orDash(strings.Join(parts, " "))
}
