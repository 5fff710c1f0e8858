package schedule

import "time"

// Status is the schedule as the cluster API shows it: its configuration,
// its state and its next run.
type Status struct {
	Config  Config    `json:"config"`
	State   State     `json:"state"`
	NextRun time.Time `json:"next_run,omitzero"`
	// RunNow is when a run was last asked for.
	RunNow string `json:"run_now,omitempty"`
	// Nodes names the members by id (runs record the id of their node).
	Nodes map[string]string `json:"nodes,omitempty"`
}
