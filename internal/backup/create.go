package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/backend"
	"github.com/clusterkeep/clusterkeep/internal/backupset"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/clusterkeep/clusterkeep/internal/version"
	"github.com/clusterkeep/clusterkeep/internal/writers"
)

// Options are backup create's settings.
type Options struct {
	DataDir  string   // this host's node data directory
	Cluster  []string // cluster API addresses, when given
	To       string   // the target the set is created in: a directory or s3://bucket/prefix
	Node     string   // --node: the node to back up on
	Compress bool
	// Recipients, when given, encrypt the set to them (age).
	Recipients []age.Recipient
	Type       shadow.BackupType
	MaxLag     uint64
	Progress   ui.Progress
	Log        *slog.Logger
	// BusyWait is how long to wait for another backup on the chosen node
	// to finish (or be abandoned) before giving up.
	BusyWait time.Duration
	// Client options of every call to the cluster (default: the client's
	// default credentials); an agent taking a scheduled backup passes its
	// node certificate.
	Client []client.Option
}

// Result is what backup create reports.
type Result struct {
	Path           string        `json:"path"`
	BackupID       string        `json:"backup_id"`
	Mode           Mode          `json:"mode"`
	Detected       string        `json:"detected"`
	Cluster        string        `json:"cluster"`
	ClusterID      string        `json:"cluster_id"`
	Generation     uint64        `json:"generation"`
	Node           string        `json:"node"`
	Why            string        `json:"why"`
	Skipped        []Skip        `json:"skipped,omitempty"`
	Retried        []string      `json:"retried_after,omitempty"`
	HiveSeq        uint64        `json:"hive_seq"`
	ConsensusIndex uint64        `json:"consensus_index"`
	Files          int           `json:"files"`
	Bytes          int64         `json:"bytes"`
	StoredBytes    int64         `json:"stored_bytes"`
	Encrypted      bool          `json:"encrypted"`
	Recipients     []string      `json:"recipients,omitempty"` // fingerprints
	Frozen         time.Duration `json:"frozen_ns"`
	Duration       time.Duration `json:"duration_ns"`
}

func (o *Options) defaults() {
	if o.Type == "" {
		o.Type = shadow.BackupFull
	}
	if o.MaxLag == 0 {
		o.MaxLag = DefaultMaxLag
	}
	if o.Progress == nil {
		o.Progress = (&ui.Output{JSON: true}).NewProgress()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.BusyWait == 0 {
		o.BusyWait = 90 * time.Second
	}
}

// Create takes a backup set: detect, select a node, checkpoint through the
// node's coordinator, store and verify each file on the way, make the set
// visible. When the node goes away mid-backup, the backup starts again on
// another node (unless --node named it).
func Create(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	start := time.Now()
	if o.To == "" {
		return nil, errors.New("backup create: no target (--to DIR or s3://bucket/prefix)")
	}
	det, err := Detect(ctx, o.DataDir, o.Cluster, o.Client...)
	if err != nil {
		return nil, err
	}
	var res *Result
	if det.Mode == ModeOffline {
		res, err = createOffline(ctx, o, det)
	} else {
		res, err = createFromCluster(ctx, o, det)
	}
	if err != nil {
		return nil, err
	}
	res.Mode, res.Detected, res.Duration = det.Mode, det.Why, time.Since(start)
	if s, err := backupset.Open(res.Path); err == nil && s.Encrypted() {
		res.Encrypted, res.Recipients = true, s.Manifest.Encryption.Recipients
	}
	o.Progress.Done()
	return res, nil
}

func createFromCluster(ctx context.Context, o Options, det *Detection) (*Result, error) {
	info := det.Info
	exclude, busy := map[string]bool{}, map[string]bool{}
	wait := o.Node != "" // with --node, wait for that node; else try another
	var retried []string
	for {
		skip := maps.Clone(exclude)
		maps.Copy(skip, busy)
		choice, err := Select(info, det.Local.NodeID, o.Node, o.MaxLag, skip)
		if err != nil && len(busy) > 0 {
			// Every node that qualifies is busy: wait on the best of them.
			clear(busy)
			wait = true
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("backup cluster %s: select a node: %w", info.Name, err)
		}
		o.Log.Info("backing up", "cluster", info.Name, "node", choice.Node.Name, "why", choice.Why)
		addr := choice.Node.APIAddr
		if choice.Node.ID == det.Local.NodeID && det.Local.Addr != "" {
			addr = det.Local.Addr // this host's node, through its socket
		}
		res, err := checkpoint(ctx, o, info.Name, choice, addr, wait)
		if err == nil {
			res.Retried = retried
			return res, nil
		}
		if errors.Is(err, client.ErrBusy) && !wait {
			o.Log.Warn("another backup runs on the node: trying another", "node", choice.Node.Name)
			busy[choice.Node.ID] = true
			continue
		}
		if o.Node != "" || !nodeWentAway(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("backup cluster %s on node %s: %w", info.Name, choice.Node.Name, err)
		}
		o.Log.Warn("node went away during the backup: starting again on another", "node", choice.Node.Name, "err", err)
		retried = append(retried, fmt.Sprintf("%s: %v", choice.Node.Name, err))
		exclude[choice.Node.ID] = true
		if info, err = det.Cluster.GetClusterInformation(ctx); err != nil {
			return nil, fmt.Errorf("backup cluster %s: %w", det.Info.Name, err)
		}
	}
}

// nodeWentAway says whether a failed checkpoint failed because its node
// stopped answering (in a call or in the middle of a stream) or lost the
// session (it restarted).
func nodeWentAway(err error) bool {
	return errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrUncertain) || errors.Is(err, client.ErrNoSession)
}

