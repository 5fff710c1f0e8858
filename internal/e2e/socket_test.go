package e2e

// The local socket's check of its caller's user: the agent's own user and
// root are answered, any other user is cut off, whatever the socket file's
// mode lets through.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// socketHelperEnv names the socket TestSocketHelperProcess asks.
const socketHelperEnv = "CK_SOCKET_HELPER"

// socketAnswerPrefix marks the helper's line of output among the test
// binary's own.
const socketAnswerPrefix = "socket answer: "

// An agent run as uid 65534 answers on its socket a client of its own
// user and one of root. A client of uid 65533 does not reach the socket
// through the modes the agent set (a 0700 data directory, a 0600 socket);
// with both opened to everyone, as a careless operator might leave them,
// it connects and is cut off before anything is answered: the check of
// the caller's user holds on its own.
func TestSocketRefusesOtherUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: the agent and its clients are run as other users (uids 65534 and 65533)")
	}
	const agentUID, otherUID = 65534, 65533
	dir := worldReadableDir(t)
	bin := copyExecutable(t, tc.Binary(t), filepath.Join(dir, "clusterkeep"))
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := copyExecutable(t, self, filepath.Join(dir, "e2e.test"))
	data := filepath.Join(dir, "n1")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, agentUID, agentUID); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "agent", "--data-dir", data, "--name", "n1", "--api", tc.FreeAddr(t), "--raft", tc.FreeAddr(t),
		"--heartbeat-timeout", "500ms", "--election-timeout", "500ms", "--leader-lease", "250ms", "--create", "sock")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, tc.WithoutTrust(nil), &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: agentUID, Gid: agentUID}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("agent log:\n%s", log.String())
		}
	})
	sock := filepath.Join(data, client.SocketFile)
	as := func(uid uint32) string {
		t.Helper()
		c := exec.Command(helper, "-test.run=^TestSocketHelperProcess$", "-test.count=1")
		c.Dir, c.Env = dir, append(os.Environ(), socketHelperEnv+"="+sock)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := c.CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if a, ok := strings.CutPrefix(l, socketAnswerPrefix); ok {
				return a
			}
		}
		t.Fatalf("the helper as uid %d said nothing of the socket: %v\n%s", uid, err, out)
		return ""
	}
	// The socket is served once the cluster is made.
	tc.Eventually(t, "the socket answers root", func() error {
		if a := askSocket(sock); a != "answered 200 OK" {
			return errors.New(a)
		}
		return nil
	})

	if a := as(otherUID); !strings.HasPrefix(a, "no connection:") || !strings.Contains(a, "permission denied") {
		t.Fatalf("uid %d through the agent's modes: %s, want permission denied", otherUID, a)
	}
	for _, p := range []struct {
		path string
		mode os.FileMode
	}{{data, 0o755}, {sock, 0o666}} {
		if err := os.Chmod(p.path, p.mode); err != nil {
			t.Fatal(err)
		}
	}
	if a := as(otherUID); !strings.HasPrefix(a, "cut off:") {
		t.Fatalf("uid %d at a socket open to everyone: %s, want the connection cut off unanswered", otherUID, a)
	}
	if a := as(agentUID); a != "answered 200 OK" {
		t.Fatalf("uid %d, the agent's own user: %s", agentUID, a)
	}
	if a := askSocket(sock); a != "answered 200 OK" {
		t.Fatalf("root: %s", a)
	}
}

// TestSocketHelperProcess is no test of its own: TestSocketRefusesOtherUsers
// runs the test binary as another user with CK_SOCKET_HELPER set, and this
// asks that socket for the node's status and prints what came of it.
func TestSocketHelperProcess(t *testing.T) {
	path := os.Getenv(socketHelperEnv)
	if path == "" {
		t.Skip("run by TestSocketRefusesOtherUsers as another user")
	}
	fmt.Printf("%s%s\n", socketAnswerPrefix, askSocket(path))
}

// askSocket asks the socket at path for the node's status: "answered
// STATUS", "no connection: ERR" when it could not connect, "cut off: ERR"
// when the connection was closed or reset before an answer, "failed: ERR"
// otherwise (a timeout, say).
func askSocket(path string) string {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return "no connection: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// A write may already meet the closed connection; the read says so.
	io.WriteString(c, "GET /v1/local/status HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	switch {
	case err == nil:
		resp.Body.Close()
		return "answered " + resp.Status
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "cut off: " + err.Error()
	default:
		return "failed: " + err.Error()
	}
}

// worldReadableDir is a new directory every user may enter and read, so
// that processes of other users can run the executables put in it.
func worldReadableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "clusterkeep-socket-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyExecutable copies the executable src to dst, runnable by every user.
func copyExecutable(t *testing.T, src, dst string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
