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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/backend"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/failover/resources"
	"github.com/clusterkeep/clusterkeep/internal/security"
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
	root := newRoot(g)

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

// newRoot is the command tree, its flags bound to g.
func newRoot(g *globals) *cobra.Command {
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
	root.PersistentFlags().StringVar(&g.s3Endpoint, "s3-endpoint", "", "S3 endpoint URL for s3:// targets on a self-hosted store, http(s)://host:port (default $"+backend.EnvEndpoint+")")
	root.PersistentFlags().BoolVar(&g.s3PathStyle, "s3-path-style", false, "address S3 buckets by path (endpoint/bucket/key), not by host name (default $"+backend.EnvPathStyle+")")
	root.PersistentFlags().StringVar(&g.s3Region, "s3-region", "", "S3 region (default $"+backend.EnvRegion+")")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(agentCmd(g), asideCmd(g), tokenCmd(g), scheduleCmd(g), resourceCmd(g), groupCmd(g), localCmd(g), stateCmd(g), clusterCmd(g), nodeCmd(g), configCmd(g), writersCmd(g), backupCmd(g), restoreCmd(g), genManCmd(root))
	return root
}

// flagError is a usage error for a flag the command does not know. A
// negative number (config set KEY NAME -1) is read as flags too: the error
// says how to pass it as a value.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if _, arg, ok := strings.Cut(msg, "unknown shorthand flag: "); ok {
		if _, word, ok := strings.Cut(arg, " in "); ok {
			if _, perr := strconv.ParseFloat(word, 64); perr == nil {
				return usageError{fmt.Errorf("%s: %s is read as a flag because it starts with \"-\": put -- before such values, as in\n  %s\n%s",
					cmdName(cmd), word, withDashes(cmd, os.Args[1:], word), usageHint(cmd))}
			}
		}
	}
	return usageError{fmt.Errorf("%s: %w\n%s", cmdName(cmd), err, usageHint(cmd))}
}

// withDashes is the command line args with "--" before the argument word,
// the flags that followed it moved before the "--".
func withDashes(cmd *cobra.Command, args []string, word string) string {
	at := slices.Index(args, word)
	if at < 0 {
		return cmd.CommandPath() + " ... -- " + word
	}
	var flags, rest []string
	for i := at; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, a)
			continue
		}
		if _, err := strconv.ParseFloat(a, 64); err == nil {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if f := cmd.Flags().Lookup(name); f != nil && !strings.Contains(a, "=") && f.Value.Type() != "bool" && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	out := append(append(append(append([]string{cmd.Root().Name()}, args[:at]...), flags...), "--"), rest...)
	return strings.Join(out, " ")
}

// cmdName is the command's path without the program's name.
func cmdName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
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

// exactArgs is cobra.ExactArgs whose error is a usage error saying what
// was expected: the usage line and an example.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return argCountError(cmd, args, fmt.Sprintf("%s %s", countWord(n), argWord(n)))
		}
		return nil
	}
}

// rangeArgs is cobra.RangeArgs, with exactArgs' error.
func rangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			return argCountError(cmd, args, fmt.Sprintf("%s to %s %s", countWord(min), countWord(max), argWord(max)))
		}
		return nil
	}
}

func countWord(n int) string {
	if n == 0 {
		return "no"
	}
	return fmt.Sprint(n)
}

func argWord(n int) string {
	if n == 1 {
		return "argument"
	}
	return "arguments"
}

// argCountError says how many arguments cmd takes, how many it got, its
// usage line and an example.
func argCountError(cmd *cobra.Command, args []string, want string) error {
	got := "none"
	if len(args) > 0 {
		got = fmt.Sprintf("%d (%s)", len(args), strings.Join(args, " "))
	}
	return usageError{fmt.Errorf("%s takes %s, got %s\n%s", cmdName(cmd), want, got, usageHint(cmd))}
}

// usageHint is a command's usage line and an example of it.
func usageHint(cmd *cobra.Command) string {
	return "usage:   " + strings.TrimSuffix(cmd.UseLine(), " [flags]") + "\nexample: " + firstExample(cmd)
}

// firstExample is the command's first example, or one made from its
// usage line with each placeholder replaced by a typical value.
func firstExample(cmd *cobra.Command) string {
	if ex := strings.TrimSpace(cmd.Example); ex != "" {
		line, _, _ := strings.Cut(ex, "\n")
		line, _, _ = strings.Cut(line, "  #")
		return strings.TrimSpace(line)
	}
	words := strings.Fields(cmd.Use)
	out := []string{cmd.Parent().CommandPath(), words[0]}
	if !cmd.HasParent() {
		out = out[1:]
	}
	depth := 0
	for _, w := range words[1:] {
		// Optional parts ([...]) are left out, and of alternatives (a | b)
		// the first is taken.
		opens, closes := strings.Count(w, "["), strings.Count(w, "]")
		depth += opens
		if depth > 0 {
			depth -= closes
			continue
		}
		if w == "|" {
			break
		}
		w = strings.TrimSuffix(w, "...")
		if ex, ok := placeholderExamples[w]; ok {
			w = ex
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

// placeholderExamples are typical values of the usage lines' placeholders.
var placeholderExamples = map[string]string{
	"KEY":                        "Apps/Web",
	"NAME":                       "web",
	"VALUE":                      "8080",
	"NODE":                       "node2",
	"FILE":                       "export.txt",
	"PATH":                       "./backups/local-20250101T000000Z",
	"BACKUP":                     "./backups/local-20250101T000000Z",
	"DIR":                        "./backups",
	"DIR|s3://BUCKET/PREFIX":     "./backups",
	"TARGET":                     "./backups",
	"BACKUP_A":                   "./backups/local-20250101T000000Z",
	"BACKUP_B":                   "./backups/local-20250102T000000Z",
	"GROUP":                      "web",
	"ROLE":                       "read",
	"N":                          "7",
	"RESOURCE":                   "web-ip",
	"TYPE":                       "process",
	"ID":                         "web",
	"NAME|ID":                    "web",
	"DIR|ARCHIVE|s3://BUCKET/ID": "./backups/local-20250101T000000Z",
}
