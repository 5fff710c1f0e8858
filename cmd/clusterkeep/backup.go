package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/backupset/offline"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/spf13/cobra"
)

func backupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Take, list, inspect, verify and compare backups of the cluster"}
	cmd.AddCommand(backupCreate(g), backupList(g), backupInspect(g), backupVerify(g), backupDiff(g), backupPrune(g))
	return cmd
}

// clusterAddrs is --cluster or $CLUSTERKEEP_CLUSTER, split.
func (g *globals) clusterAddrs() []string {
	s := g.cluster
	if s == "" {
		s = os.Getenv(client.EnvCluster)
	}
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// identityFlag adds --identity (repeatable) to cmd, and returns the
// function that reads the identity files given.
func identityFlag(cmd *cobra.Command) func() ([]age.Identity, error) {
	var files []string
	cmd.Flags().StringArrayVar(&files, "identity", nil, "age identity file (secret keys, as age-keygen writes them) to decrypt an encrypted backup (repeatable)")
	return func() ([]age.Identity, error) { return backupset.ReadIdentities(files) }
}

func backupCreate(g *globals) *cobra.Command {
	var o backup.Options
	var typ string
	var recipients, recipientFiles []string
	cmd := &cobra.Command{
		Use:   "create --to DIR|s3://BUCKET/PREFIX",
		Short: "Back up the cluster: detect it, select a node, checkpoint, store and verify",
		Long: `Back up the cluster this host belongs to (or the one --cluster names).

1. Detect: the node cluster state of this host (--data-dir). Running: the
   cluster is backed up. NotRunning: the node's files are backed up offline,
   as a stand-alone server's (unless a cluster address is given).
2. Select a node: Up, not paused and caught up; this host's node first,
   then a follower, then the leader. --node picks one, if it qualifies.
3. Checkpoint through the node's shadow-copy writers and store the set in
   --to, named by cluster and UTC time. It appears only when complete.

--to is a directory or an S3-compatible bucket and prefix, s3://BUCKET/PREFIX:
objects are streamed up in parts and the set's manifest is put last, so the
set exists only once complete. Credentials come from AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else AWS_PROFILE's entry in
~/.aws/credentials, else the instance role; --s3-endpoint (or
AWS_ENDPOINT_URL) names a self-hosted store, --s3-path-style addresses
buckets by path.

With --recipient (an age public key, age1...) or --recipients-file (age's
format: one public key a line), every file of the set is encrypted with age
to those recipients; the manifest stays readable. Reading the contents back
(verify in full, inspect, diff, restore) then needs --identity FILE, an age
identity file of one of the recipients; without it, backup verify checks
the stored, encrypted bytes only.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Type = shadow.BackupType(typ)
			if o.Type != shadow.BackupFull && o.Type != shadow.BackupCopy {
				return usageError{fmt.Errorf("--type %q: want full or copy", typ)}
			}
			if o.To == "" {
				return usageError{fmt.Errorf("--to DIR or s3://BUCKET/PREFIX is required")}
			}
			var err error
			if o.Recipients, err = backupset.ParseRecipients(recipients, nil); err != nil {
				return usageError{err}
			}
			fromFiles, err := backupset.ParseRecipients(nil, recipientFiles)
			if err != nil {
				return err
			}
			o.Recipients = append(o.Recipients, fromFiles...)
			o.Cluster = g.clusterAddrs()
			o.Progress = g.out.NewProgress()
			o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
			if !g.json {
				o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			ctx, cancel := g.context(cmd)
			defer cancel()
			res, err := backup.Create(ctx, o)
			if err != nil {
				return err
			}
			return g.out.Result(res, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n", res.Detected)
				fmt.Fprintf(w, "node:       %s (%s)\n", res.Node, res.Why)
				for _, s := range res.Skipped {
					fmt.Fprintf(w, "  skipped %s: %s\n", s.Node, s.Why)
				}
				for _, r := range res.Retried {
					fmt.Fprintf(w, "  started again after %s\n", r)
				}
				fmt.Fprintf(w, "cluster:    %s (%s), generation %d\n", res.Cluster, res.ClusterID, res.Generation)
				fmt.Fprintf(w, "sequence:   %d (consensus index %d)\n", res.HiveSeq, res.ConsensusIndex)
				fmt.Fprintf(w, "files:      %d, %s (%s stored), writers frozen %v\n", res.Files, ui.Bytes(res.Bytes), ui.Bytes(res.StoredBytes), res.Frozen.Round(time.Millisecond))
				if res.Encrypted {
					fmt.Fprintf(w, "encrypted:  with age, to %s\n", strings.Join(res.Recipients, ", "))
				}
				fmt.Fprintf(w, "backup:     %s (in %v)\n", res.Path, res.Duration.Round(time.Millisecond))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.To, "to", "", "directory or s3://BUCKET/PREFIX to create the backup set in")
	f.StringVar(&o.Node, "node", "", "back up on this node (name or id), if it qualifies")
	f.StringVar(&o.DataDir, "data-dir", defaultDataDir(), "this host's node data directory")
	f.BoolVar(&o.Compress, "compress", false, "compress the files with zstd")
	f.StringVar(&typ, "type", "full", "backup type: full or copy")
	f.StringArrayVar(&recipients, "recipient", nil, "encrypt the set with age to this public key (age1...; repeatable)")
	f.StringArrayVar(&recipientFiles, "recipients-file", nil, "encrypt the set with age to the public keys in this file (age's format; repeatable)")
	f.Uint64Var(&o.MaxLag, "max-lag", backup.DefaultMaxLag, "entries a node may trail the commit index and still be chosen")
	return cmd
}

func backupList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "list DIR|s3://BUCKET/PREFIX", Short: "List the backup sets in a directory or an S3 bucket and prefix", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sets, errs, err := offline.List(args[0])
			if err != nil {
				return err
			}
			for _, err := range errs {
				g.out.Infof("warning: %v", err)
			}
			if sets == nil {
				sets = []offline.Summary{}
			}
			return g.out.Result(map[string]any{"backups": sets}, func(w io.Writer) {
				var rows [][]string
				for _, s := range sets {
					node := s.Node
					if s.Offline {
						node += " (offline)"
					}
					size := ui.Bytes(s.Size)
					if s.Encrypted {
						size += " (encrypted)"
					}
					rows = append(rows, []string{s.Created, s.Cluster, fmt.Sprint(s.Generation), node, fmt.Sprint(s.HiveSeq), size, s.Path})
				}
				ui.Table(w, []string{"TIME", "CLUSTER", "GEN", "NODE", "SEQ", "SIZE", "PATH"}, rows)
			})
		},
	}
}

func backupInspect(g *globals) *cobra.Command {
	var identities func() ([]age.Identity, error)
	cmd := &cobra.Command{
		Use: "inspect PATH", Short: "Describe a backup set: its manifest and the size of its database", Args: exactArgs(1),
		Long: `Describe a backup set: its manifest and the size of its database.

An encrypted set is described by its manifest alone unless --identity gives
an age identity file that decrypts it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := identities()
			if err != nil {
				return err
			}
			in, err := offline.Inspect(args[0], ids...)
			if err != nil {
				return err
			}
			return g.out.Result(in, func(w io.Writer) {
				m := in.Manifest
				mode := "online, through the cluster's writers"
				if m.Offline {
					mode = "offline, from the stopped node's files"
				}
				fmt.Fprintf(w, "backup %s, taken %s %s\n", m.BackupID, m.Created.UTC().Format(time.RFC3339), mode)
				fmt.Fprintf(w, "cluster %s (%s), generation %d, on node %s\n", m.Cluster.Name, m.Cluster.ID, m.Cluster.Generation, m.SourceNode.Name)
				if in.Locked {
					fmt.Fprintf(w, "the database is the hive at sequence %d (consensus index %d): encrypted, give --identity to count its keys\n", m.HiveSeq, m.ConsensusIndex)
				} else {
					fmt.Fprintf(w, "the database is the hive at sequence %d (consensus index %d): %d keys, %d values\n", m.HiveSeq, m.ConsensusIndex, in.Keys, in.Values)
				}
				if m.Encryption != nil {
					fmt.Fprintf(w, "encrypted with age to %s\n", strings.Join(m.Encryption.Recipients, ", "))
				}
				if len(in.Secrets) > 0 {
					fmt.Fprintf(w, "secrets (never shown): %s\n", strings.Join(in.Secrets, "; "))
				}
				fmt.Fprintf(w, "backup type %s, made by clusterkeep %s, format %d\n\nwriters:\n", m.Components.BackupType, m.ToolVersion, m.FormatVersion)
				for _, wm := range m.Writers {
					fmt.Fprintf(w, "  %s (%s), restore method %s\n", wm.Name, wm.ID, wm.RestoreMethod)
				}
				fmt.Fprintln(w, "\nfiles:")
				var rows [][]string
				for _, f := range m.Files {
					sum := f.SHA256
					if f.Encryption != "" {
						sum = f.StoredSHA256 // of the ciphertext
					}
					rows = append(rows, []string{f.Name, ui.Bytes(f.Size), sum[:16] + "…", strings.TrimPrefix(f.Compression+"+"+f.Encryption, "+")})
				}
				ui.Table(w, []string{"NAME", "SIZE", "SHA-256 (STORED)", "ENCODING"}, rows)
			})
		},
	}
	identities = identityFlag(cmd)
	return cmd
}

