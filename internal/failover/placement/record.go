// Package placement is the leader's half of the resource manager: it grants
// the nodes their leases, collects what they report of the groups they run,
// and decides where each group runs, recording the owner in the hive. It
// never starts or stops anything itself (internal/resmgr does, on each
// node), and it never lets a group run on two nodes at once: a group moves
// off a node only once that node said it stopped it, or once the node's
// lease has expired (a node that cannot renew its lease stops its groups
// before the lease expires: it fences itself).
package placement

import (
	"encoding/json"
	"fmt"
	"time"
)

// Group states, as `group status` shows them.
const (
	StateOnline  = "Online"  // running on its owner, every check passing
	StatePending = "Pending" // being started, stopped or moved
	StateOffline = "Offline" // running nowhere, as wanted or for want of a node
	StateFailed  = "Failed"  // running nowhere after failures (Reason says why)
)

// Record is a group's placement as the leader records it, the JSON of
// Cluster/Roles/Placement/<group> value "State". Epoch is raised by every
// change of Owner or Run: a node's report names the epoch it acted on, so
// the leader never mistakes an old report for an answer to a new order.
type Record struct {
	Epoch uint64 `json:"epoch"`
	// Owner is the node (id) that may run the group; Run says whether it
	// should run it or stop it.
	Owner     string `json:"owner,omitempty"`
	OwnerName string `json:"owner_name,omitempty"`
	Run       bool   `json:"run"`
	// Next is where the group starts once its owner has stopped it (a
	// move in progress).
	Next     string `json:"next,omitempty"`
	NextName string `json:"next_name,omitempty"`
	// Move is an operator's request to move the group: a node id, or
	// MoveAnywhere.
	Move string `json:"move,omitempty"`
	// Held says why the group stays offline until an operator brings it
	// online (the failover threshold was reached).
	Held   string `json:"held,omitempty"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Failovers are the times of the failovers counted against the
	// group's threshold (those within its period).
	Failovers     []time.Time `json:"failovers,omitempty"`
	LastFailure   string      `json:"last_failure,omitempty"`
	LastFailureAt time.Time   `json:"last_failure_at,omitzero"`
	// FailedOn is the node the group last failed on (a resource failing
	// beyond its limit there, not the node being lost): it does not fail
	// back there within its failover period.
	FailedOn string    `json:"failed_on,omitempty"`
	Changed  time.Time `json:"changed,omitzero"`
}

// MoveAnywhere asks for a move to the best other node.
const MoveAnywhere = "*"

// Encode is the record's stored text.
func (r Record) Encode() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// ParseRecord reads a stored record ("" is a group never placed).
func ParseRecord(s string) (Record, error) {
	if s == "" {
		return Record{State: StateOffline}, nil
	}
	var r Record
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Record{}, fmt.Errorf("read a group's placement: %w", err)
	}
	return r, nil
}

// What a node reports of a group it was given (GroupReport.State).
const (
	RunStarting   = "Starting"
	RunOnline     = "Online"
	RunStopping   = "Stopping"
	RunStopped    = "Stopped" // nothing of the group runs here, and will not at this epoch
	RunFailed     = "Failed"  // it failed beyond its restart limit and was stopped
	RunStopFailed = "StopFailed"
)

// ResourceReport is one resource's state on a node.
type ResourceReport struct {
	Name          string    `json:"name"`
	State         string    `json:"state"` // Starting, Online, Failed, Stopped
	Restarts      int       `json:"restarts"`
	Since         time.Time `json:"since,omitzero"`
	LastFailure   string    `json:"last_failure,omitempty"`
	LastFailureAt time.Time `json:"last_failure_at,omitzero"`
}

// GroupReport is what a node says of a group whose placement names it.
type GroupReport struct {
	Group     string           `json:"group"`
	Epoch     uint64           `json:"epoch"`
	State     string           `json:"state"`
	Error     string           `json:"error,omitempty"`
	Resources []ResourceReport `json:"resources,omitempty"`
}

// NodeReport comes with every lease renewal.
type NodeReport struct {
	Node string `json:"node"`
	// Unavailable maps each resource type this node cannot run to why.
	Unavailable map[string]string `json:"unavailable,omitempty"`
	Groups      []GroupReport     `json:"groups,omitempty"`
	// Release: the node is stopping, has stopped every group, and starts
	// nothing more; its lease ends now.
	Release bool `json:"release,omitempty"`
}

// Grant answers a renewal: the lease holds for Lease from when the node
// sent its request, less Margin (the node stops its groups by then), and
// the node acts on placements only once its hive has applied Index.
type Grant struct {
	Index  uint64        `json:"index"`
	Lease  time.Duration `json:"lease"`
	Margin time.Duration `json:"margin"`
	Renew  time.Duration `json:"renew"`
}
