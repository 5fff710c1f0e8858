package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/clusterkeep/clusterkeep/internal/writers"
	"golang.org/x/sys/unix"
)

// AppFile is what was done with one application file.
type AppFile struct {
	Writer string `json:"writer"`
	Target string `json:"target"`
	Action string `json:"action"` // replaced, created, kept (RESTORE_IF_NOT_THERE), staged-for-writer
}

func isAppWriter(id string) bool { return id != writers.ClusterDBID && id != writers.RegistryID }

// ErrUnsafePath: a file of the backup would be written through or over a
// symbolic link, or outside the place it belongs.
var ErrUnsafePath = errors.New("a path in the backup would land outside its target")

// appPlan is the application files a restore puts back, decided and
// checked before the restore changes anything.
type appPlan struct {
	api     string
	files   []backupset.File
	methods map[string]shadow.WriterMetadata
	notes   string
}

// planApps decides which application writers' files go back, and checks
// that each lands where it belongs: a file goes back only to a path a
// writer configured on this node today owns (a backup set never chooses
// where files land), and never through or over a symbolic link. It
// returns nil when there is nothing to do.
func planApps(ctx context.Context, o Options, set *backupset.Set) (*appPlan, error) {
	m := set.Manifest
	plan := &appPlan{methods: map[string]shadow.WriterMetadata{}}
	for _, w := range m.Writers {
		plan.methods[w.ID] = w
	}
	for _, f := range m.Files {
		if isAppWriter(f.WriterID) && f.Source != "" {
			plan.files = append(plan.files, f)
		}
	}
	if len(plan.files) == 0 {
		return nil, nil
	}
	// Knowing which paths writers own needs the node's service.
	st, err := client.GetNodeState(ctx, o.DataDir)
	if err != nil || st.State != client.Running {
		plan.notes += "; application writers' files were not restored: their writers are known only to the running service (start it and restore again)"
		plan.files = nil
		return plan, nil
	}
	plan.api = st.Addr
	known, err := client.Node(st.Addr).Writers(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("restore application writers: %w", err)
	}
	allowed := map[string]bool{}
	for _, ws := range known.Writers {
		for _, c := range ws.Metadata.Components {
			for _, f := range c.Files {
				allowed[ws.Metadata.ID+"\x00"+f] = true
			}
		}
		if ws.Metadata.ID != "" {
			plan.methods[ws.Metadata.ID] = ws.Metadata // today's restore method
		}
	}
	kept := plan.files[:0]
	for _, f := range plan.files {
		if !allowed[f.WriterID+"\x00"+f.Source] {
			plan.notes += fmt.Sprintf("; %s was not restored: no writer on this node owns it now", f.Source)
			continue
		}
		w := plan.methods[f.WriterID]
		root, rel, err := appTarget(f, w, o.DataDir)
		if err == nil {
			err = checkTarget(root, rel)
		}
		if err != nil {
			return nil, fmt.Errorf("restore %s of writer %s: %w", f.Source, w.Name, err)
		}
		kept = append(kept, f)
	}
	plan.files = kept
	return plan, nil
}

// appTarget is where a file goes by its writer's restore method: below
// root "/" at the file's source, or, for the writer to take it from,
// below the data directory.
func appTarget(f backupset.File, w shadow.WriterMetadata, dataDir string) (root, rel string, err error) {
	switch w.RestoreMethod {
	case shadow.RestoreToAlternateLocation, shadow.RestoreCustom:
		root, rel = dataDir, path.Join("restore-files", f.WriterID, f.Name)
		if path.Clean(f.Name) != f.Name || !filepath.IsLocal(f.Name) || !filepath.IsLocal(f.WriterID) {
			return "", "", fmt.Errorf("%w: %q", ErrUnsafePath, path.Join(f.WriterID, f.Name))
		}
	default:
		if !path.IsAbs(f.Source) || path.Clean(f.Source) != f.Source || f.Source == "/" {
			return "", "", fmt.Errorf("%w: %q is not a clean absolute path", ErrUnsafePath, f.Source)
		}
		root, rel = "/", strings.TrimPrefix(f.Source, "/")
	}
	return root, rel, nil
}

// checkTarget refuses a target with a symbolic link below root (a
// directory of its path, or the file itself), or that is a directory.
// Missing directories are fine: they are made.
func checkTarget(root, rel string) error {
	at := root
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		at = filepath.Join(at, p)
		fi, err := os.Lstat(at)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			return fmt.Errorf("%w: %s is a symbolic link (a restore writes nothing through or over a link)", ErrUnsafePath, at)
		case i == len(parts)-1 && fi.IsDir():
			return fmt.Errorf("%w: %s is a directory", ErrUnsafePath, at)
		case i < len(parts)-1 && !fi.IsDir():
			return fmt.Errorf("%w: %s is not a directory", ErrUnsafePath, at)
		}
	}
	return nil
}

