package resources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"syscall"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

// newCheck returns the health check the params name (check, tcp or http),
// or nil when there is none: then the resource is healthy while its
// process runs.
func newCheck(p map[string]string, i *execInstance) func(context.Context) error {
	if s, ok := p["check"]; ok {
		argv, _ := roles.ParseCommand(s)
		return func(ctx context.Context) error { return checkCommand(ctx, argv, i.env) }
	}
	if addr, ok := p["tcp"]; ok {
		return func(ctx context.Context) error { return checkTCP(ctx, addr) }
	}
	if u, ok := p["http"]; ok {
		c := &http.Client{
			// A fresh connection each time, to this node's service, not
			// through a proxy from the environment.
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
			// A redirect is an answer: 3xx counts as healthy.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		return func(ctx context.Context) error { return checkHTTP(ctx, c, u) }
	}
	return nil
}

// checkCommand runs a check command: healthy when it exits 0. It runs in a
// process group of its own, killed whole when ctx ends.
func checkCommand(ctx context.Context, argv, env []string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	stderr := &tailWriter{max: 4096}
	cmd.Stderr = stderr
	timedOut, err := groupRun(ctx, cmd)
	line := stderr.lastLine()
	var ee *exec.ExitError
	switch {
	case timedOut:
		err = fmt.Errorf("check command %s did not finish within the monitor timeout (killed)", argv[0])
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			err = fmt.Errorf("check command killed by signal %v", ws.Signal())
		} else {
			err = fmt.Errorf("check command exited %d", ee.ExitCode())
		}
	case err != nil:
		return fmt.Errorf("check command %s: %w", argv[0], err)
	default:
		return nil
	}
	if line != "" {
		return fmt.Errorf("%w: %s", err, line)
	}
	return err
}

// checkTCP: healthy when addr accepts a connection.
func checkTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("tcp %s: %s", addr, cause(ctx, err))
	}
	c.Close()
	return nil
}

// checkHTTP: healthy when u answers a GET with 2xx or 3xx.
func checkHTTP(ctx context.Context, c *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("http %s: %w", u, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("http %s: %s", u, cause(ctx, err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("http %s: answered %s", u, resp.Status)
	}
	return nil
}

// cause is the heart of a network error: "connection refused" rather than
// "dial tcp 127.0.0.1:8080: connect: connection refused".
func cause(ctx context.Context, err error) string {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return errno.Error()
	case ctx.Err() != nil:
		return "no answer within the monitor timeout"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err.Error()
	}
	return err.Error()
}
