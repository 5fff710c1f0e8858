package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/clusterkeep/clusterkeep/internal/wire/hiveconv"
	"github.com/spf13/cobra"
)

// configReader is where read commands read from: the cluster, or the
// database file of a stopped node.
type configReader interface {
	GetKey(ctx context.Context, path string) (hive.Key, error)
	GetValue(ctx context.Context, path, name string) (hive.Value, error)
	Export(ctx context.Context, path string, w io.Writer) error
	Close() error
}

type clusterReader struct {
	c    *client.Cluster
	opts []client.ReadOption
}

func (r clusterReader) GetKey(ctx context.Context, p string) (hive.Key, error) {
	k, err := r.c.GetKey(ctx, p, r.opts...)
	return hiveconv.HiveKey(k), err
}
func (r clusterReader) GetValue(ctx context.Context, p, n string) (hive.Value, error) {
	v, err := r.c.GetValue(ctx, p, n, r.opts...)
	return hiveconv.HiveValue(v), err
}
func (r clusterReader) Export(ctx context.Context, p string, w io.Writer) error {
	return r.c.Export(ctx, p, w, r.opts...)
}
func (r clusterReader) Close() error { return nil }

type fileReader struct{ h *hive.Hive }

// The file's subtree of secrets is never shown, as the API never serves it.
func (r fileReader) GetKey(_ context.Context, p string) (hive.Key, error) {
	if err := refuseSecret(p); err != nil {
		return hive.Key{}, err
	}
	return r.h.Get(p)
}
func (r fileReader) GetValue(_ context.Context, p, n string) (hive.Value, error) {
	if err := refuseSecret(p); err != nil {
		return hive.Value{}, err
	}
	return r.h.GetValue(p, n)
}
func (r fileReader) Export(_ context.Context, p string, w io.Writer) error {
	if err := refuseSecret(p); err != nil {
		return err
	}
	return r.h.View(func(rd *hive.Reader) error { return rd.ExportSkipping(w, p, hive.IsSecret) })
}
func (r fileReader) Close() error { return r.h.Close() }

// readFlags are the flags of the read commands.
type readFlags struct {
	dataDir string
	stale   bool
}

func (f *readFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "", "read the database file of this stopped node instead of the cluster")
	cmd.Flags().BoolVar(&f.stale, "stale", false, "let any member answer from its own copy (may lag)")
}

func (f *readFlags) open(ctx context.Context, g *globals) (configReader, error) {
	if f.dataDir == "" {
		c, err := g.open(ctx)
		if err != nil {
			return nil, err
		}
		r := clusterReader{c: c}
		if f.stale {
			r.opts = append(r.opts, client.Stale())
		}
		return r, nil
	}
	if noderegistry.ServiceHolds(f.dataDir) {
		return nil, fmt.Errorf("the node service running on %s holds its database: stop it first, or read through the cluster without --data-dir", f.dataDir)
	}
	p := filepath.Join(f.dataDir, hive.FileName)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("no cluster database in %s: %w", f.dataDir, err)
	}
	h, err := hive.OpenReadOnly(p)
	if err != nil {
		return nil, err
	}
	if note := cluster.UnappliedNote(f.dataDir, h.Applied()); note != "" {
		g.out.Infof("warning: %s", note)
	}
	return fileReader{h}, nil
}

func configCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read and change the cluster configuration database (the hive)",
		Long: `Read and change the hive: keys separated by "/", each holding named values of
type string, multi-string, uint32, uint64 or binary. Names keep their case and
match case-insensitively. The subtree "Cluster" is kept by the cluster itself
and is read-only here.`,
	}
	cmd.AddCommand(configGet(g), configList(g), configSet(g), configDelete(g), configExport(g), configImport(g), configWatch(g))
	return cmd
}

func configGet(g *globals) *cobra.Command {
	var rf readFlags
	c := &cobra.Command{
		Use: "get KEY NAME", Short: "Print one value", Args: exactArgs(2),
		Example: "  clusterkeep config get Apps/Web Port",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			r, err := rf.open(ctx, g)
			if err != nil {
				return err
			}
			defer r.Close()
			v, err := r.GetValue(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			return g.out.Result(v, func(w io.Writer) { fmt.Fprintln(w, displayData(v)) })
		},
	}
	rf.add(c)
	return c
}

func displayData(v hive.Value) string {
	switch v.Type {
	case hive.TypeString:
		return v.String
	case hive.TypeMultiString:
		return strings.Join(v.Strings, "\n")
	}
	return hive.FormatData(v)
}

