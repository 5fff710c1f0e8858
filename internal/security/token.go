package security

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// Role is what a caller may do (defined with the wire types, which carry it).
type Role = wire.Role

// The roles of API tokens. Operator and Backup include Read.
const (
	RoleRead     Role = "read"     // read configuration, members, states, writers
	RoleOperator Role = "operator" // change configuration and membership, manage tokens
	RoleBackup   Role = "backup"   // take backups and run restores
)

// Roles lists the token roles in order.
var Roles = []Role{RoleRead, RoleOperator, RoleBackup}

// ErrBadRole: a role name that is not one of Roles.
var ErrBadRole = errors.New("unknown role")

// ParseRoles reads role names ("read", "operator", "backup").
func ParseRoles(names []string) ([]Role, error) {
	var out []Role
	for _, n := range names {
		r := Role(strings.ToLower(strings.TrimSpace(n)))
		if !slices.Contains(Roles, r) {
			return nil, fmt.Errorf("%w %q (want read, operator or backup)", ErrBadRole, n)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no role given (want read, operator or backup)", ErrBadRole)
	}
	return out, nil
}

// Grants reports whether holding roles permits need.
func Grants(roles []Role, need Role) bool {
	for _, r := range roles {
		if r == need || need == RoleRead {
			return true
		}
	}
	return false
}

// tokenPrefix starts every token clusterkeep makes, so a leaked one is
// recognisable.
const tokenPrefix = "ckt_"

// NewSecret returns a new random token or join secret.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make secret: %w", err)
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// MinSecretLen bounds an operator's own token or join secret from below.
const MinSecretLen = 16

// CheckSecret refuses a secret too short to resist guessing, or one with
// characters that do not survive an HTTP header.
func CheckSecret(what, s string) error {
	if len(s) < MinSecretLen {
		return fmt.Errorf("%s is %d characters long: at least %d are needed", what, len(s), MinSecretLen)
	}
	for _, c := range s {
		if c <= ' ' || c > '~' {
			return fmt.Errorf("%s holds a space, control or non-ASCII character", what)
		}
	}
	return nil
}

// TokenID is the name under which a token is recorded: the hex SHA-256 of
// the token. The cluster keeps only this, never the token.
func TokenID(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// JoinMAC proves knowledge of the join secret over the parts given, each
// length-prefixed so no two lists of parts give the same input.
func JoinMAC(secret string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	for _, p := range parts {
		var n [8]byte
		for i := range 8 {
			n[i] = byte(uint64(len(p)) >> (56 - 8*i))
		}
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

// JoinHelloMAC binds a member's answer to a join hello to the joiner's
// nonce, the authority, the member's TLS certificate and the cluster it
// names: the joiner's proof that the member knows the join secret.
func JoinHelloMAC(secret string, nonce, caDER, leafDER []byte, info wire.JoinInfo) []byte {
	return JoinMAC(secret, []byte("clusterkeep join hello"), nonce, caDER, leafDER,
		[]byte(info.ClusterID), []byte(info.ClusterName), fmt.Appendf(nil, "%d", info.Generation))
}

// SecretsEqual compares two secrets in constant time.
func SecretsEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }
