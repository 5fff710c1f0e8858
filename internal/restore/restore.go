// Package restore puts a backup set back: on one node (non-authoritative:
// the node rejoins and the cluster's newer state replaces what was
// restored), on the whole cluster (authoritative: the cluster is rolled
// back to the backup under a raised generation, and stale members are
// fenced off until they move their state aside and rejoin), one key or
// subtree into the running cluster, staged for the next start of a running
// service, or offline as ordinary files.
//
// Every restore verifies the whole set first and changes nothing when it
// fails. Nothing old is deleted: it is moved aside.
package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/backupset/offline"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/staging"
	"github.com/clusterkeep/clusterkeep/internal/wire/hiveconv"
	"github.com/google/uuid"
)

// Errors callers branch on.
var (
	ErrMembersRunning = errors.New("other members of the cluster are running")
	ErrUnreachable    = errors.New("members of the cluster cannot be reached")
	ErrOtherCluster   = errors.New("the backup is of another cluster")
	ErrNotInstalled   = errors.New("this node's service is not installed")
	ErrNotInBackup    = errors.New("not in the backup")
	ErrNoDataDir      = errors.New("the data directory does not exist")
	ErrNodeNotNamed   = errors.New("the data directory holds no node: say which node it is for")
	ErrNotAMember     = errors.New("not a member in the backup")
	ErrNodeRunning    = errors.New("the node answers in the cluster")
	ErrLogGap         = errors.New("the node's consensus log cannot bring the backup's hive forward")
	ErrNoSpace        = errors.New("not enough free space for the backup's database")
)

// Options are the restore's settings.
type Options struct {
	Path    string // the backup set
	DataDir string // this node's data directory; it must exist
	// Node names the node (name or id) an empty data directory is restored
	// for; checked against the backup's members. Given for a directory
	// that holds a node, it must be that node.
	Node          string
	Authoritative bool
	Force         bool // go on although members cannot be reached
	NewCluster    bool // the backup's cluster is recreated on new machines
	Key           string
	Cluster       []string // cluster addresses, for --key
	// Deep adds, to the checksums of every byte and the database's open
	// check, bbolt's full structural check and the hive's walk of every
	// key and value of the backup's database.
	Deep bool
	// Identities decrypt an encrypted set. Given, the set must be
	// encrypted (backupset.ErrNotEncrypted otherwise).
	Identities []age.Identity
	Log        *slog.Logger
	// ProbeTimeout bounds asking a member whether it runs.
	ProbeTimeout time.Duration
	// LogStart, when set, returns the index of the first entry of the
	// consensus log the stopped node at dataDir keeps (0 when it keeps
	// none, or its running service holds it): a non-authoritative restore
	// of a backup older than that is refused before anything changes. The
	// command sets it (internal/consensuslog): this package does not link
	// consensus.
	LogStart func(dataDir string) (uint64, error)
}

// Result is what a restore did.
type Result struct {
	Kind       string    `json:"kind"` // key, non-authoritative, authoritative
	Applied    string    `json:"applied"`
	BackupID   string    `json:"backup_id"`
	Cluster    string    `json:"cluster"`
	Node       string    `json:"node,omitempty"`
	Generation uint64    `json:"generation,omitempty"`
	Seq        uint64    `json:"seq,omitempty"`
	Keys       int       `json:"keys,omitempty"`
	Checked    []Peer    `json:"members_checked,omitempty"`
	AppFiles   []AppFile `json:"application_files,omitempty"`
	Note       string    `json:"note,omitempty"`
}

// Peer is a member asked before an authoritative restore.
type Peer struct {
	Name  string `json:"name"`
	API   string `json:"api"`
	State string `json:"state"` // stopped, running, unreachable
	Why   string `json:"why,omitempty"`
}

// Run restores as the options say.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ProbeTimeout == 0 {
		o.ProbeTimeout = 2 * time.Second
	}
	set, err := offline.OpenSet(o.Path, o.Identities...)
	if err != nil {
		return nil, fmt.Errorf("restore: nothing was changed: %w", err)
	}
	if !set.Unlocked() {
		return nil, fmt.Errorf("restore: nothing was changed: %w: it is encrypted to %s; give an age identity file of one of them with --identity",
			backupset.ErrNoIdentity, strings.Join(set.Manifest.Encryption.Recipients, ", "))
	}
	if o.Key == "" {
		return restoreNode(ctx, o, set)
	}
	// A key restore reads a subtree of the database: from a verified
	// copy, made aside and removed at the end.
	_, db, cleanup, err := offline.VerifyKeepingDatabase(o.Path, nil, o.Identities...)
	if err != nil {
		return nil, fmt.Errorf("restore: the backup does not verify, nothing was changed: %w", err)
	}
	defer cleanup()
	return restoreKey(ctx, o, set, db)
}

