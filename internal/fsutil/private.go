package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// EnvOperatorUmask carries, from a process that called PrivateUmask to the
// programs it starts for the operator, the umask it was started with.
const EnvOperatorUmask = "CLUSTERKEEP_OPERATOR_UMASK"

// PrivateUmask makes every file and folder this process creates from now
// on its owner's only (umask 077), whatever umask it was started with, so
// that no file holding cluster data is ever readable by another user, the
// ones made by libraries (raft's snapshots) included. The umask it was
// started with is kept in the environment (EnvOperatorUmask) for
// RestoreOperatorUmask in the programs it starts on the operator's behalf.
func PrivateUmask() {
	old := unix.Umask(0o077)
	if _, set := os.LookupEnv(EnvOperatorUmask); !set {
		os.Setenv(EnvOperatorUmask, strconv.FormatInt(int64(old), 8))
	}
}

// RestoreOperatorUmask puts back the umask a PrivateUmask process was
// started with (a resource's command creates its files as the operator
// expects), and removes the variable from the environment.
func RestoreOperatorUmask() {
	s, ok := os.LookupEnv(EnvOperatorUmask)
	if !ok {
		return
	}
	os.Unsetenv(EnvOperatorUmask)
	if m, err := strconv.ParseUint(s, 8, 32); err == nil && m <= 0o777 {
		unix.Umask(int(m))
	}
}

// MakePrivate takes the group's and others' permissions off every file and
// folder below dir, dir included, so that what an earlier version or
// another umask left readable is its owner's only. Symbolic links are not
// followed.
func MakePrivate(dir string) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if fi.Mode().Perm()&0o077 == 0 {
			return nil
		}
		if err := os.Chmod(path, fi.Mode().Perm()&^0o077); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("make %s private to its owner: %w", dir, err)
	}
	return nil
}
