package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/spf13/cobra"
)

func tokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "API tokens and their roles (read, operator, backup)"}
	var roles []string
	create := &cobra.Command{
		Use:   "create NAME --role ROLE [--role ROLE]",
		Short: "Make an API token; it is printed once and kept only as a hash",
		Long: `Make an API token named NAME with roles:
  read      read configuration, members, node states and writers
  operator  change configuration and membership, manage tokens (includes read)
  backup    take backups and run restores (includes read)
Nobody grants a role they do not hold. The token is printed once: the
cluster keeps only its SHA-256.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(roles) == 0 {
				return usageError{fmt.Errorf("give at least one --role (read, operator or backup)")}
			}
			return g.withCluster(cmd, func(ctx context.Context, c *client.Cluster) error {
				t, err := c.CreateToken(ctx, args[0], roles)
				if err != nil {
					return fmt.Errorf("create token: %w", err)
				}
				return g.out.Result(t, func(w io.Writer) { fmt.Fprintln(w, t.Token) })
			})
		},
	}
	create.Flags().StringSliceVar(&roles, "role", nil, "role of the token: read, operator or backup (repeat or comma-separate)")
	list := &cobra.Command{
		Use: "list", Short: "List the API tokens (names, roles, creation; never the tokens)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCluster(cmd, func(ctx context.Context, c *client.Cluster) error {
				ts, err := c.Tokens(ctx)
				if err != nil {
					return fmt.Errorf("list tokens: %w", err)
				}
				return g.out.Result(map[string]any{"tokens": ts}, func(w io.Writer) {
					var rows [][]string
					for _, t := range ts {
						rs := make([]string, len(t.Roles))
						for i, r := range t.Roles {
							rs[i] = string(r)
						}
						rows = append(rows, []string{t.Name, strings.Join(rs, ","), t.Created})
					}
					ui.Table(w, []string{"NAME", "ROLES", "CREATED"}, rows)
				})
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke NAME", Short: "Revoke an API token", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCluster(cmd, func(ctx context.Context, c *client.Cluster) error {
				if err := c.RevokeToken(ctx, args[0]); err != nil {
					return fmt.Errorf("revoke token %q: %w", args[0], err)
				}
				return g.out.Result(map[string]string{"revoked": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "revoked %s\n", args[0]) })
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