func configList(g *globals) *cobra.Command {
	var rf readFlags
	c := &cobra.Command{
		Use: "list [KEY]", Short: "List a key's subkeys and values (the root by default)", Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			r, err := rf.open(ctx, g)
			if err != nil {
				return err
			}
			defer r.Close()
			k, err := r.GetKey(ctx, path)
			if err != nil {
				return err
			}
			return g.out.Result(k, func(w io.Writer) {
				fmt.Fprintf(w, "key %q (changed at %d)\n", "/"+k.Path, k.Change)
				var rows [][]string
				for _, s := range k.Subkeys {
					rows = append(rows, []string{s + "/", "key", ""})
				}
				for _, v := range k.Values {
					rows = append(rows, []string{v.Name, string(v.Type), hive.FormatData(v)})
				}
				ui.Table(w, []string{"NAME", "TYPE", "DATA"}, rows)
			})
		},
	}
	rf.add(c)
	return c
}

func configSet(g *globals) *cobra.Command {
	var typ string
	c := &cobra.Command{
		Use:   "set KEY NAME VALUE...",
		Short: "Set a value (the key is created if needed)",
		Long: `Set a value. Without --type, a value that exists keeps its type (VALUE must
read as that type) and a new value is a string; --type sets the type, and is
how a value's type is changed: string, multi-string (the VALUE arguments are
the strings, or one JSON array), uint32, uint64 (decimal or 0x hex) or binary
(hex). "config set KEY" with no name creates the key alone. A VALUE that
starts with "-" follows "--" (config set KEY NAME -- -1).`,
		Example: `  clusterkeep config set Apps/Web Port 8080 --type uint32
  clusterkeep config set Apps/Web Port 9090      # stays a uint32
  clusterkeep config set Apps/Web Hosts a b --type multi-string`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				return usageError{fmt.Errorf("%s: a NAME needs a VALUE\n%s", cmdName(cmd), usageHint(cmd))}
			}
			if len(args) == 0 {
				return usageError{fmt.Errorf("%s: want KEY, or KEY NAME VALUE\n%s", cmdName(cmd), usageHint(cmd))}
			}
			if len(args) > 3 && cmd.Flags().Changed("type") && typ != string(hive.TypeMultiString) {
				return usageError{fmt.Errorf("one VALUE expected for --type %s, got %d (quote it)", typ, len(args)-2)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var t hive.Type
			if cmd.Flags().Changed("type") {
				var err error
				if t, err = hive.ParseType(typ); err != nil {
					return usageError{err}
				}
			}
			if t != "" && len(args) > 1 {
				// Checked before the cluster is asked anything.
				if _, err := valueFromArgs(t, args[1], args[2:]); err != nil {
					return err
				}
			}
			ctx, cancel := g.context(cmd)
			defer cancel()
			c, err := g.open(ctx)
			if err != nil {
				return err
			}
			var seq uint64
			switch {
			case len(args) == 1:
				seq, err = c.Txn(ctx, wire.Txn{Ops: []wire.Op{wire.CreateKey(args[0])}})
			case t != "":
				v, _ := valueFromArgs(t, args[1], args[2:])
				seq, err = c.Txn(ctx, wire.Txn{Ops: []wire.Op{wire.SetValue(args[0], hiveconv.Value(v))}})
			default:
				seq, err = setKeepingType(ctx, c, args[0], args[1], args[2:])
			}
			if err != nil {
				return err
			}
			return g.out.Result(map[string]any{"seq": seq}, func(w io.Writer) { fmt.Fprintf(w, "ok, sequence %d\n", seq) })
		},
	}
	c.Flags().StringVar(&typ, "type", "string", "value type: string, multi-string, uint32, uint64 or binary (default: the value's type if it exists, else string)")
	return c
}

// valueFromArgs builds a value of type t named name from the VALUE
// arguments: several (or one JSON array) for a multi-string, one otherwise.
func valueFromArgs(t hive.Type, name string, vals []string) (hive.Value, error) {
	if len(vals) > 1 && t != hive.TypeMultiString {
		return hive.Value{}, usageError{fmt.Errorf("value %q is a %s: one VALUE expected, got %d (quote it, or --type multi-string to make it a list)", name, t, len(vals))}
	}
	data := vals[0]
	if t == hive.TypeMultiString && !(len(vals) == 1 && strings.HasPrefix(data, "[")) {
		data = jsonArray(vals)
	}
	if t == hive.TypeString {
		data = fmt.Sprintf("%q", data)
	}
	return hive.ParseData(name, t, data)
}

// valueSetter is what setKeepingType needs of the cluster.
type valueSetter interface {
	GetValue(ctx context.Context, path, name string, opts ...client.ReadOption) (wire.Value, error)
	Txn(ctx context.Context, t wire.Txn) (uint64, error)
}

