package backend

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directBlock is the alignment O_DIRECT asks of buffers, offsets and
// lengths (the largest logical block size in common use).
const directBlock = 4096

// pageCacheOnly makes a directory target write through the page cache, as
// it does on a file system that refuses O_DIRECT (set by tests).
var pageCacheOnly = false

// directChunk is the one buffer a direct object fills before it writes it.
const directChunk = 1 << 20

// directObject writes a file of a set with O_DIRECT: the data goes from
// one aligned buffer to the disk, never into the page cache, so a backup
// leaves no dirty pages behind that the file system's journal would have
// to flush before the cluster's own fsyncs on the same disk complete (with
// ext4's ordered journal, every commit waits for them). One buffer is in
// flight at a time; the tail that is not a whole block is written through
// the page cache at Commit, with O_DIRECT turned off.
type directObject struct {
	f   *os.File
	buf []byte // aligned, directChunk long
	n   int    // bytes of buf in use
	err error
}

// openDirect creates path for writing with O_DIRECT, or says why not (a
// file system without direct I/O, tmpfs among them, refuses the flag).
func openDirect(path string) (*directObject, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_DIRECT, 0o600)
	if err != nil {
		return nil, err
	}
	return &directObject{f: f, buf: alignedBuffer(directChunk)}, nil
}

func alignedBuffer(size int) []byte {
	b := make([]byte, size+directBlock)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (directBlock - 1))
	if off != 0 {
		off = directBlock - off
	}
	return b[off : off+size]
}

func (o *directObject) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	written := 0
	for len(p) > 0 {
		c := copy(o.buf[o.n:], p)
		o.n += c
		p = p[c:]
		written += c
		if o.n == len(o.buf) {
			if _, err := o.f.Write(o.buf); err != nil {
				o.err = err
				return written, err
			}
			o.n = 0
		}
	}
	return written, nil
}

func (o *directObject) Commit() error {
	if o.err != nil {
		o.f.Close()
		return o.err
	}
	whole := o.n &^ (directBlock - 1)
	if whole > 0 {
		if _, err := o.f.Write(o.buf[:whole]); err != nil {
			o.f.Close()
			return fmt.Errorf("write: %w", err)
		}
	}
	if tail := o.buf[whole:o.n]; len(tail) > 0 {
		fd := int(o.f.Fd())
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err == nil {
			_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags&^unix.O_DIRECT)
		}
		if err == nil {
			_, err = o.f.Write(tail)
		}
		if err != nil {
			o.f.Close()
			return fmt.Errorf("write the last block: %w", err)
		}
	}
	// O_DIRECT bypasses the cache, not the disk's own: fsync still flushes
	// the device and the file's size and extents.
	if err := o.f.Sync(); err != nil {
		o.f.Close()
		return fmt.Errorf("fsync: %w", err)
	}
	return o.f.Close()
}

func (o *directObject) Abort() {
	o.f.Close()
	os.Remove(o.f.Name())
}