// withHive opens the verified copy of the backup's database read-only.
func withHive(db string, fn func(h *hive.Hive) error) error {
	h, err := hive.OpenReadOnly(db)
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h)
}

// checkLogReaches refuses a non-authoritative restore of a hive older than
// the start of the consensus log the node keeps: the service would refuse
// to start on it, as raft would have entries to apply that the log no
// longer holds (a snapshot the node received replaced its hive, and was
// not kept). A log in use (the service runs: the restore is staged for its
// next start) is checked by the service as it starts.
func checkLogReaches(dataDir, db string, logStart func(string) (uint64, error)) error {
	first, err := logStart(dataDir)
	if err != nil {
		return fmt.Errorf("restore: nothing was changed: %w", err)
	}
	if first == 0 {
		return nil
	}
	var applied uint64
	if err := withHive(db, func(h *hive.Hive) error { applied = h.Applied(); return nil }); err != nil {
		return fmt.Errorf("restore: nothing was changed: %w", err)
	}
	if first > applied+1 {
		return fmt.Errorf("restore: nothing was changed: %w: the backup's hive has applied up to index %d and the consensus log of this node starts at index %d: "+
			"restore a backup taken after index %d, or empty the node's data directory and restore into it with --node NAME, for the cluster to send the whole hive",
			ErrLogGap, applied, first, first-1)
	}
	return nil
}

// restoreKey writes one key or subtree of the backup into the running
// cluster as one transaction: the subtree ends exactly as in the backup.
func restoreKey(ctx context.Context, o Options, set *backupset.Set, db string) (*Result, error) {
	p, err := hive.ParsePath(o.Key)
	if err != nil {
		return nil, fmt.Errorf("restore --key: %w", err)
	}
	if p.IsRoot() || p.Reserved() {
		return nil, fmt.Errorf("restore --key %q: give a key below the root and outside %q (for the whole hive, restore the node or the cluster)", o.Key, hive.ReservedKey)
	}
	var text bytes.Buffer
	err = withHive(db, func(h *hive.Hive) error { return h.Export(&text, o.Key) })
	if errors.Is(err, hive.ErrKeyNotFound) {
		return nil, fmt.Errorf("restore --key %q: %w (backup %s)", o.Key, ErrNotInBackup, set.Manifest.BackupID)
	}
	if err != nil {
		return nil, err
	}
	ops, err := hive.ParseExport(&text)
	if err != nil {
		return nil, err
	}
	c, err := client.OpenCluster(ctx, o.Cluster...)
	if err != nil {
		return nil, fmt.Errorf("restore --key: %w", err)
	}
	keys := 0
	for _, op := range ops {
		if op.Kind == hive.OpCreateKey {
			keys++
		}
	}
	seq, err := c.Txn(ctx, hiveconv.Txn(hive.Txn{Ops: append([]hive.Op{hive.DeleteKey(o.Key)}, ops...)}))
	if err != nil {
		return nil, fmt.Errorf("restore --key %q: %w", o.Key, err)
	}
	return &Result{Kind: "key", Applied: "now", BackupID: set.Manifest.BackupID, Cluster: c.Name(), Seq: seq, Keys: keys}, nil
}