// setName names a set by cluster and UTC time.
func setName(cluster string, t time.Time) string {
	return fmt.Sprintf("%s-%s", cluster, t.UTC().Format("20060102T150405Z"))
}

func newSet(o Options, cluster string, t time.Time) (*backupset.Writer, error) {
	name := setName(cluster, t)
	for i := 1; ; i++ {
		w, err := backupset.Create(o.To, name, o.Compress)
		if err == nil && len(o.Recipients) > 0 {
			if err = w.Encrypt(o.Recipients); err != nil {
				w.Abort()
				return nil, err
			}
		}
		if err == nil || i > 50 || !errors.Is(err, backend.ErrExists) {
			return w, err
		}
		name = fmt.Sprintf("%s-%d", setName(cluster, t), i)
	}
}

// startBackup starts a backup on a node, waiting while another runs there
// if wait is set.
func startBackup(ctx context.Context, o Options, addr string, wait bool) (*client.RemoteBackup, error) {
	deadline := time.Now()
	if wait {
		deadline = deadline.Add(o.BusyWait)
	}
	for {
		b, err := client.StartBackupTo(ctx, addr, o.Type, targetLabel(o.To), o.Client...)
		if !errors.Is(err, client.ErrBusy) || time.Now().After(deadline) {
			return b, err
		}
		o.Log.Warn("another backup runs on the node; waiting", "node", addr)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func checkpoint(ctx context.Context, o Options, clusterName string, choice Choice, addr string, wait bool) (_ *Result, err error) {
	o.Progress.Phase("checkpoint", 0)
	b, err := startBackup(ctx, o, addr, wait)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			b.AbortBackup(actx)
			cancel()
		}
	}()
	if err := b.AddAllComponents(ctx); err != nil {
		return nil, err
	}
	if err := b.PrepareForBackup(ctx); err != nil {
		return nil, err
	}
	set, err := b.DoSnapshotSet(ctx)
	if err != nil {
		return nil, err
	}
	node := b.Started.Node
	res := &Result{BackupID: b.ID(), Cluster: node.ClusterName, ClusterID: node.ClusterID, Generation: node.Generation,
		Node: node.NodeName, Why: choice.Why, Skipped: choice.Skipped, Frozen: set.Frozen}
	var total int64
	for _, it := range set.Items {
		total += it.Size
		if it.WriterID == writers.ClusterDBID {
			res.HiveSeq, res.ConsensusIndex = infoUint(it.Info, "seq"), infoUint(it.Info, "consensus_index")
			res.Generation = infoUint(it.Info, "generation")
		}
	}
	w, err := newSet(o, clusterName, time.Now())
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			w.Abort()
		}
	}()
	o.Progress.Phase("store", total)
	for _, it := range set.Items {
		rc, err := b.Item(ctx, it.Name)
		if err != nil {
			return nil, err
		}
		f, err := w.Add(backupset.File{Name: it.Name, WriterID: it.WriterID, Component: it.Component, Source: it.Source}, rc, o.Progress.Add)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if f.Size != it.Size {
			return nil, fmt.Errorf("item %s: received %d bytes, the node captured %d", it.Name, f.Size, it.Size)
		}
		res.Files++
		res.Bytes += f.Size
		res.StoredBytes += max(f.StoredSize, 0)
		if f.Compression == "" {
			res.StoredBytes += f.Size
		}
	}
	// The set is made visible before the writers hear the backup is
	// complete: a writer that acts on BackupComplete (a full backup) must
	// never do so for a backup that is not stored.
	doc, err := b.Document(ctx)
	if err != nil {
		return nil, err
	}
	doc.WriterStatus = completeStatus(doc)
	m := &backupset.Manifest{BackupID: b.ID(), Created: doc.Created, ToolVersion: version.Version,
		Cluster:    backupset.Cluster{Name: node.ClusterName, ID: node.ClusterID, Generation: res.Generation},
		SourceNode: backupset.Node{ID: node.NodeID, Name: node.NodeName, APIAddr: node.APIAddr},
		HiveSeq:    res.HiveSeq, ConsensusIndex: res.ConsensusIndex, Writers: b.Started.Writers, Components: doc}
	if res.Path, err = w.Commit(m); err != nil {
		return nil, err
	}
	if _, cerr := b.BackupComplete(ctx); cerr != nil {
		// The set is stored and whole; the writers were not told.
		o.Log.Warn("backup stored, but BackupComplete failed on the node", "err", cerr)
	}
	return res, nil
}

