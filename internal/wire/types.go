package wire

// NodeState is a member's state as the cluster sees it.
type NodeState string

// The node states.
const (
	NodeUp      NodeState = "Up"
	NodeDown    NodeState = "Down"
	NodeJoining NodeState = "Joining"
	NodePaused  NodeState = "Paused"
)

// NodeInfo is one member in GetClusterInformation.
type NodeInfo struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	State    NodeState `json:"state"`
	APIAddr  string    `json:"api_addr"`
	RaftAddr string    `json:"raft_addr"`
	Leader   bool      `json:"leader"`
	Paused   bool      `json:"paused"`
	Voter    bool      `json:"voter"`
	// Applied is the last consensus index the node applied, when it answered.
	Applied uint64 `json:"applied_index"`
	// Seq is the node's hive sequence number, when it answered.
	Seq uint64 `json:"seq"`
	// Why says what made the state, for Down and Joining.
	Why string `json:"why,omitempty"`
	// RestorePending names the backup of a restore staged for the node's
	// next start.
	RestorePending string `json:"restore_pending,omitempty"`
}

// ClusterInfo is GetClusterInformation's answer.
type ClusterInfo struct {
	Name       string     `json:"name"`
	ID         string     `json:"id"`
	Generation uint64     `json:"generation"`
	Version    string     `json:"version"`
	Leader     string     `json:"leader"`
	LeaderID   string     `json:"leader_id"`
	Commit     uint64     `json:"commit_index"`
	Seq        uint64     `json:"seq"`
	Nodes      []NodeInfo `json:"nodes"`
	// AnsweredBy is the node that computed this answer.
	AnsweredBy string `json:"answered_by"`
}

// LocalStatus is a node's own view (GET /v1/local/status), served to
// probes and clients.
type LocalStatus struct {
	NodeID      string `json:"node_id"`
	NodeName    string `json:"node_name"`
	ClusterID   string `json:"cluster_id,omitempty"`
	ClusterName string `json:"cluster_name,omitempty"`
	Generation  uint64 `json:"generation"`
	// RaftState is Leader, Follower, Candidate or Shutdown; empty when the
	// node is in no cluster.
	RaftState string `json:"raft_state,omitempty"`
	LeaderID  string `json:"leader_id,omitempty"`
	Applied   uint64 `json:"applied_index"`
	Commit    uint64 `json:"commit_index"`
	LastIndex uint64 `json:"last_index"`
	Seq       uint64 `json:"seq"`
	Voter     bool   `json:"voter"`
	Evicted   bool   `json:"evicted,omitempty"`
	APIAddr   string `json:"api_addr"`
	RaftAddr  string `json:"raft_addr,omitempty"`
	// RestorePending is the backup id of a restore staged for the next start.
	RestorePending string `json:"restore_pending,omitempty"`
}

// JoinInfo is what a joining node learns from a member before it joins
// (GET /v1/join-info).
type JoinInfo struct {
	ClusterID   string `json:"cluster_id"`
	ClusterName string `json:"cluster_name"`
	Generation  uint64 `json:"generation"`
}

// Member is a node of the cluster as recorded in the hive, under
// Cluster/Nodes/<id>; a joining node sends its own (POST /v1/members).
type Member struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Paused   bool   `json:"paused"`
	// Drain: paused, with its groups moved away.
	Drain bool `json:"drain,omitempty"`
	// Voter is whether the node is in the consensus configuration the
	// answering node knows; a recorded node that is not yet is still
	// joining.
	Voter bool `json:"voter"`
}

// TxnResult answers POST /v1/txn.
type TxnResult struct {
	Seq uint64 `json:"seq"`
}

// WatchResult answers GET /v1/watch/...: the events after the asked
// sequence number, empty when the wait ended first; Seq is the hive's
// sequence number when it answered.
type WatchResult struct {
	Events []Event `json:"events"`
	Seq    uint64  `json:"seq"`
}

// ReadIndexResult answers GET /v1/read-index.
type ReadIndexResult struct {
	Index uint64 `json:"index"`
}

