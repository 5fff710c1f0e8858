package placement

import (
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

// GroupStatus is a group as `group status` shows it.
type GroupStatus struct {
	Name   string `json:"name"`
	Wanted string `json:"wanted"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Owner is the node that runs it (or stops it); Next where it moves.
	Owner string `json:"owner,omitempty"`
	Next  string `json:"next,omitempty"`
	Epoch uint64 `json:"epoch"`
	// OwnerReport is what the owner last said of the group at this epoch
	// ("" when it has not yet).
	OwnerReport string           `json:"owner_report,omitempty"`
	Resources   []ResourceReport `json:"resources,omitempty"`
	// Failovers in the current period, against the threshold.
	Failovers         int            `json:"failovers"`
	FailoverThreshold int            `json:"failover_threshold"`
	FailoverPeriod    roles.Duration `json:"failover_period"`
	Held              string         `json:"held,omitempty"`
	LastFailure       string         `json:"last_failure,omitempty"`
	LastFailureAt     time.Time      `json:"last_failure_at,omitzero"`
	Changed           time.Time      `json:"changed,omitzero"`
	// OwnerUnreachable: the owner has stopped renewing its lease (it may
	// be dead); the group stays on it until OwnerLeaseEnds, then fails
	// over. OwnerLastHeard is its last renewal to this leader.
	OwnerUnreachable bool      `json:"owner_unreachable,omitempty"`
	OwnerLeaseEnds   time.Time `json:"owner_lease_ends,omitzero"`
	OwnerLastHeard   time.Time `json:"owner_last_heard,omitzero"`
}