// backupRegistry reads the registry identity of the set, from the verified
// copy of its registry file (path, in a directory of its own; "" when the
// set holds none), and removes that copy.
func backupRegistry(path string) (*noderegistry.Identity, error) {
	if path == "" {
		return nil, nil
	}
	dir := filepath.Dir(path)
	defer os.RemoveAll(dir)
	if err := os.Rename(path, noderegistry.Path(dir)); err != nil {
		return nil, err
	}
	id, err := noderegistry.Load(dir)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// restoreNode restores this node's data directory. The set is read once,
// into the staging workspace inside the data directory: its database is
// decrypted, decompressed, checked against the manifest and written there
// in one pass, made durable, and reaches its place by renames alone. The
// restore becomes pending only once all of the set verified and every
// check passed; until then the data directory is as it was.
func restoreNode(ctx context.Context, o Options, set *backupset.Set) (*Result, error) {
	// Before anything is written there: a typo must not become a folder.
	if err := checkDataDir(o.DataDir); err != nil {
		return nil, err
	}
	if err := checkSpace(o.DataDir, set); err != nil {
		return nil, err
	}
	ws, err := staging.Begin(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("restore: nothing was changed: %w", err)
	}
	defer ws.Close()
	ex, err := offline.VerifyInto(set, ws.Dir(), o.Deep, nil)
	if err != nil {
		return nil, fmt.Errorf("restore: the backup does not verify, nothing was changed: %w", err)
	}
	m, db := ex.Manifest, ex.Database
	kind := "non-authoritative"
	if o.Authoritative {
		kind = "authoritative"
	}
	res := &Result{Kind: kind, BackupID: m.BackupID, Cluster: m.Cluster.Name}
	local, err := noderegistry.Load(o.DataDir)
	installed := err == nil
	if err != nil && !errors.Is(err, noderegistry.ErrNotInstalled) {
		return nil, err
	}
	if installed && o.Node != "" && !sameNode(o.Node, local.NodeID, local.NodeName) {
		return nil, fmt.Errorf("restore --node %s: nothing was changed: %s holds node %s", o.Node, o.DataDir, local.NodeName)
	}
	if installed && local.Configured() && local.ClusterID != m.Cluster.ID && !o.NewCluster {
		return nil, fmt.Errorf("restore: %w: the backup is of cluster %s (%s), this node belongs to %s (%s); say --new-cluster to create the backup's cluster here from it",
			ErrOtherCluster, m.Cluster.Name, m.Cluster.ID, local.ClusterName, local.ClusterID)
	}
	fromBackup, err := backupRegistry(ex.Registry)
	if err != nil {
		return nil, fmt.Errorf("restore: read the backup's registry: %w", err)
	}
	if !o.Authoritative && installed && !local.Configured() && (fromBackup == nil || fromBackup.NodeID != local.NodeID) {
		// A node of no cluster gets a database but no membership: nobody
		// would ever bring it up to date.
		return nil, fmt.Errorf("restore: this node (%s) is in no cluster and the backup is not of it: join it to the cluster with `clusterkeep agent --join`, or restore the cluster with --authoritative", local.NodeName)
	}
	// The identity the node gets.
	var id noderegistry.Identity
	switch {
	case installed && fromBackup != nil && local.NodeID == fromBackup.NodeID && !o.Authoritative:
		id = *fromBackup // the same node: its registry comes back as it was
	case installed:
		id = local // another member's backup: this node keeps its identity
	case fromBackup != nil:
		// A node whose data is gone comes back as the member whose backup
		// this is (or, with --new-cluster, stands in for it): the operator
		// says so, and that member must not be running elsewhere.
		if err := checkNamed(o, db, *fromBackup); err != nil {
			return nil, err
		}
		if err := checkNotRunning(ctx, o, db, *fromBackup); err != nil {
			return nil, err
		}
		id = *fromBackup
	default:
		return nil, fmt.Errorf("restore: %w in %s and the backup holds no registry to restore", ErrNotInstalled, o.DataDir)
	}
	if o.Authoritative {
		if !installed && !o.NewCluster {
			return nil, fmt.Errorf("restore --authoritative: %w in %s (say --new-cluster to create the cluster on this new machine)", ErrNotInstalled, o.DataDir)
		}
		checked, err := checkMembers(ctx, o, db, id.NodeID)
		res.Checked = checked
		if err != nil {
			return res, err
		}
		id.ClusterID, id.ClusterName = m.Cluster.ID, m.Cluster.Name
		id.Generation = NextGeneration(local.Generation, m.Cluster.Generation, time.Now())
		id.Bootstrap = true
	} else if installed && local.Configured() && local.Generation != m.Cluster.Generation {
		// The node's consensus history is of another generation than the
		// backup's database: mixing them would leave the node wrong.
		return nil, fmt.Errorf("restore: the backup is of generation %d, this node is at generation %d (an authoritative restore happened in between): restore it with --authoritative to roll the cluster back, or restore a backup of generation %d",
			m.Cluster.Generation, local.Generation, local.Generation)
	} else if id.ClusterID == "" {
		id.ClusterID, id.ClusterName, id.Generation = m.Cluster.ID, m.Cluster.Name, m.Cluster.Generation
	}
	if !o.Authoritative && o.LogStart != nil {
		if err := checkLogReaches(o.DataDir, db, o.LogStart); err != nil {
			return nil, err
		}
	}
	res.Node, res.Generation = id.NodeName, id.Generation
	// Where application files go is decided and checked before anything
	// changes.
	apps, err := planApps(ctx, o, set)
	if err != nil {
		return nil, fmt.Errorf("restore: nothing was changed: %w", err)
	}
	plan := staging.Plan{ID: uuid.NewString(), BackupID: m.BackupID, Backup: set.Location, Staged: time.Now().UTC(), Authoritative: o.Authoritative, Identity: id}
	// RESTORE_STOP_START: with the service stopped, the files are replaced
	// now; with it running they cannot be, and the restore is staged for
	// its next start (RESTORE_AT_REBOOT).
	lock, err := noderegistry.LockService(o.DataDir)
	if errors.Is(err, noderegistry.ErrLocked) {
		if err := ws.Commit(plan); err != nil {
			return nil, err
		}
		res.Applied = "at the next start of the node service"
		res.Note = "the node's service is running: restart it to apply the restore"
		return res, apps.run(ctx, o, set, res)
	}
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if err := ws.Commit(plan); err != nil {
		return nil, err
	}
	if _, err := staging.ApplyFiles(o.DataDir); err != nil {
		return nil, fmt.Errorf("restore: %w (run the same command again to finish)", err)
	}
	res.Applied = "now"
	if o.Authoritative {
		res.Note = "start this node's service first: it starts as a cluster of one; then start the other members, in any order"
	} else {
		res.Note = "start the node's service: it rejoins and catches up with the cluster"
	}
	return res, apps.run(ctx, o, set, res)
}

// NextGeneration is the generation an authoritative restore raises the
// cluster to: above every generation this node and the backup know of, and
// at least the restore's Unix time, so that two authoritative restores
// made on nodes that never saw each other's cannot choose the same one.
func NextGeneration(local, backup uint64, now time.Time) uint64 {
	return max(local+1, backup+1, uint64(now.Unix()))
}

// checkMembers asks every other member whether its service runs. A member
// that answers runs; one whose address refuses connections is stopped; any
// other failure leaves it unreachable.
func checkMembers(ctx context.Context, o Options, db string, selfID string) ([]Peer, error) {
	members := map[string]Peer{}
	if err := withHive(db, func(h *hive.Hive) error { return collectMembers(h, members) }); err != nil {
		return nil, err
	}
	if h, err := hive.OpenReadOnly(filepath.Join(o.DataDir, hive.FileName)); err == nil {
		collectMembers(h, members)
		h.Close()
	}
	delete(members, selfID)
	var out []Peer
	var running, unreachable []string
	for _, p := range members {
		p.State, p.Why = probe(ctx, p.API, o.ProbeTimeout)
		switch p.State {
		case "running":
			running = append(running, fmt.Sprintf("%s (%s)", p.Name, p.API))
		case "unreachable":
			unreachable = append(unreachable, fmt.Sprintf("%s (%s: %s)", p.Name, p.API, p.Why))
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	sort.Strings(running)
	sort.Strings(unreachable)
	if len(running) > 0 {
		return out, fmt.Errorf("restore --authoritative: %w: stop the cluster service on %s first", ErrMembersRunning, strings.Join(running, ", "))
	}
	if len(unreachable) > 0 && !o.Force {
		return out, fmt.Errorf("restore --authoritative: %w: %s. If their services run they keep the old state and take writes until they reach the restored node; those writes are then moved aside, not kept. Stop them, or say --force to go on",
			ErrUnreachable, strings.Join(unreachable, "; "))
	}
	return out, nil
}

func probe(ctx context.Context, addr string, timeout time.Duration) (string, string) {
	if addr == "" {
		return "unreachable", "no API address recorded"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := client.LocalStatus(ctx, addr)
	if err == nil {
		if st.RaftState == "" || st.RaftState == "Shutdown" {
			return "stopped", "answers, but runs no consensus"
		}
		return "running", st.RaftState
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "stopped", "nothing listens at its address"
	}
	return "unreachable", err.Error()
}
