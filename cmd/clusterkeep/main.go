// Command clusterkeep runs a node of a failover cluster (`clusterkeep
// agent`) and is every client of it: cluster and node commands, the
// configuration database, and the local test cluster. Each file here is one
// command group; the logic lives in internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/resources"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/target"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/clusterkeep/clusterkeep/internal/version"
	"github.com/spf13/cobra"
)

// EnvDataDir names the environment variable for the default data directory.
const EnvDataDir = "CLUSTERKEEP_DATA_DIR"

// defaultDataDir is where a node keeps its data unless told otherwise.
func defaultDataDir() string {
	if d := os.Getenv(EnvDataDir); d != "" {
		return d
	}
	return "/var/lib/clusterkeep"
}

// globals are the flags every command has.
type globals struct {
	cluster   string
	ca        string
	token     string
	tokenFile string
	json      bool
	timeout   time.Duration
	out       *ui.Output
	// S3 settings of s3:// targets; given, they override the environment.
	s3Endpoint  string
	s3PathStyle bool
	s3Region    string
}

// usageError marks an error in how the command was called (exit 2).
type usageError struct{ error }

func main() {
	if len(os.Args) > 1 && os.Args[1] == resources.ShimArg {
		os.Exit(resources.ShimMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == resources.GuardArg {
		os.Exit(resources.GuardMain(os.Args[2:]))
	}
	g := &globals{}
	root := &cobra.Command{
		Use:           "clusterkeep",
		Short:         "Run, back up and restore a failover cluster's configuration",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			g.out = ui.New(g.json)
			g.s3Settings(cmd)
			return g.credentials()
		},
	}
	root.PersistentFlags().StringVar(&g.cluster, "cluster", "", "cluster API addresses host:port[,host:port] (default $"+client.EnvCluster+")")
	root.PersistentFlags().StringVar(&g.ca, "ca", "", "the cluster's authority certificate, to check nodes by (default $"+client.EnvCA+", else DATA_DIR/tls/ca.pem)")
	root.PersistentFlags().StringVar(&g.token, "token", "", "API token (default $"+client.EnvToken+")")
	root.PersistentFlags().StringVar(&g.tokenFile, "token-file", "", "read the API token from this file (default $"+client.EnvTokenFile+", else DATA_DIR/admin-token if readable)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print results as JSON")
	root.PersistentFlags().DurationVar(&g.timeout, "timeout", 60*time.Second, "give up on a command after this long")
	root.PersistentFlags().StringVar(&g.s3Endpoint, "s3-endpoint", "", "S3 endpoint URL for s3:// targets on a self-hosted store, http(s)://host:port (default $"+target.EnvEndpoint+")")
	root.PersistentFlags().BoolVar(&g.s3PathStyle, "s3-path-style", false, "address S3 buckets by path (endpoint/bucket/key), not by host name (default $"+target.EnvPathStyle+")")
	root.PersistentFlags().StringVar(&g.s3Region, "s3-region", "", "S3 region (default $"+target.EnvRegion+")")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(agentCmd(g), tokenCmd(g), scheduleCmd(g), resourceCmd(g), groupCmd(g), localCmd(g), stateCmd(g), clusterCmd(g), nodeCmd(g), configCmd(g), writersCmd(g), backupCmd(g), restoreCmd(g), genManCmd(root))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	stop()
	stopProfile()
	if err != nil {
		if g.out == nil {
			g.out = ui.New(g.json)
		}
		g.out.Error(err)
		var ue usageError
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// credentials resolves what clients trust and prove: flags, then the
// environment, then this node's files (DATA_DIR/tls/ca.pem and
// DATA_DIR/admin-token), so that root on the creating node needs nothing.
func (g *globals) credentials() error {
	cr, err := client.CredentialsFromEnv()
	if err != nil {
		return err
	}
	if g.ca != "" {
		if cr.CA, err = client.LoadCA(g.ca); err != nil {
			return usageError{fmt.Errorf("--ca: %w", err)}
		}
	}
	switch {
	case g.token != "":
		cr.Token = g.token
	case g.tokenFile != "":
		if cr.Token, err = client.ReadTokenFile(g.tokenFile); err != nil {
			return usageError{fmt.Errorf("--token-file: %w", err)}
		}
	}
	// This node's files, when nothing else is given: its admin token only
	// with its own authority, so it is never sent to another cluster.
	dir := defaultDataDir()
	if cr.CA == nil {
		cr.CA, _ = client.LoadCA(filepath.Join(dir, security.Dir, security.CAFile))
		if cr.CA != nil && cr.Token == "" {
			cr.Token, _ = client.ReadTokenFile(filepath.Join(dir, cluster.AdminTokenFile))
		}
	}
	client.SetDefaultCredentials(cr)
	return nil
}

// context returns the command's context bounded by --timeout.
func (g *globals) context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), g.timeout)
}

// open opens the cluster named by --cluster or $CLUSTERKEEP_CLUSTER.
func (g *globals) open(ctx context.Context) (*client.Cluster, error) {
	return client.OpenCluster(ctx, g.cluster)
}

// withCluster runs f with the command's context (bounded by --timeout)
// and the cluster opened.
func (g *globals) withCluster(cmd *cobra.Command, f func(ctx context.Context, c *client.Cluster) error) error {
	ctx, cancel := g.context(cmd)
	defer cancel()
	c, err := g.open(ctx)
	if err != nil {
		return err
	}
	return f(ctx, c)
}

// exactArgs is cobra.ExactArgs whose error is a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func rangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.RangeArgs(min, max)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
