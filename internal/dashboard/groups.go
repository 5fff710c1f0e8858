package dashboard

import (
	"net/http"
	"time"
)

// Groups are the resource groups as the answering node could learn them.
// Only the leader hears what each owner reports of its resources: when it
// could not be asked, Leader is empty, Note says why, and the groups are
// the answering node's own records of them, without their resources.
type Groups struct {
	AnsweredBy string  `json:"answered_by"`
	Leader     string  `json:"leader,omitempty"`
	Note       string  `json:"note,omitempty"`
	Groups     []Group `json:"groups"`
}

// Group is one group's placement and what its owner reports.
type Group struct {
	Name   string `json:"name"`
	Wanted string `json:"wanted"` // online or offline
	State  string `json:"state"`  // Online, Pending, Offline, Failed
	Reason string `json:"reason,omitempty"`
	// Owner runs the group (or stops it); Next is where it moves.
	Owner string `json:"owner,omitempty"`
	Next  string `json:"next,omitempty"`
	// OwnerReport is what the owner last said of the group ("" when it
	// has not yet, or when the leader was not asked).
	OwnerReport       string     `json:"owner_report,omitempty"`
	Resources         []Resource `json:"resources,omitempty"`
	Failovers         int        `json:"failovers"`
	FailoverThreshold int        `json:"failover_threshold"`
	FailoverPeriod    string     `json:"failover_period"`
	Held              string     `json:"held,omitempty"`
	LastFailure       string     `json:"last_failure,omitempty"`
	LastFailureAt     time.Time  `json:"last_failure_at,omitzero"`
}

// Resource is one resource of a group as its owner reports it.
type Resource struct {
	Name          string    `json:"name"`
	State         string    `json:"state"` // Starting, Online, Failed, Stopped
	Restarts      int       `json:"restarts"`
	LastFailure   string    `json:"last_failure,omitempty"`
	LastFailureAt time.Time `json:"last_failure_at,omitzero"`
}

// GroupsPage serves /ui/groups: every group, its state and owner, and its
// resources as the owner reports them.
func (u *UI) GroupsPage(w http.ResponseWriter, r *http.Request) {
	g, err := u.src.Groups(r.Context())
	p := page{Title: "Groups", Nav: "groups", LoggedIn: true, Data: g}
	if err != nil {
		p.Error = err.Error()
	}
	u.render(w, http.StatusOK, "groups", p)
}

// GroupsJSON serves /ui/api/groups, which the groups page's script polls.
func (u *UI) GroupsJSON(w http.ResponseWriter, r *http.Request) {
	g, err := u.src.Groups(r.Context())
	pollJSON(w, g, err)
}
