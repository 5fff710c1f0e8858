package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrLink is returned when a path holds a symbolic link where none may be.
var ErrLink = errors.New("symbolic link in the path")

// ErrUnsafePath is returned for a relative path that would leave the
// directory it is taken in (absolute, or with a ".." or empty component).
var ErrUnsafePath = errors.New("path leaves its directory")

// OpenDirBeneath opens the directory rel below root, walking one component
// at a time with O_NOFOLLOW, so that no symbolic link below root is ever
// followed, whoever swaps one in while the walk runs: the directory
// returned is really below root. root itself is opened as given (it is
// the caller's choice, links and all); rel "" or "." is root. With create,
// missing directories are made (0700).
func OpenDirBeneath(root, rel string, create bool) (*os.File, error) {
	parts, err := splitRel(rel)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	at := root
	for _, p := range parts {
		next := filepath.Join(at, p)
		nfd, err := unix.Openat(fd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT && create {
			if err = unix.Mkdirat(fd, p, 0o700); err == nil || err == unix.EEXIST {
				nfd, err = unix.Openat(fd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		if err != nil {
			unix.Close(fd)
			return nil, linkError(next, err)
		}
		unix.Close(fd)
		fd, at = nfd, next
	}
	return os.NewFile(uintptr(fd), at), nil
}

// OpenBeneath opens the regular file rel below root for reading, following
// no symbolic link below root (see OpenDirBeneath).
func OpenBeneath(root, rel string) (*os.File, error) {
	dir, base := filepath.Split(filepath.Clean(filepath.FromSlash(rel)))
	if _, err := splitRel(rel); err != nil || base == "" || base == "." {
		return nil, fmt.Errorf("open %s: %w", rel, ErrUnsafePath)
	}
	d, err := OpenDirBeneath(root, dir, false)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fd, err := unix.Openat(int(d.Fd()), base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	full := filepath.Join(d.Name(), base)
	if err != nil {
		return nil, linkError(full, err)
	}
	f := os.NewFile(uintptr(fd), full)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: not a regular file", full)
	}
	// O_NONBLOCK only kept a FIFO from blocking the open.
	if err := unix.SetNonblock(fd, false); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Lstatat is lstat of name inside the open directory dir.
func Lstatat(dir *os.File, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

func splitRel(rel string) ([]string, error) {
	rel = filepath.ToSlash(rel)
	if strings.HasPrefix(rel, "/") {
		return nil, fmt.Errorf("%q: %w", rel, ErrUnsafePath)
	}
	rel = strings.TrimSuffix(rel, "/")
	if rel == "" || rel == "." {
		return nil, nil
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.ContainsRune(p, 0) {
			return nil, fmt.Errorf("%q: %w", rel, ErrUnsafePath)
		}
	}
	return parts, nil
}

// linkError says which component was a link when an O_NOFOLLOW open
// failed on one (ELOOP, or ENOTDIR for a link where a directory was
// wanted).
func linkError(p string, err error) error {
	if err == unix.ELOOP || err == unix.ENOTDIR {
		if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s: %w", p, ErrLink)
		}
	}
	return &os.PathError{Op: "open", Path: p, Err: err}
}
