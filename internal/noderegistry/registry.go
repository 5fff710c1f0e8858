// Package noderegistry keeps the node-local hive (node.db): this node's
// identity, the cluster it belongs to, its generation and addresses. It
// exists without the cluster and is what GetNodeClusterState reads. The file
// is opened only for the moment of a read or a change, so that tools can
// read it while the node service runs. It also owns the service lock that
// tells whether a node service holds the data directory.
//
// It never reaches the network and never touches the cluster database.
package noderegistry

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the registry's file inside a data directory.
const FileName = "node.db"

// LockName is the lock file the node service holds while it runs.
const LockName = "service.lock"

var (
	bucket = []byte("node")
	keyID  = []byte("identity")
)

// Errors callers branch on.
var (
	ErrNotInstalled = errors.New("no node data in this directory")
	ErrLocked       = errors.New("a node service already runs on this data directory")
	// ErrNotConfigured: the node is in no cluster (never joined, or
	// evicted). The cluster service answers it too.
	ErrNotConfigured = errors.New("this node is not a member of a cluster")
)

// Identity is what the registry holds.
type Identity struct {
	NodeID   string `json:"node_id"`
	NodeName string `json:"node_name"`
	// ClusterID and ClusterName are empty until the node creates or joins
	// a cluster, and again after it is evicted.
	ClusterID   string `json:"cluster_id,omitempty"`
	ClusterName string `json:"cluster_name,omitempty"`
	// Generation is the cluster generation this node's state belongs to;
	// it starts at 1 and is raised by every authoritative restore.
	Generation uint64 `json:"generation"`
	// Bootstrap makes the service start as a cluster of one at its next
	// start (an authoritative restore), then it is cleared.
	Bootstrap bool      `json:"bootstrap,omitempty"`
	RaftAddr  string    `json:"raft_addr"`
	APIAddr   string    `json:"api_addr"`
	Created   time.Time `json:"created"`
}

// Configured reports whether the node is a member of a cluster.
func (id Identity) Configured() bool { return id.ClusterID != "" }

// Path returns the registry path inside dataDir.
func Path(dataDir string) string { return filepath.Join(dataDir, FileName) }

// Exists reports whether dataDir holds a registry.
func Exists(dataDir string) bool {
	_, err := os.Stat(Path(dataDir))
	return err == nil
}

func open(dataDir string, readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(Path(dataDir), 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: readOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open node registry in %s: held by another process for 5s: %w", dataDir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open node registry in %s: %w", dataDir, err)
	}
	return db, nil
}

// Load reads the identity. It returns ErrNotInstalled when dataDir has no registry.
func Load(dataDir string) (Identity, error) {
	if !Exists(dataDir) {
		return Identity{}, fmt.Errorf("%s: %w", dataDir, ErrNotInstalled)
	}
	db, err := open(dataDir, true)
	if err != nil {
		return Identity{}, err
	}
	defer db.Close()
	var id Identity
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil || b.Get(keyID) == nil {
			return fmt.Errorf("node registry in %s holds no identity", dataDir)
		}
		return json.Unmarshal(b.Get(keyID), &id)
	})
	if err != nil {
		return Identity{}, fmt.Errorf("read node registry in %s: %w", dataDir, err)
	}
	return id, nil
}

// Save writes the identity, creating the registry (and dataDir) if needed.
func Save(dataDir string, id Identity) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory %s: %w", dataDir, err)
	}
	db, err := open(dataDir, false)
	if err != nil {
		return err
	}
	defer db.Close()
	raw, err := json.Marshal(id)
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.Put(keyID, raw)
	})
	if err != nil {
		return fmt.Errorf("write node registry in %s: %w", dataDir, err)
	}
	return db.Close()
}

// Update reads the identity, lets fn change it and writes it back.
func Update(dataDir string, fn func(*Identity) error) (Identity, error) {
	id, err := Load(dataDir)
	if err != nil {
		return Identity{}, err
	}
	if err := fn(&id); err != nil {
		return Identity{}, err
	}
	return id, Save(dataDir, id)
}

// Lock is the node service's hold on its data directory.
type Lock struct{ f *os.File }

// LockService takes the service lock of dataDir, failing with ErrLocked when
// another node service holds it. The lock is released by Unlock or when the
// process dies, however it dies.
func LockService(dataDir string) (*Lock, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dataDir, err)
	}
	f, err := os.OpenFile(filepath.Join(dataDir, LockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open service lock in %s: %w", dataDir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", dataDir, ErrLocked)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return &Lock{f: f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	err := l.f.Close()
	l.f = nil
	return err
}

// ServiceHolds reports whether a live node service holds dataDir's lock.
func ServiceHolds(dataDir string) bool {
	f, err := os.Open(filepath.Join(dataDir, LockName))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
