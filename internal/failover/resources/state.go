package resources

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// record is what StateDir holds of one started process group, in
// <resource>.<pgid>.json, from its start until it is gone.
type record struct {
	Resource string `json:"resource"`
	PGID     int    `json:"pgid"`
	// StartTime is when the group's leader (the shim) started, in clock
	// ticks after boot (/proc/<pid>/stat): with BootID it tells the shim
	// from a later process given the same pid.
	StartTime uint64 `json:"start_time"`
	BootID    string `json:"boot_id"`
}

func newRecord(name string, pgid int) (record, error) {
	boot, err := bootID()
	if err != nil {
		return record{}, err
	}
	p, err := readProc(pgid)
	if err != nil {
		return record{}, fmt.Errorf("read the shim's start time: %w", err)
	}
	return record{Resource: name, PGID: pgid, StartTime: p.start, BootID: boot}, nil
}

// writeRecord writes rec into dir durably and returns its file's path.
func writeRecord(dir string, rec record) (string, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s.%d.json", rec.Resource, rec.PGID))
	tmp, err := os.CreateTemp(dir, ".record-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if err2 := tmp.Close(); err == nil {
		err = err2
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Reap kills (SIGKILL, whole process group) every process group an
// earlier agent run on this node recorded in cfg.StateDir and that still
// runs, and forgets the records. The agent calls it at start, before it
// starts anything. It returns what it killed ("web (process group 1234)").
//
// A group is killed only when it is surely the one recorded: its leader's
// start time and the boot match the record, or, the leader gone, every
// process left in it started no earlier and carries the resource's name in
// its environment. A recorded pid now held by another process is left
// alone.
func Reap(cfg ExecConfig) ([]string, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("reap: no state directory")
	}
	entries, err := os.ReadDir(cfg.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reap: %w", err)
	}
	boot, err := bootID()
	if err != nil {
		return nil, fmt.Errorf("reap: %w", err)
	}
	var killed []string
	var errs []error
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(cfg.StateDir, e.Name())
		var rec record
		b, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err == nil && rec.PGID <= 1 {
			err = fmt.Errorf("process group %d", rec.PGID)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reap: record %s: %w", path, err))
			continue
		}
		if rec.BootID == boot && recorded(rec) {
			unix.Kill(-rec.PGID, unix.SIGKILL)
			if !waitGroupGone(rec.PGID, cfg.killWait()) {
				errs = append(errs, fmt.Errorf("reap: %s: process group %d still has processes %v after SIGKILL", rec.Resource, rec.PGID, cfg.killWait()))
				continue
			}
			killed = append(killed, fmt.Sprintf("%s (process group %d)", rec.Resource, rec.PGID))
		}
		if err := os.Remove(path); err != nil {
			errs = append(errs, fmt.Errorf("reap: %w", err))
		}
	}
	return killed, errors.Join(errs...)
}

// recorded reports whether group rec.PGID still runs and is the one rec
// describes.
func recorded(rec record) bool {
	members, err := groupMembers(rec.PGID)
	if err != nil || len(members) == 0 {
		return false
	}
	if leader, err := readProc(rec.PGID); err == nil {
		// A zombie leader still tells its start time.
		return leader.start == rec.StartTime && leader.pgrp == rec.PGID
	}
	// The group outlived its leader. Its id may since have gone to a
	// later group whose leader is gone too: be sure these are the
	// resource's processes.
	for _, m := range members {
		if m.start < rec.StartTime || !hasEnv(m.pid, EnvResource+"="+rec.Resource) {
			return false
		}
	}
	return true
}
