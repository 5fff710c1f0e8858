package shadow

import (
	"context"
	"fmt"
)

// Hold is how a coordinator notices a requester that is gone: while its
// session is open, the requester holds one long call (an HTTP request
// whose context ends when the requester's connection closes). Hold blocks
// until the session ends, and returns nil; when ctx ends first, the
// requester is taken as gone and the session is aborted with
// ErrRequesterGone as its cause, at once rather than after the session
// timeout (which still ends the sessions of requesters that vanish without
// closing their connections, behind a network cut). Requesters that do not
// hold are served as before.
func (c *Coordinator) Hold(ctx context.Context, kind, id string) error {
	c.mu.Lock()
	s := c.active
	c.mu.Unlock()
	if s == nil || s.id != id || s.kind != kind {
		return fmt.Errorf("%w: no %s %s in progress", ErrSessionEnded, kind, id)
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil
	}
	s.c.cfg.Log.Warn("requester is gone (its held connection closed): aborting", "session", s.id, "kind", s.kind)
	s.cause = fmt.Errorf("%w: its held connection closed", ErrRequesterGone)
	return s.abortLocked(context.Background())
}
