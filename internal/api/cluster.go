package api

import (
	"context"

	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/noderegistry"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// The server's seam to the cluster service: the few methods each part of
// the API uses, as small interfaces (*cluster.Service is all of them), so
// a handler's dependencies read off its interface and a test can stand in
// for a part of the service.

// Node is this node's own view: who it is, its state, its database and
// credentials, and whether it leads.
type Node interface {
	Identity() noderegistry.Identity
	Status() wire.LocalStatus
	Hive() *hive.Hive
	Credentials() *security.Store
	ReadyTerm() uint64
	LeaderAPI() (string, error)
}

// Consensus is reading and writing through consensus.
type Consensus interface {
	ReadIndex(ctx context.Context) (uint64, error)
	WaitApplied(ctx context.Context, idx uint64) error
	Apply(ctx context.Context, t hive.Txn) (uint64, error)
}

// Membership is the members and their changes.
type Membership interface {
	Members() ([]wire.Member, error)
	Member(idOrName string) (wire.Member, error)
	IsMember(nodeID string) bool
	IsEvicted(nodeID string) bool
	JoinInfo() (wire.JoinInfo, error)
	AddMember(ctx context.Context, m wire.Member) error
	RemoveMember(ctx context.Context, nodeID string) error
	SetPaused(ctx context.Context, nodeID string, paused, drain bool) error
	Forget(reason string) error
}

// Trust is the authority, the join secret and the API tokens.
type Trust interface {
	Authenticate(token string) (wire.Token, error)
	Authority() (*security.CA, string, error)
	CheckJoinSecret(secret string) bool
	IssueCert(m wire.Member, pubDER []byte) (caDER, certDER []byte, err error)
	Tokens() ([]wire.Token, error)
	CreateToken(ctx context.Context, name string, roles []security.Role) (string, error)
	RevokeToken(ctx context.Context, name string) error
	RotateJoinSecret(ctx context.Context) (string, error)
}

// Roles is the resources and groups and the groups' placements.
type Roles interface {
	Roles() (reserved.Roles, error)
	PutResource(ctx context.Context, r roles.Resource, mode cluster.PutMode) error
	RemoveResource(ctx context.Context, name string) error
	PutGroup(ctx context.Context, g roles.Group, mode cluster.PutMode) error
	RemoveGroup(ctx context.Context, name string) error
	Placements() (map[string]string, error)
	Placement(group string) (string, error)
	SwapPlacement(ctx context.Context, group, old, next string) error
}

// Schedule is the backup schedule's record.
type Schedule interface {
	ScheduleRecord() (config, state, runNow string, err error)
	SetSchedule(ctx context.Context, config string) error
	AskScheduledRun(ctx context.Context, t string) error
}

// Cluster is everything the server asks of the cluster service.
type Cluster interface {
	Node
	Consensus
	Membership
	Trust
	Roles
	Schedule
}

var _ Cluster = (*cluster.Service)(nil)
