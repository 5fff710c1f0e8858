package localcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Load reads the state of the local cluster in dir.
func Load(dir string) (*Cluster, error) {
	c, err := read(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no local cluster in %s (run `clusterkeep local up --dir %s`)", dir, dir)
	}
	return c, err
}

func read(dir string) (*Cluster, error) {
	path := filepath.Join(dir, StateFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Cluster
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &c, nil
}

// update changes the state file under a lock held across processes: it
// reads the file as it is on disk, lets change edit that, writes it back
// whole, and takes the nodes' records from it. Concurrent `local start`s
// each change their own node, and none loses what another wrote.
func (c *Cluster) update(change func(d *Cluster)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	lock, err := os.OpenFile(filepath.Join(c.Dir, StateFile+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("lock the local cluster's state: %w", err)
	}
	defer lock.Close() // releases the lock
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock the local cluster's state %s: %w", lock.Name(), err)
	}
	d, err := read(c.Dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		d = &Cluster{Dir: c.Dir, Binary: c.Binary, AgentArgs: c.AgentArgs}
	case err != nil:
		return err
	}
	change(d)
	if err := write(d); err != nil {
		return err
	}
	// Records of nodes this process holds pointers to are updated in place.
	for _, dn := range d.Nodes {
		if i := c.index(dn.Name); i >= 0 {
			c.Nodes[i] = dn
		} else {
			c.Nodes = append(c.Nodes, dn)
		}
	}
	return nil
}

func write(d *Cluster) error {
	raw, _ := json.MarshalIndent(d, "", "  ")
	tmp, err := os.CreateTemp(d.Dir, StateFile+".tmp-")
	if err != nil {
		return fmt.Errorf("save the local cluster's state: %w", err)
	}
	_, err = tmp.Write(raw)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(d.Dir, StateFile))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save the local cluster's state: %w", err)
	}
	return nil
}

func (c *Cluster) index(name string) int {
	for i := range c.Nodes {
		if strings.EqualFold(c.Nodes[i].Name, name) {
			return i
		}
	}
	return -1
}

// setPID records a node's process (0: none) in the state file, adding the
// node's record if the file has none yet (a node just added).
func (c *Cluster) setPID(nd *Node, pid int) error {
	rec := *nd
	rec.PID = pid
	return c.update(func(d *Cluster) {
		if i := d.index(rec.Name); i >= 0 {
			d.Nodes[i].PID = pid
		} else {
			d.Nodes = append(d.Nodes, rec)
		}
	})
}
