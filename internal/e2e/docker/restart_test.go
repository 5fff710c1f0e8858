package docker

import (
	"testing"
	"time"
)

// Every container is restarted in turn, each in another way, while two
// clients on the host keep writing: no acknowledged write is lost and the
// cluster ends with three Up members.
func TestRestartEveryContainerWhileWriting(t *testing.T) {
	c := newCluster(t, "restart")
	w := c.startWriters("Restart", 2)
	w.waitMore("writes before the restarts", 50)
	ways := []struct {
		what string
		do   func(n *node)
	}{
		{"docker restart", c.restart},
		{"docker stop, docker start", func(n *node) { c.stop(n); c.start(n) }},
		{"docker kill (SIGKILL), docker start", func(n *node) { c.kill(n); c.start(n) }},
	}
	for i, way := range ways {
		n := c.nodes[i]
		began := time.Now()
		way.do(n)
		info := c.waitAllUp()
		t.Logf("%s: %s, three Up again after %v (leader %s)", n.name, way.what, time.Since(began).Round(time.Millisecond), info.Leader)
		w.waitMore("writes after restarting "+n.name, 50)
	}
	acks := w.stop()
	c.checkAcked("Restart", acks)
	c.waitAllUp()
}
