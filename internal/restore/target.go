package restore

// Where a node restore goes: the data directory must exist, an empty one
// is named for a member of the backup, and that member must not be
// running elsewhere, or two processes would claim to be the same node.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
	"github.com/clusterkeep/clusterkeep/internal/writers"
	"golang.org/x/sys/unix"
)

// checkDataDir refuses a data directory that does not exist: a typo in
// the path must not become a second copy of a node.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore: nothing was changed: %w: %s (for a node whose data is gone, create it empty and say which node it is for with --node NAME)", ErrNoDataDir, dir)
	}
	if err != nil {
		return fmt.Errorf("restore: nothing was changed: data directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("restore: nothing was changed: data directory %s is not a directory", dir)
	}
	return nil
}

// spareSpace is room left, beside the database, for the plan, the
// registry and the files the restore moves aside by rename.
const spareSpace = 1 << 20

// checkSpace refuses a restore whose database cannot fit on the data
// directory's file system, before anything is written there: a restore
// that ran out of space half way would be refused anyway, with the
// misleading word of a set that does not verify. The old database is set
// aside by a rename, so it needs no room of its own.
func checkSpace(dir string, set *backupset.Set) error {
	var need int64
	for _, f := range set.Manifest.Files {
		if f.WriterID == writers.ClusterDBID {
			need += f.Size
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("restore: nothing was changed: free space in %s: %w", dir, err)
	}
	if free := int64(st.Bavail) * st.Bsize; free < need+spareSpace {
		return fmt.Errorf("restore: nothing was changed: %w: %s has %.1f MiB free, the backup's database needs %.1f MiB",
			ErrNoSpace, dir, float64(free)/(1<<20), float64(need+spareSpace)/(1<<20))
	}
	return nil
}

// sameNode reports whether name (a node's name or id, as an operator
// types it) names the node id/nodeName.
func sameNode(name, id, nodeName string) bool {
	return strings.EqualFold(name, nodeName) || strings.EqualFold(name, id)
}

// collectMembers reads the members recorded in a hive into members, by id.
func collectMembers(h *hive.Hive, members map[string]Peer) error {
	return h.View(func(r *hive.Reader) error {
		ms, err := reserved.Members(r)
		if err != nil {
			return fmt.Errorf("read the members recorded in %s: %w", h.Path(), err)
		}
		for _, m := range ms {
			members[m.ID] = Peer{Name: m.Name, API: m.APIAddr}
		}
		return nil
	})
}

// checkNamed checks that --node names the member whose registry the
// backup holds, the only one an empty directory can become.
func checkNamed(o Options, db string, reg noderegistry.Identity) error {
	members := map[string]Peer{}
	if err := withHive(db, func(h *hive.Hive) error { return collectMembers(h, members) }); err != nil {
		return fmt.Errorf("restore: read the backup's members: %w", err)
	}
	var names []string
	found := ""
	for id, p := range members {
		names = append(names, p.Name)
		if o.Node != "" && sameNode(o.Node, id, p.Name) {
			found = p.Name
		}
	}
	sort.Strings(names)
	list := strings.Join(names, ", ")
	switch {
	case o.Node == "":
		return fmt.Errorf("restore: nothing was changed: %w with --node NAME: %s is empty (the backup's members: %s; it was taken on %s and can restore it)",
			ErrNodeNotNamed, o.DataDir, list, reg.NodeName)
	case sameNode(o.Node, reg.NodeID, reg.NodeName):
		return nil
	case found == "":
		return fmt.Errorf("restore --node %s: nothing was changed: %w (its members: %s)", o.Node, ErrNotAMember, list)
	default:
		return fmt.Errorf("restore --node %s: nothing was changed: the backup was taken on %s and holds that node's registry only: restore it into %s's directory, take a backup on %s (backup create --node %s), or join a new node",
			o.Node, reg.NodeName, reg.NodeName, found, found)
	}
}

// checkNotRunning refuses to give a data directory the identity of a node
// that answers at an address the backup records for it.
func checkNotRunning(ctx context.Context, o Options, db string, reg noderegistry.Identity) error {
	members := map[string]Peer{}
	withHive(db, func(h *hive.Hive) error { return collectMembers(h, members) })
	addrs := []string{reg.APIAddr}
	if p, ok := members[reg.NodeID]; ok && p.API != reg.APIAddr {
		addrs = append(addrs, p.API)
	}
	for _, a := range addrs {
		if a == "" {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, o.ProbeTimeout)
		st, err := client.LocalStatus(pctx, a)
		cancel()
		if err == nil && st.NodeID == reg.NodeID {
			state := st.RaftState
			if state == "" {
				state = "in no cluster"
			}
			return fmt.Errorf("restore: nothing was changed: %w: node %s runs at %s (%s): a copy of it here would be a second process claiming to be it. Restore it on its own host into its data directory, or stop it first",
				ErrNodeRunning, reg.NodeName, a, state)
		}
	}
	return nil
}