// run puts back the planned files, each by its writer's restore method.
// When the node's service runs, its coordinator drives the writers
// through the restore sequence around it (SetSelectedForRestore,
// SetAuthoritativeRestore, PreRestore, PostRestore), so a writer's
// pre-restore command can stop its application first.
func (plan *appPlan) run(ctx context.Context, o Options, set *backupset.Set, res *Result) error {
	if plan == nil {
		return nil
	}
	res.Note += plan.notes
	if len(plan.files) == 0 {
		return nil
	}
	m := set.Manifest
	rr, err := client.StartRestore(ctx, plan.api, m.Components)
	if err != nil {
		return fmt.Errorf("restore application writers: %w", err)
	}
	// Released when this function returns, after the restore ended.
	defer rr.Hold(ctx)()
	{
		for _, c := range m.Components.Components {
			req := wire.ComponentRequest{WriterID: c.WriterID, LogicalPath: c.LogicalPath, Name: c.Name, Selected: true,
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
			p.remove()
		}
	}()
	for _, f := range plan.files {
		w := plan.methods[f.WriterID]
		p, err := prepareFile(set, f, w, o.DataDir)
		if err != nil {
			rr.Abort(context.Background())
			return fmt.Errorf("restore %s of writer %s: %w", f.Source, w.Name, err)
		}
		placed = append(placed, p)
		rr.Touch(ctx)
	}
	for i, p := range placed {
		if p.tmp != "" {
			if err := p.rename(); err != nil {
				rr.Abort(context.Background())
				return fmt.Errorf("restore %s: %w", p.done.Target, err)
			}
			placed[i].tmp = ""
		}
		res.AppFiles = append(res.AppFiles, p.done)
	}
	if _, err := rr.PostRestore(ctx); err != nil {
		return fmt.Errorf("restore application writers: %w", err)
	}
	return nil
}

// placement is a file written aside in directory dir (below root), ready
// to be renamed into place as base.
type placement struct {
	root, dir, base string
	tmp             string // the name aside, in dir; empty: nothing to do
	done            AppFile
}

// rename puts the file in place. The directory is opened anew without
// following any link below root, and the rename happens inside it.
func (p placement) rename() error {
	d, err := fsutil.OpenDirBeneath(p.root, p.dir, false)
	if err != nil {
		return unsafe(err)
	}
	defer d.Close()
	if err := unix.Renameat(int(d.Fd()), p.tmp, int(d.Fd()), p.base); err != nil {
		return err
	}
	return d.Sync()
}

func (p placement) remove() {
	if p.tmp == "" {
		return
	}
	if d, err := fsutil.OpenDirBeneath(p.root, p.dir, false); err == nil {
		unix.Unlinkat(int(d.Fd()), p.tmp, 0)
		d.Close()
	}
}

// unsafe marks a link or escape found by fsutil as ErrUnsafePath.
func unsafe(err error) error {
	if errors.Is(err, fsutil.ErrLink) || errors.Is(err, fsutil.ErrUnsafePath) {
		return fmt.Errorf("%w: %w", ErrUnsafePath, err)
	}
	return err
}

// prepareFile writes one file aside by its writer's restore method. The
// directory it goes to is reached without following any symbolic link
// (made, 0700, where missing); the target is refused if it is a link, and
// the file aside is created anew (O_EXCL, O_NOFOLLOW, 0600).
func prepareFile(set *backupset.Set, f backupset.File, w shadow.WriterMetadata, dataDir string) (placement, error) {
	root, rel, err := appTarget(f, w, dataDir)
	if err != nil {
		return placement{}, err
	}
	dir, base := path.Split(rel)
	out := AppFile{Writer: w.Name, Target: filepath.Join(root, filepath.FromSlash(rel))}
	d, err := fsutil.OpenDirBeneath(root, dir, true)
	if err != nil {
		return placement{}, unsafe(err)
	}
	defer d.Close()
	st, err := fsutil.Lstatat(d, base)
	exists := err == nil
	switch {
	case err != nil && err != unix.ENOENT:
		return placement{}, &os.PathError{Op: "lstat", Path: out.Target, Err: err}
	case exists && st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return placement{}, fmt.Errorf("%w: %s is a symbolic link (a restore writes nothing through or over a link)", ErrUnsafePath, out.Target)
	case exists && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return placement{}, fmt.Errorf("%w: %s is a directory", ErrUnsafePath, out.Target)
	}
	switch w.RestoreMethod {
	case shadow.RestoreIfNotThere:
		if exists {
			out.Action = "kept (RESTORE_IF_NOT_THERE: it exists)"
			return placement{done: out}, nil
		}
		out.Action = "created"
	case shadow.RestoreToAlternateLocation, shadow.RestoreCustom:
		// The writer's own post-restore command takes the file from here.
		out.Action = "placed for the writer (" + string(w.RestoreMethod) + ")"
	default:
		out.Action = "replaced"
	}
	r, err := set.Open(f)
	if err != nil {
		return placement{}, err
	}
	defer r.Close()
	p := placement{root: root, dir: dir, base: base, tmp: base + ".clusterkeep-restore", done: out}
	// What a restore that died left aside goes; unlink removes a link
	// itself, never what it points to.
	if err := unix.Unlinkat(int(d.Fd()), p.tmp, 0); err != nil && err != unix.ENOENT {
		return placement{}, &os.PathError{Op: "remove", Path: filepath.Join(d.Name(), p.tmp), Err: err}
	}
	fd, err := unix.Openat(int(d.Fd()), p.tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return placement{}, &os.PathError{Op: "create", Path: filepath.Join(d.Name(), p.tmp), Err: err}
	}
	tmp := os.NewFile(uintptr(fd), filepath.Join(d.Name(), p.tmp))
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(int(d.Fd()), p.tmp, 0)
		return placement{}, err
	}
	return p, nil
}