func backupVerify(g *globals) *cobra.Command {
	var identities func() ([]age.Identity, error)
	cmd := &cobra.Command{
		Use: "verify PATH", Short: "Check every checksum, the database's consistency and the hive's structure", Args: exactArgs(1),
		Long: `Check a backup set: its manifest's checksum, exactly the files it lists,
each file's size and checksums, bbolt's check and the hive's structure on the
cluster database, and bbolt's check on the node registry.

An encrypted set is checked so with --identity (an age identity file of one
of its recipients). Without one, only its stored bytes can be checked: the
listing and the size and SHA-256 of each encrypted file, which proves the
ciphertext intact but says nothing of what it decrypts to. With --identity,
a set that is not encrypted is refused.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := identities()
			if err != nil {
				return err
			}
			p := g.out.NewProgress()
			p.Phase("verify", 0)
			v, err := offline.VerifySet(args[0], p.Add, ids...)
			p.Done()
			if err != nil {
				return err
			}
			m := v.Manifest
			return g.out.Result(map[string]any{"path": args[0], "ok": true, "backup_id": m.BackupID, "files": len(m.Files),
				"encrypted": v.Encrypted, "contents_checked": v.ContentsChecked}, func(w io.Writer) {
				switch {
				case !v.ContentsChecked:
					fmt.Fprintf(w, "%s: ok (%d files: the stored, encrypted bytes check out; their contents were not checked: give --identity to decrypt and check them)\n", args[0], len(m.Files))
				case v.Encrypted:
					fmt.Fprintf(w, "%s: ok (%d encrypted files: every checksum, the decrypted contents and the database check out)\n", args[0], len(m.Files))
				default:
					fmt.Fprintf(w, "%s: ok (%d files, every checksum and the database check out)\n", args[0], len(m.Files))
				}
			})
		},
	}
	identities = identityFlag(cmd)
	return cmd
}

func backupDiff(g *globals) *cobra.Command {
	var live bool
	var identities func() ([]age.Identity, error)
	cmd := &cobra.Command{
		Use:   "diff PATH [PATH | --live]",
		Short: "Keys and values added, removed and changed between two backups, or a backup and the running cluster",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if live == (len(args) == 2) {
				return usageError{fmt.Errorf("give a second backup or --live, not both")}
			}
			ids, err := identities()
			if err != nil {
				return err
			}
			a, err := offline.Read(args[0], ids...)
			if err != nil {
				return err
			}
			var b *offline.Contents
			if live {
				ctx, cancel := g.context(cmd)
				defer cancel()
				c, err := g.open(ctx)
				if err != nil {
					return err
				}
				text, err := backup.LiveExport(ctx, c)
				if err != nil {
					return err
				}
				b = offline.FromExport(text)
			} else if b, err = offline.Read(args[1], ids...); err != nil {
				return err
			}
			cmp, err := offline.Diff(a, b)
			if err != nil {
				return err
			}
			return g.out.Result(cmp, func(w io.Writer) {
				for _, c := range cmp.Changes {
					where := c.Key
					if c.Name != "" {
						where += " : " + c.Name
					}
					switch {
					case c.Secret:
						fmt.Fprintf(w, "%s %s (secret, %s)\n", changeMark(c.Kind), where, c.Kind)
					case c.Kind == "added":
						fmt.Fprintf(w, "%s %s %s\n", changeMark(c.Kind), where, c.New)
					case c.Kind == "removed":
						fmt.Fprintf(w, "%s %s %s\n", changeMark(c.Kind), where, c.Old)
					default:
						fmt.Fprintf(w, "%s %s %s -> %s\n", changeMark(c.Kind), where, c.Old, c.New)
					}
				}
				switch cmp.Secrets {
				case offline.SecretsNotCompared:
					fmt.Fprintf(w, "secrets (%s): not compared: the running cluster never serves them\n", hive.SecretsKey)
				case offline.SecretsUnchanged:
					fmt.Fprintf(w, "secrets (%s): unchanged\n", hive.SecretsKey)
				}
				if len(cmp.Changes) == 0 {
					fmt.Fprintln(w, "no differences")
				}
			})
		},
	}
	cmd.Flags().BoolVar(&live, "live", false, "compare with the running cluster")
	identities = identityFlag(cmd)
	return cmd
}

// changeMark is the mark of a change's kind in diff's text.
func changeMark(kind string) string {
	switch kind {
	case "added":
		return "+"
	case "removed":
		return "-"
	}
	return "~"
}
