// Package resources runs resources on this node: how a node starts,
// monitors and stops a resource of each type (exec: a supervised command;
// systemd: a unit). The resource manager calls it once it has decided that
// a resource runs here; this package never decides placement, never talks
// to other nodes, and never starts a resource on its own.
//
// Its one guarantee beyond doing what it is told: a resource it started
// does not outlive the agent that started it (see ShimMain), so a resource
// moved to another node after this agent died never runs twice at once.
package resources

import (
	"context"
	"errors"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

// Runner runs resources of one type on this node.
type Runner interface {
	// Type is the type's name ("exec", "systemd").
	Type() string
	// Available is nil when this node can run the type; else it wraps
	// roles.ErrUnavailable with a message saying what is missing.
	Available() error
	// Start starts r and returns once it is started (not necessarily
	// healthy yet). env are extra environment variables (KEY=VALUE) for
	// the exec type.
	Start(ctx context.Context, r roles.Resource, env []string) (Instance, error)
}

// Instance is one started resource.
type Instance interface {
	// Monitor checks it once; ctx carries the monitor timeout. nil:
	// healthy. The error says what failed ("exited with status 3", "tcp
	// 127.0.0.1:8080: connection refused").
	Monitor(ctx context.Context) error
	// Exited is closed when the resource ended on its own (exec: its
	// process exited and nothing of it is left), so the manager need not
	// wait for the next monitor. It does not close for an end that Stop
	// caused, and may never close for types that cannot tell.
	Exited() <-chan struct{}
	// Stop stops it and returns once it is gone: the graceful way first,
	// forced once grace has passed or ctx ends. Safe to call twice and
	// after Exited. An error means it may still run.
	Stop(ctx context.Context, grace time.Duration) error
}

// ErrExited: Monitor found the resource no longer running (the message
// says how it ended).
var ErrExited = errors.New("resource exited")

// exitError is an ErrExited whose message is only how it ended.
type exitError struct{ msg string }

func (e exitError) Error() string        { return e.msg }
func (e exitError) Is(target error) bool { return target == ErrExited }

// Runners returns the runners of the types that ship: exec (with cfg) and
// systemd (on the system bus).
func Runners(cfg ExecConfig) map[string]Runner {
	return map[string]Runner{
		"exec":    NewExec(cfg),
		"systemd": &Systemd{Root: DefaultSystemdRoot, StateDir: cfg.StateDir},
	}
}
