package restore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clusterkeep/clusterkeep/internal/api"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/clusterkeep/clusterkeep/internal/writers"
)

// AppFile is what was done with one application file.
type AppFile struct {
	Writer string `json:"writer"`
	Target string `json:"target"`
	Action string `json:"action"` // replaced, created, kept (RESTORE_IF_NOT_THERE), staged-for-writer
}

func isAppWriter(id string) bool { return id != writers.ClusterDBID && id != writers.RegistryID }

// restoreApps puts back the application writers' files, each by its
// writer's restore method. When the node's service runs, its coordinator
// drives the writers through the restore sequence around it
// (SetSelectedForRestore, SetAuthoritativeRestore, PreRestore, PostRestore),
// so a writer's pre-restore command can stop its application first.
func restoreApps(ctx context.Context, o Options, set *backupset.Set, res *Result) error {
	m := set.Manifest
	methods := map[string]shadow.WriterMetadata{}
	for _, w := range m.Writers {
		methods[w.ID] = w
	}
	var files []backupset.File
	for _, f := range m.Files {
		if isAppWriter(f.WriterID) && f.Source != "" {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil
	}
	// Application files go back only where the writer configured on this
	// node today says its files are: a backup set never chooses where
	// files land. That needs the node's service, which knows its writers.
	st, err := client.GetNodeState(ctx, o.DataDir)
	if err != nil || st.State != client.Running {
		res.Note += "; application writers' files were not restored: their writers are known only to the running service (start it and restore again)"
		return nil
	}
	known, err := client.Node(st.Addr).Writers(ctx, true)
	if err != nil {
		return fmt.Errorf("restore application writers: %w", err)
	}
	allowed := map[string]bool{}
	for _, ws := range known.Writers {
		for _, c := range ws.Metadata.Components {
			for _, f := range c.Files {
				allowed[ws.Metadata.ID+"\x00"+f] = true
			}
		}
		if ws.Metadata.ID != "" {
			methods[ws.Metadata.ID] = ws.Metadata // today's restore method
		}
	}
	kept := files[:0]
	for _, f := range files {
		if allowed[f.WriterID+"\x00"+f.Source] {
			kept = append(kept, f)
		} else {
			res.Note += fmt.Sprintf("; %s was not restored: no writer on this node owns it now", f.Source)
		}
	}
	files = kept
	rr, err := client.StartRestore(ctx, st.Addr, m.Components)
	if err != nil {
		return fmt.Errorf("restore application writers: %w", err)
	}
	{
		for _, c := range m.Components.Components {
			req := api.ComponentRequest{WriterID: c.WriterID, LogicalPath: c.LogicalPath, Name: c.Name, Selected: true,
				Authoritative: o.Authoritative && c.WriterID == writers.ClusterDBID}
			if err := rr.Select(ctx, req); err != nil {
				res.Note += fmt.Sprintf("; writer %s is not on this node any more: its commands were not run", c.WriterName)
			}
		}
		if err := rr.PreRestore(ctx); err != nil {
			rr.Abort(context.Background())
			return fmt.Errorf("restore application writers: %w", err)
		}
	}
	// Every file is written aside and fsync'd first, then all are renamed
	// into place: a failure before the renames changes no file.
	var placed []placement
	defer func() {
		for _, p := range placed {
			os.Remove(p.tmp)
		}
	}()
	for _, f := range files {
		w := methods[f.WriterID]
		p, err := prepareFile(set, f, w, o.DataDir)
		if err != nil {
			rr.Abort(context.Background())
			return fmt.Errorf("restore %s of writer %s: %w", f.Source, w.Name, err)
		}
		placed = append(placed, p)
		rr.Touch(ctx)
	}
	for _, p := range placed {
		if p.tmp != "" {
			if err := os.Rename(p.tmp, p.done.Target); err != nil {
				rr.Abort(context.Background())
				return fmt.Errorf("restore %s: %w", p.done.Target, err)
			}
			fsutil.SyncDir(filepath.Dir(p.done.Target))
		}
		res.AppFiles = append(res.AppFiles, p.done)
	}
	if _, err := rr.PostRestore(ctx); err != nil {
		return fmt.Errorf("restore application writers: %w", err)
	}
	return nil
}

// placement is a file written aside, ready to be renamed into place.
type placement struct {
	tmp  string // empty: nothing to do
	done AppFile
}

// prepareFile writes one file aside by its writer's restore method.
func prepareFile(set *backupset.Set, f backupset.File, w shadow.WriterMetadata, dataDir string) (placement, error) {
	out := AppFile{Writer: w.Name, Target: f.Source}
	switch w.RestoreMethod {
	case shadow.RestoreIfNotThere:
		if _, err := os.Stat(f.Source); err == nil {
			out.Action = "kept (RESTORE_IF_NOT_THERE: it exists)"
			return placement{done: out}, nil
		}
		out.Action = "created"
	case shadow.RestoreToAlternateLocation, shadow.RestoreCustom:
		// The writer's own post-restore command takes the file from here.
		out.Target = filepath.Join(dataDir, "restore-files", w.ID, filepath.FromSlash(f.Name))
		out.Action = "placed for the writer (" + string(w.RestoreMethod) + ")"
	default:
		out.Action = "replaced"
	}
	if err := os.MkdirAll(filepath.Dir(out.Target), 0o700); err != nil {
		return placement{}, err
	}
	r, err := set.Open(f)
	if err != nil {
		return placement{}, err
	}
	defer r.Close()
	tmp := out.Target + ".clusterkeep-restore"
	if err := fsutil.WriteFile(tmp, r); err != nil {
		os.Remove(tmp)
		return placement{}, err
	}
	return placement{tmp: tmp, done: out}, nil
}