// ImportResult answers POST /v1/import.
type ImportResult struct {
	Seq  uint64 `json:"seq"`
	Keys int    `json:"keys"`
	Ops  int    `json:"ops"`
	// SkippedReserved counts the operations on the cluster's own subtree,
	// which an import leaves alone.
	SkippedReserved int `json:"skipped_reserved"`
}

// Error is every error answer's body. Code is one of the Code* constants.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

// Error codes, stable for scripts and the client.
const (
	CodeInvalid         = "invalid"
	CodeKeyNotFound     = "key-not-found"
	CodeValueNotFound   = "value-not-found"
	CodeNodeNotFound    = "node-not-found"
	CodePrecondition    = "precondition-failed"
	CodeConflict        = "conflict"
	CodeNotLeader       = "not-leader"
	CodeUnavailable     = "unavailable"
	CodeNotConfigured   = "not-configured"
	CodeEvicted         = "evicted"
	CodeUncertain       = "uncertain"
	CodeCompacted       = "compacted"
	CodeInternal        = "internal"
	CodeUnauthenticated = "unauthenticated"
	CodeForbidden       = "forbidden"
	CodeNotFound        = "not-found"
)

// Codes of shadow-copy errors.
const (
	CodeBusy          = "busy"
	CodeNoSession     = "no-session"
	CodeOutOfSequence = "out-of-sequence"
	CodeWriterFailed  = "writer-failed"
	CodeFreezeTimeout = "freeze-timeout"
)

// ForwardedHeader marks a request a node forwarded to the leader, so it is
// never forwarded twice.
const ForwardedHeader = "X-Clusterkeep-Forwarded"

// JoinScheme is the Authorization scheme of a request carrying the join
// secret: "Authorization: Join SECRET".
const JoinScheme = "Join"

// JoinHello opens a join: the joiner's random nonce.
type JoinHello struct {
	Nonce []byte `json:"nonce"`
}

// JoinWelcome answers JoinHello: the cluster to join, its authority, and
// the proof that the member knows the join secret (security.JoinHelloMAC).
type JoinWelcome struct {
	Info JoinInfo `json:"info"`
	CA   []byte   `json:"ca"`
	MAC  []byte   `json:"mac"`
}

// CertRequest asks for a joining node's certificate: the member it will
// be and its public key (PKIX DER).
type CertRequest struct {
	Member    Member `json:"member"`
	PublicKey []byte `json:"public_key"`
}

// Certificate is an issued node certificate and the authority (DER).
type Certificate struct {
	CA   []byte `json:"ca"`
	Cert []byte `json:"cert"`
}

// Role is what an API token may do (see internal/security for each).
type Role string

// TokenRequest asks for a new API token.
type TokenRequest struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// NewToken is a token just made: the only time the token itself is shown.
type NewToken struct {
	Name  string `json:"name"`
	Roles []Role `json:"roles"`
	Token string `json:"token"`
}

// Token is a recorded API token (never the token itself).
type Token struct {
	Name    string `json:"name"`
	Roles   []Role `json:"roles"`
	Created string `json:"created"`
}

// MoveRequest is the body of POST /v1/groups/{name}/move: the node to move
// to ("" for the best other node).
type MoveRequest struct {
	Node string `json:"node,omitempty"`
}

// Put modes of PUT /v1/resources/{name} and PUT /v1/groups/{name}
// (query parameter "mode"): create refuses an existing one, replace a
// missing one; without it, either.
const (
	PutCreate  = "create"
	PutReplace = "replace"
)

// ComponentRequest selects a component (POST .../components and .../select).
type ComponentRequest struct {
	All           bool   `json:"all,omitempty"`
	WriterID      string `json:"writer_id,omitempty"`
	LogicalPath   string `json:"logical_path,omitempty"`
	Name          string `json:"name,omitempty"`
	Selected      bool   `json:"selected,omitempty"`
	Authoritative bool   `json:"authoritative,omitempty"`
	RestoreTarget string `json:"restore_target,omitempty"`
}
