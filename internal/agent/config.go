package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/writers"
)

// Config is an agent's configuration, from flags or a JSON file whose keys
// are the json names below.
type Config struct {
	DataDir string `json:"data_dir"`
	Name    string `json:"name"`
	// API is the address the cluster API listens on; APIAdvertise, when
	// set, the one recorded for clients and peers (default: API).
	API          string `json:"api"`
	APIAdvertise string `json:"api_advertise,omitempty"`
	// Raft is the peer address; RaftAdvertise as for the API.
	Raft          string `json:"raft"`
	RaftAdvertise string `json:"raft_advertise,omitempty"`
	// Create names a cluster to create when the node is in none.
	Create string `json:"create,omitempty"`
	// Join lists API addresses of members to join when the node is in none.
	Join []string `json:"join,omitempty"`
	// Timing of consensus (Go durations); empty keeps raft's defaults.
	HeartbeatTimeout string `json:"heartbeat_timeout,omitempty"`
	ElectionTimeout  string `json:"election_timeout,omitempty"`
	LeaderLease      string `json:"leader_lease,omitempty"`
	// SnapshotThreshold is how many log entries trigger a raft snapshot.
	SnapshotThreshold uint64 `json:"snapshot_threshold,omitempty"`
	// FreezeWindow bounds how long writers stay frozen in a backup (Go
	// duration, default 60s).
	FreezeWindow string `json:"freeze_window,omitempty"`
	// SessionTimeout aborts a backup or restore whose requester has been
	// silent this long (Go duration, default 60s).
	SessionTimeout string `json:"session_timeout,omitempty"`
	// The group lease (Go durations; see internal/failover/placement): how long a
	// lease holds, how long before its end a node that could not renew it
	// stops its groups, and how often it is renewed. The leader's settings
	// hold for the whole cluster; give every node the same.
	GroupLease       string `json:"group_lease,omitempty"`
	GroupLeaseMargin string `json:"group_lease_margin,omitempty"`
	GroupLeaseRenew  string `json:"group_lease_renew,omitempty"`
	// Writers are the application writers of this node.
	Writers []writers.ExecConfig `json:"writers,omitempty"`

	// JoinToken is the cluster's join secret: a joining node presents it;
	// a creating node makes it the cluster's (default: a new random one).
	// AdminToken is the first API token of a created cluster, with the
	// operator and backup roles (default: a new random one). The creating
	// node writes both to DATA_DIR/join-token and DATA_DIR/admin-token.
	JoinToken  string `json:"join_token,omitempty"`
	AdminToken string `json:"admin_token,omitempty"`
	// CACert and CAKey are PEM files of an authority of the operator's own
	// for a created cluster (default: the cluster makes its own).
	CACert string `json:"ca_cert,omitempty"`
	CAKey  string `json:"ca_key,omitempty"`
	// Socket is the local API socket (default DATA_DIR/api.sock, 0600):
	// whoever can open it may do anything, as root can on the node anyway.
	Socket string `json:"socket,omitempty"`
	// Metrics, when set, is an address where the Prometheus metrics are
	// served over plain HTTP without a token (GET /metrics only), for a
	// scraper on loopback or a private network. The API serves them
	// always, over TLS to the read role.
	Metrics string `json:"metrics,omitempty"`
}

// SocketFile is the local API socket's name in the data directory.
const SocketFile = client.SocketFile

// LoadFile reads a JSON config file, refusing unknown keys.
func LoadFile(path string) (Config, error) {
	var c Config
	f, err := os.Open(path)
	if err != nil {
		return c, fmt.Errorf("read agent config: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("read agent config %s: %w", path, err)
	}
	return c, nil
}

func duration(name, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("agent config: %s %q is not a positive duration", name, s)
	}
	return d, nil
}

// Validate checks the configuration before anything is opened.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("agent config: data_dir (--data-dir) is required")
	case c.API == "":
		return errors.New("agent config: api (--api) is required")
	case c.Raft == "":
		return errors.New("agent config: raft (--raft) is required")
	case c.Create != "" && len(c.Join) > 0:
		return errors.New("agent config: create and join exclude each other")
	}
	addrs := append([]string{c.API, c.Raft}, c.Join...)
	if c.Metrics != "" {
		addrs = append(addrs, c.Metrics)
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("agent config: address %q: %w", a, err)
		}
	}
	for _, d := range [][2]string{{"heartbeat_timeout", c.HeartbeatTimeout}, {"election_timeout", c.ElectionTimeout}, {"leader_lease", c.LeaderLease}, {"freeze_window", c.FreezeWindow}, {"session_timeout", c.SessionTimeout}} {
		if _, err := duration(d[0], d[1]); err != nil {
			return err
		}
	}
	for _, sec := range [][2]string{{"join_token", c.JoinToken}, {"admin_token", c.AdminToken}} {
		if sec[1] != "" {
			if err := security.CheckSecret("agent config: "+sec[0], sec[1]); err != nil {
				return err
			}
		}
	}
	if (c.CACert == "") != (c.CAKey == "") {
		return errors.New("agent config: ca_cert and ca_key (--ca-cert, --ca-key) go together")
	}
	if c.CACert != "" && c.Create == "" {
		return errors.New("agent config: an authority of your own (--ca-cert) is given only when creating a cluster (--create)")
	}
	if _, err := c.leaseConfig(); err != nil {
		return err
	}
	names := map[string]bool{}
	for _, w := range c.Writers {
		if _, err := writers.NewExec(w); err != nil {
			return fmt.Errorf("agent config: %w", err)
		}
		if names[strings.ToLower(w.Name)] || strings.EqualFold(w.Name, writers.ClusterDBName) || strings.EqualFold(w.Name, writers.RegistryName) {
			return fmt.Errorf("agent config: writer name %q used twice", w.Name)
		}
		names[strings.ToLower(w.Name)] = true
	}
	return nil
}

// EnvJoinToken and EnvAdminToken are the environment variables the CLI
// reads the agent's secrets from when no flag gives them.
const (
	EnvJoinToken  = "CLUSTERKEEP_JOIN_TOKEN"
	EnvAdminToken = "CLUSTERKEEP_ADMIN_TOKEN"
	EnvCACert     = "CLUSTERKEEP_CA_CERT"
	EnvCAKey      = "CLUSTERKEEP_CA_KEY"
)

// authority reads the operator's own authority, if one is configured.
func (c Config) authority() (*security.CA, error) {
	if c.CACert == "" {
		return nil, nil
	}
	cert, err := os.ReadFile(c.CACert)
	if err != nil {
		return nil, fmt.Errorf("agent config: ca_cert: %w", err)
	}
	key, err := os.ReadFile(c.CAKey)
	if err != nil {
		return nil, fmt.Errorf("agent config: ca_key: %w", err)
	}
	ca, err := security.ParseCAPEM(cert, key)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	return ca, nil
}
