package backend

// Who writes a directory target's hidden working directories. A directory
// target may be a mount shared by several hosts (the leader's host takes
// scheduled backups, and the leader moves), so a partial set's process id
// means something only on the host, boot and PID namespace that wrote it:
// that is recorded in the directory's name, and only such partials are
// judged by their process. The others are judged by a heartbeat: their
// writer renews the directory's modification time every heartbeatEvery,
// and only one that was not renewed for the target's PartialAge (hours) is
// taken as abandoned.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// heartbeatEvery is how often a writer renews its partial directory's
// modification time (a variable for tests).
var heartbeatEvery = time.Minute

// owner is the writer of a hidden working directory.
type owner struct {
	host string
	// machine tells this host's boot and PID namespace apart from another
	// one's (a reboot, a container given the same host name): a process id
	// is looked up only where it was given out.
	machine string
	pid     int
}

// self is this process as an owner.
var self = sync.OnceValue(func() owner {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	// As the name will say it: at most maxHostTag bytes once escaped.
	host, _ = unescapeHost(escapeHost(host))
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	ns, _ := os.Readlink("/proc/self/ns/pid")
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(boot)) + "\x00" + ns))
	return owner{host: host, machine: hex.EncodeToString(sum[:6]), pid: os.Getpid()}
})

// tag is the owner as written in a working directory's name:
// PID@HOST@MACHINE, the host name escaped so that it holds no '@', '/'
// or other byte a parser would trip on.
func (o owner) tag() string {
	return strconv.Itoa(o.pid) + "@" + escapeHost(o.host) + "@" + o.machine
}

// local says whether o's process id can be looked up here.
func (o owner) local() bool {
	me := self()
	return o.host == me.host && o.machine == me.machine
}

// maxHostTag bounds the host in a directory's name, which must stay
// within the file system's 255 bytes with the set's name.
const maxHostTag = 64

func escapeHost(h string) string {
	var b strings.Builder
	for _, c := range []byte(h) {
		e := string(c)
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			e = fmt.Sprintf("%%%02X", c)
		}
		if b.Len()+len(e) > maxHostTag {
			break
		}
		b.WriteString(e)
	}
	return b.String()
}

func unescapeHost(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}

// parseTag reads what follows a working directory's marker: TAG-SUFFIX.
// legacy: the name has a process id only (an older clusterkeep wrote it,
// on a host it did not record).
func parseTag(rest string) (o owner, legacy, ok bool) {
	i := strings.LastIndex(rest, "-")
	if i < 0 {
		return owner{}, false, false
	}
	fields := strings.Split(rest[:i], "@")
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 0 {
		return owner{}, false, false
	}
	switch len(fields) {
	case 1:
		return owner{pid: pid}, true, true
	case 3:
		host, ok := unescapeHost(fields[1])
		if !ok || host == "" || fields[2] == "" {
			return owner{}, false, false
		}
		return owner{host: host, machine: fields[2], pid: pid}, false, true
	}
	return owner{}, false, false
}

// heartbeat renews dir's modification time every heartbeatEvery until
// stop is called, which waits for it to end.
func heartbeat(dir string) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				now := time.Now()
				os.Chtimes(dir, now, now)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
		})
	}
}
