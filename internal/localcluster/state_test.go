package localcluster

import (
	"fmt"
	"sync"
	"testing"
)

// Processes that each loaded the state file and then start or stop their
// own node, at the same time, all have their process ids recorded: none
// writes back the stale records of another's node.
func TestConcurrentSavesKeepEveryNodesProcess(t *testing.T) {
	dir := t.TempDir()
	first := &Cluster{Dir: dir, Binary: "/bin/true"}
	var nodes []Node
	for i := range 6 {
		nodes = append(nodes, Node{Name: fmt.Sprintf("node%d", i+1)})
	}
	if err := first.update(func(d *Cluster) { d.Nodes = nodes }); err != nil {
		t.Fatal(err)
	}
	// Each "process" has its own view, loaded before any other saved.
	views := make([]*Cluster, len(nodes))
	for i := range views {
		c, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		views[i] = c
	}
	const rounds = 50
	var wg sync.WaitGroup
	for i, c := range views {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 1; r <= rounds; r++ {
				if err := c.setPID(&c.Nodes[i], 1000*(i+1)+r); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != len(nodes) {
		t.Fatalf("%d nodes recorded, want %d", len(got.Nodes), len(nodes))
	}
	for i, nd := range got.Nodes {
		if want := 1000*(i+1) + rounds; nd.PID != want {
			t.Errorf("%s: pid %d recorded, want %d (its process's last)", nd.Name, nd.PID, want)
		}
	}
	// A view learns the others' records when it saves.
	if err := views[0].setPID(&views[0].Nodes[0], 7); err != nil {
		t.Fatal(err)
	}
	if p := views[0].Nodes[5].PID; p != 6000+rounds {
		t.Errorf("view 0 sees node6's pid %d after saving, want %d", p, 6000+rounds)
	}
}

// A node added by one process is kept when another saves its own node.
func TestAddedNodeIsKeptByOtherSavers(t *testing.T) {
	dir := t.TempDir()
	a := &Cluster{Dir: dir}
	if err := a.update(func(d *Cluster) { d.Nodes = []Node{{Name: "node1"}} }); err != nil {
		t.Fatal(err)
	}
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	a.Nodes = append(a.Nodes, Node{Name: "node2"})
	if err := a.setPID(&a.Nodes[1], 22); err != nil {
		t.Fatal(err)
	}
	if err := b.setPID(&b.Nodes[0], 11); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != 2 || got.Nodes[0].PID != 11 || got.Nodes[1].PID != 22 {
		t.Fatalf("state %+v, want node1 pid 11 and node2 pid 22", got.Nodes)
	}
}
