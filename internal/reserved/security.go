package reserved

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// SecurityKey is the subtree that holds the cluster's secrets: the
// authority ("CACert", "CAKey"), the join secret ("JoinSecret") and the
// tokens. The API never serves it; it travels in backups of the Cluster
// Database (protect backup sets accordingly: they are 0600 and can be
// encrypted).
const SecurityKey = Root + "/Security"

// TokensKey holds a record per token, by the token's id (never the token).
const TokensKey = SecurityKey + "/Tokens"

// TokenPath is the record of the token whose id is id.
func TokenPath(id string) string { return TokensKey + "/" + id }

// ErrNoAuthority: the hive holds no certificate authority.
var ErrNoAuthority = errors.New("the cluster database holds no certificate authority")

var securityPath, _ = hive.ParsePath(SecurityKey)

// IsSecret reports whether a key path lies in the subtree of secrets.
func IsSecret(path string) bool {
	p, err := hive.ParsePath(path)
	if err != nil {
		return false
	}
	// The hive's own matching of names decides, not another folding:
	// strings.EqualFold and the hive disagree on some letters (U+0130).
	return securityPath.Under(p)
}

// TrustOps record a new cluster's authority, join secret and first token
// (named admin, operator and backup).
func TrustOps(ca *security.CA, joinSecret, adminToken string) ([]hive.Op, error) {
	key, err := ca.KeyDER()
	if err != nil {
		return nil, err
	}
	ops := []hive.Op{
		hive.SetValue(SecurityKey, hive.BinaryValue("CACert", ca.Cert.Raw)),
		hive.SetValue(SecurityKey, hive.BinaryValue("CAKey", key)),
		hive.SetValue(SecurityKey, hive.StringValue("JoinSecret", joinSecret)),
	}
	return append(ops, TokenOps("admin", adminToken, []security.Role{security.RoleOperator, security.RoleBackup})...), nil
}

// TokenOps record a token by its id.
func TokenOps(name, token string, roles []security.Role) []hive.Op {
	p := TokenPath(security.TokenID(token))
	rs := make([]string, len(roles))
	for i, r := range roles {
		rs[i] = string(r)
	}
	return []hive.Op{
		hive.SetValue(p, hive.StringValue("Name", name)),
		hive.SetValue(p, hive.MultiStringValue("Roles", rs)),
		hive.SetValue(p, hive.StringValue("Created", time.Now().UTC().Format(time.RFC3339))),
	}
}

// Authority reads the authority's certificate and key (DER) and the join
// secret; ErrNoAuthority when the hive holds none.
func Authority(r Reader) (cert, key []byte, joinSecret string, err error) {
	k, err := r.Get(SecurityKey)
	if errors.Is(err, hive.ErrKeyNotFound) {
		return nil, nil, "", ErrNoAuthority
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("read cluster authority: %w", err)
	}
	for _, v := range k.Values {
		switch strings.ToLower(v.Name) {
		case "cacert":
			cert = v.Binary
		case "cakey":
			key = v.Binary
		case "joinsecret":
			joinSecret = v.String
		}
	}
	if cert == nil || key == nil {
		return nil, nil, "", ErrNoAuthority
	}
	return cert, key, joinSecret, nil
}

// Token decodes a token's record.
func Token(k hive.Key) wire.Token {
	var t wire.Token
	for _, v := range k.Values {
		switch strings.ToLower(v.Name) {
		case "name":
			t.Name = v.String
		case "roles":
			for _, r := range v.Strings {
				t.Roles = append(t.Roles, security.Role(r))
			}
		case "created":
			t.Created = v.String
		}
	}
	return t
}

// EachToken calls f with each recorded token and its id.
func EachToken(r Reader, f func(id string, t wire.Token)) error {
	k, err := r.Get(TokensKey)
	if errors.Is(err, hive.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, id := range k.Subkeys {
		t, err := r.Get(TokenPath(id))
		if err != nil {
			return err
		}
		f(id, Token(t))
	}
	return nil
}