// setKeepingType sets a value without --type: one that exists keeps its
// type, a new one is a string. The write holds only if the value is still
// what was read (or still missing), so a concurrent change of its type is
// never overwritten in the type read before; such a race is read again.
func setKeepingType(ctx context.Context, c valueSetter, key, name string, vals []string) (uint64, error) {
	const attempts = 5
	for i := 0; ; i++ {
		cur, err := c.GetValue(ctx, key, name)
		var cond wire.Cond
		t := hive.TypeString
		switch {
		case errors.Is(err, client.ErrValueNotFound) || errors.Is(err, client.ErrKeyNotFound):
			cond = wire.Cond{Kind: wire.CondValueMissing, Key: key, Name: name}
		case err != nil:
			return 0, err
		default:
			t = hive.Type(cur.Type)
			cond = wire.Cond{Kind: wire.CondValueEquals, Key: key, Value: &cur}
		}
		v, err := valueFromArgs(t, name, vals)
		if err != nil {
			if errors.Is(err, hive.ErrInvalidValue) && cond.Kind == wire.CondValueEquals {
				return 0, fmt.Errorf("%w (value %q of %q is a %s and keeps its type; --type changes it)", err, name, key, t)
			}
			return 0, err
		}
		seq, err := c.Txn(ctx, wire.Txn{Conds: []wire.Cond{cond}, Ops: []wire.Op{wire.SetValue(key, hiveconv.Value(v))}})
		if errors.Is(err, client.ErrPrecondition) && i+1 < attempts {
			continue // changed between the read and the write: read it again
		}
		if errors.Is(err, client.ErrPrecondition) {
			return 0, fmt.Errorf("set value %q of %q: it kept changing while being set (%d tries): %w", name, key, attempts, err)
		}
		return seq, err
	}
}

func jsonArray(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		b, _ := jsonMarshal(s)
		q[i] = b
	}
	return "[" + strings.Join(q, ",") + "]"
}

func configDelete(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use: "delete KEY [NAME]", Short: "Delete a value, or a key with its whole subtree", Args: rangeArgs(1, 2),
		Example: "  clusterkeep config delete Apps/Web Port",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			c, err := g.open(ctx)
			if err != nil {
				return err
			}
			var seq uint64
			if len(args) == 2 {
				seq, err = c.DeleteValue(ctx, args[0], args[1])
			} else {
				seq, err = c.DeleteKey(ctx, args[0])
			}
			if err != nil {
				return err
			}
			return g.out.Result(map[string]any{"seq": seq}, func(w io.Writer) { fmt.Fprintf(w, "deleted, sequence %d\n", seq) })
		},
	}
	return c
}

func configExport(g *globals) *cobra.Command {
	var rf readFlags
	var outFile string
	c := &cobra.Command{
		Use: "export [KEY]", Short: "Write a subtree (the whole hive by default) in the text form", Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context(cmd)
			defer cancel()
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			r, err := rf.open(ctx, g)
			if err != nil {
				return err
			}
			defer r.Close()
			if g.json {
				// Scripts get the text inside a JSON document.
				var buf strings.Builder
				if err := r.Export(ctx, path, &buf); err != nil {
					return err
				}
				return g.out.Result(map[string]string{"key": path, "export": buf.String()}, nil)
			}
			var w io.Writer = os.Stdout
			if outFile != "" {
				f, err := os.CreateTemp(filepath.Dir(outFile), ".export-*")
				if err != nil {
					return err
				}
				defer os.Remove(f.Name())
				if err := r.Export(ctx, path, f); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				return os.Rename(f.Name(), outFile)
			}
			return r.Export(ctx, path, w)
		},
	}
	rf.add(c)
	c.Flags().StringVarP(&outFile, "output", "o", "", "write to this file instead of stdout")
	return c
}

func configImport(g *globals) *cobra.Command {
	var key string
	var replace bool
	c := &cobra.Command{
		Use:   "import FILE",
		Short: "Apply an export atomically (- reads stdin)",
		Long: `Apply an export as one atomic transaction. With --replace, the subtree --key
is deleted first, so that it ends exactly as the export says.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			ctx, cancel := g.context(cmd)
			defer cancel()
			c, err := g.open(ctx)
			if err != nil {
				return err
			}
			res, err := c.Import(ctx, key, in, replace)
			if err != nil {
				return err
			}
			return g.out.Result(res, func(w io.Writer) {
				fmt.Fprintf(w, "imported %d keys (%d operations), sequence %d\n", res.Keys, res.Ops, res.Seq)
			})
		},
	}
	c.Flags().StringVar(&key, "key", "", "with --replace: the subtree to replace")
	c.Flags().BoolVar(&replace, "replace", false, "delete the subtree --key before applying")
	return c
}

func jsonMarshal(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}
