package cluster

// Trust: the cluster's authority, join secret and API tokens, kept in the
// reserved subtree Cluster/Security of the hive, and the node's own
// certificate issued from them.

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// SecurityKey is the subtree that holds the cluster's secrets. The API
// never serves it; it travels in backups of the Cluster Database (protect
// backup sets accordingly: they are 0600 and can be encrypted).
const SecurityKey = reserved.SecurityKey

const tokensKey = reserved.TokensKey

// Files the creating node writes its secrets to (0600).
const (
	JoinTokenFile  = "join-token"
	AdminTokenFile = "admin-token"
)

// Errors of trust callers branch on.
var (
	ErrNoAuthority  = reserved.ErrNoAuthority
	ErrUnknownToken = errors.New("unknown or revoked token")
	ErrTokenExists  = errors.New("a token of that name exists")
)

// IsSecret reports whether a key path lies in the subtree of secrets.
func IsSecret(path string) bool { return reserved.IsSecret(path) }

// Credentials is the node's TLS credentials.
func (s *Service) Credentials() *security.Store { return s.creds }

// trustOps records a new cluster's authority, join secret and first
// token.
func trustOps(ca *security.CA, joinSecret, adminToken string) ([]hive.Op, error) {
	return reserved.TrustOps(ca, joinSecret, adminToken)
}

func tokenOps(name, token string, roles []security.Role) []hive.Op {
	return reserved.TokenOps(name, token, roles)
}

// Authority reads the cluster's authority and join secret from this
// node's hive.
func (s *Service) Authority() (*security.CA, string, error) {
	cert, key, secret, err := reserved.Authority(s.hive)
	if err != nil {
		return nil, "", err
	}
	ca, err := security.ParseCA(cert, key)
	if err != nil {
		return nil, "", err
	}
	return ca, secret, nil
}

// hosts are the names a node certificate carries: the node's name and
// the hosts of its advertised addresses.
func (s *Service) hosts() []string {
	out := []string{s.Identity().NodeName}
	for _, a := range []string{s.cfg.APIAddr, s.raftAdvertise()} {
		if h, _, err := net.SplitHostPort(a); err == nil {
			out = append(out, h)
		}
	}
	return out
}

// ensureCert gives the node a certificate of the authority its hive holds,
// when it has none of it: after a restore onto a wiped node, or a restore
// of another cluster's backup.
func (s *Service) ensureCert() error {
	ca, _, err := s.Authority()
	if errors.Is(err, ErrNoAuthority) {
		return nil
	}
	if err != nil {
		return err
	}
	id := s.Identity()
	if s.creds.Valid(ca.Cert.Raw, id.NodeID) {
		return nil
	}
	der, err := ca.IssueNode(s.creds.PublicKey(), id.NodeID, id.NodeName, s.hosts())
	if err != nil {
		return err
	}
	if err := s.creds.Install(ca.Cert.Raw, der); err != nil {
		return err
	}
	s.log.Info("issued this node's certificate from the cluster's authority", "node", id.NodeName)
	return nil
}

// IssueCert signs a certificate for a joining node from the authority.
func (s *Service) IssueCert(m Member, pubDER []byte) (caDER, certDER []byte, err error) {
	if err := checkNewMember(m); err != nil {
		return nil, nil, fmt.Errorf("issue certificate: %w", err)
	}
	ca, _, err := s.Authority()
	if err != nil {
		return nil, nil, err
	}
	pub, err := parsePublicKey(pubDER)
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate for %s: %w", m.Name, err)
	}
	var hosts []string
	for _, a := range []string{m.APIAddr, m.RaftAddr} {
		if h, _, err := net.SplitHostPort(a); err == nil {
			hosts = append(hosts, h)
		}
	}
	der, err := ca.IssueNode(pub, m.ID, m.Name, append(hosts, m.Name))
	return ca.Cert.Raw, der, err
}

// IsMember reports whether nodeID is recorded as a member and not evicted.
func (s *Service) IsMember(nodeID string) bool {
	if nodeID == "" || s.IsEvicted(nodeID) {
		return false
	}
	_, err := s.hive.Get(nodePath(nodeID))
	return err == nil
}

