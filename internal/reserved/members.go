package reserved

import (
	"errors"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// NodesKey holds a record per member, Cluster/Nodes/<id>.
const NodesKey = Root + "/Nodes"

// NodePath is member id's record.
func NodePath(id string) string { return NodesKey + "/" + id }

// EvictedPath marks id as evicted.
func EvictedPath(id string) string { return Root + "/Evicted/" + id }

// NamePath maps a member's name (case-insensitively) to its id.
func NamePath(name string) string { return Root + "/NodeNames/" + strings.ToLower(name) }

// MemberOps write m's record (not Voter, which consensus knows, nor Drain,
// which only a drain sets).
func MemberOps(m wire.Member) []hive.Op {
	var paused uint32
	if m.Paused {
		paused = 1
	}
	p := NodePath(m.ID)
	return []hive.Op{
		hive.SetValue(p, hive.StringValue("Name", m.Name)),
		hive.SetValue(p, hive.StringValue("RaftAddr", m.RaftAddr)),
		hive.SetValue(p, hive.StringValue("APIAddr", m.APIAddr)),
		hive.SetValue(p, hive.Uint32Value("Paused", paused)),
	}
}

// NameOps map m's name to its id.
func NameOps(m wire.Member) []hive.Op {
	return []hive.Op{hive.SetValue(NamePath(m.Name), hive.StringValue("Id", m.ID))}
}

// Member decodes the record k of member id (Voter is left false).
func Member(id string, k hive.Key) wire.Member {
	m := wire.Member{ID: id}
	for _, v := range k.Values {
		switch strings.ToLower(v.Name) {
		case "name":
			m.Name = v.String
		case "raftaddr":
			m.RaftAddr = v.String
		case "apiaddr":
			m.APIAddr = v.String
		case "paused":
			m.Paused = v.Uint32 != 0
		case "drain":
			m.Drain = v.Uint32 != 0
		}
	}
	return m
}

// Members reads every recorded member, in the hive's order of their ids
// (none when the hive records none).
func Members(r Reader) ([]wire.Member, error) {
	nodes, err := r.Get(NodesKey)
	if errors.Is(err, hive.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []wire.Member
	for _, id := range nodes.Subkeys {
		k, err := r.Get(NodePath(id))
		if err != nil {
			return nil, err
		}
		out = append(out, Member(id, k))
	}
	return out, nil
}
