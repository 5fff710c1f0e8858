package roles

// ResourceInfo is a recorded resource, the group holding it, and whether
// the node that answered can run its type.
type ResourceInfo struct {
	Resource
	Group string `json:"group,omitempty"`
	// Unavailable says why the answering node cannot run the resource's
	// type ("" when it can).
	Unavailable string `json:"unavailable_here,omitempty"`
}