// IsEvicted reports whether nodeID was evicted from the cluster.
func (s *Service) IsEvicted(nodeID string) bool {
	_, err := s.hive.Get(evictedPath(nodeID))
	return err == nil
}

// CheckJoinSecret reports whether secret is the cluster's join secret.
func (s *Service) CheckJoinSecret(secret string) bool {
	_, want, err := s.Authority()
	return err == nil && want != "" && security.SecretsEqual(secret, want)
}

// Token is a recorded API token (never the token itself).
type Token = wire.Token

// Authenticate returns the token recorded for a bearer token.
func (s *Service) Authenticate(token string) (Token, error) {
	k, err := s.hive.Get(tokensKey + "/" + security.TokenID(token))
	if errors.Is(err, hive.ErrKeyNotFound) {
		return Token{}, ErrUnknownToken
	}
	if err != nil {
		return Token{}, fmt.Errorf("check token: %w", err)
	}
	return tokenOf(k), nil
}

func tokenOf(k hive.Key) Token { return reserved.Token(k) }

// Tokens lists the recorded tokens.
func (s *Service) Tokens() ([]Token, error) {
	var out []Token
	err := s.eachToken(func(_ string, t Token) { out = append(out, t) })
	return out, err
}

// eachToken calls f with each recorded token and its id.
func (s *Service) eachToken(f func(id string, t Token)) error {
	return s.hive.View(func(r *hive.Reader) error { return reserved.EachToken(r, f) })
}

func (s *Service) tokenIDByName(name string) (string, error) {
	var found string
	err := s.eachToken(func(id string, t Token) {
		if strings.EqualFold(t.Name, name) {
			found = id
		}
	})
	return found, err
}

// CreateToken records a new token named name with roles and returns it.
// Leader only.
func (s *Service) CreateToken(ctx context.Context, name string, roles []security.Role) (string, error) {
	if err := validateName("token", name); err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	if _, err := s.leaderRaft(); err != nil {
		return "", err
	}
	if id, err := s.tokenIDByName(name); err != nil {
		return "", err
	} else if id != "" {
		return "", fmt.Errorf("create token %q: %w", name, ErrTokenExists)
	}
	token, err := security.NewSecret()
	if err != nil {
		return "", err
	}
	if _, err := s.applySystem(ctx, hive.Txn{Ops: tokenOps(name, token, roles)}); err != nil {
		return "", fmt.Errorf("create token %q: %w", name, err)
	}
	return token, nil
}

// RevokeToken deletes the token named name. Leader only.
func (s *Service) RevokeToken(ctx context.Context, name string) error {
	if _, err := s.leaderRaft(); err != nil {
		return err
	}
	id, err := s.tokenIDByName(name)
	if err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("revoke token %q: %w", name, ErrUnknownToken)
	}
	if _, err := s.applySystem(ctx, hive.Txn{Ops: []hive.Op{hive.DeleteKey(tokensKey + "/" + id)}}); err != nil {
		return fmt.Errorf("revoke token %q: %w", name, err)
	}
	return nil
}

// writeSecretFile keeps a secret the creating node made for its operator.
func writeSecretFile(dataDir, name, secret string) error {
	if err := fsutil.WriteFileAtomic(filepath.Join(dataDir, name), strings.NewReader(secret+"\n")); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return fsutil.SyncDir(dataDir)
}

// ReadSecretFile reads a secret written by writeSecretFile (or by hand).
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func parsePublicKey(der []byte) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	return pub, nil
}

// RotateJoinSecret replaces the join secret by a new random one and
// returns it. Leader only. The creating node's DATA_DIR/join-token is left
// as it was: it names the token the cluster was created with.
func (s *Service) RotateJoinSecret(ctx context.Context) (string, error) {
	if _, err := s.leaderRaft(); err != nil {
		return "", err
	}
	secret, err := security.NewSecret()
	if err != nil {
		return "", err
	}
	if _, err := s.applySystem(ctx, hive.Txn{Ops: []hive.Op{hive.SetValue(SecurityKey, hive.StringValue("JoinSecret", secret))}}); err != nil {
		return "", fmt.Errorf("rotate the join token: %w", err)
	}
	return secret, nil
}