// completeStatus records, in the stored document, that every writer is to
// be told BackupComplete (it is, right after the set is committed).
func completeStatus(doc shadow.BackupComponents) map[string][]shadow.PhaseStatus {
	out := map[string][]shadow.PhaseStatus{}
	for id, st := range doc.WriterStatus {
		out[id] = append(append([]shadow.PhaseStatus(nil), st...), shadow.PhaseStatus{Phase: shadow.PhaseBackupComplete, State: shadow.StateStable})
	}
	return out
}

func infoUint(info map[string]any, k string) uint64 {
	switch v := info[k].(type) {
	case float64:
		return uint64(v)
	case uint64:
		return v
	}
	return 0
}

// createOffline backs up a stopped node's database and registry as the
// ordinary files they are then.
func createOffline(ctx context.Context, o Options, det *Detection) (*Result, error) {
	st := det.Local
	h, err := hive.OpenReadOnly(filepath.Join(o.DataDir, hive.FileName))
	if err != nil {
		return nil, fmt.Errorf("offline backup of %s: %w", o.DataDir, err)
	}
	defer h.Close()
	snap, err := h.Snapshot()
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	reg, err := writers.ReadRegistry(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("offline backup of %s: %w", o.DataDir, err)
	}
	id := fmt.Sprintf("offline-%d", time.Now().UnixNano())
	res := &Result{BackupID: id, Cluster: st.ClusterName, ClusterID: st.ClusterID, Generation: st.Generation,
		Node: st.NodeName, Why: "offline: the node's service is not running", HiveSeq: snap.Reader().Seq(), ConsensusIndex: snap.Reader().Applied()}
	w, err := newSet(o, st.ClusterName, time.Now())
	if err != nil {
		return nil, err
	}
	dbMeta, regMeta := writers.ClusterDBMetadata(st.NodeID), writers.RegistryMetadata(st.NodeID)
	doc := shadow.BackupComponents{BackupID: id, BackupType: o.Type, Created: time.Now().UTC()}
	type src struct {
		meta shadow.WriterMetadata
		open func() io.Reader
		size int64
		path string
	}
	sources := []src{
		{dbMeta, func() io.Reader { return pipe(snap) }, snap.Size(), filepath.Join(o.DataDir, hive.FileName)},
		{regMeta, func() io.Reader { return strings.NewReader(string(reg)) }, int64(len(reg)), noderegistry.Path(o.DataDir)},
	}
	o.Progress.Phase("store", snap.Size()+int64(len(reg)))
	for _, s := range sources {
		comp := s.meta.Components[0]
		name := shadow.ItemName(s.meta.ID, comp, comp.Streams[0])
		f, err := w.Add(backupset.File{Name: name, WriterID: s.meta.ID, Component: comp.Key(), Source: s.path}, s.open(), o.Progress.Add)
		if err != nil {
			w.Abort()
			return nil, err
		}
		doc.Components = append(doc.Components, shadow.SelectedComponent{WriterID: s.meta.ID, WriterName: s.meta.Name, LogicalPath: comp.LogicalPath, Name: comp.Name, Files: []string{name}})
		res.Files++
		res.Bytes += f.Size
		res.StoredBytes += f.StoredSize
		if f.Compression == "" {
			res.StoredBytes += f.Size
		}
	}
	m := &backupset.Manifest{BackupID: id, Created: doc.Created, ToolVersion: version.Version, Offline: true,
		Cluster:    backupset.Cluster{Name: st.ClusterName, ID: st.ClusterID, Generation: st.Generation},
		SourceNode: backupset.Node{ID: st.NodeID, Name: st.NodeName}, HiveSeq: res.HiveSeq, ConsensusIndex: res.ConsensusIndex,
		Writers: []shadow.WriterMetadata{dbMeta, regMeta}, Components: doc}
	if res.Path, err = w.Commit(m); err != nil {
		w.Abort()
		return nil, err
	}
	_ = ctx
	return res, nil
}

func pipe(s *hive.Snapshot) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		_, err := s.WriteTo(pw)
		pw.CloseWithError(err)
	}()
	return pr
}

// targetLabel is how the node records where a set goes: an S3 location as
// given, a directory as an absolute path.
func targetLabel(to string) string {
	if strings.HasPrefix(to, "s3://") {
		return to
	}
	if abs, err := filepath.Abs(to); err == nil {
		return abs
	}
	return to
}
