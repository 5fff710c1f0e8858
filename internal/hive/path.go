package hive

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits the hive enforces. They are part of the documented contract.
const (
	// MaxNameLength is the longest key or value name, in characters.
	MaxNameLength = 255
	// MaxDepth is the deepest a key may be nested below the root.
	MaxDepth = 64
	// MaxPathLength is the longest key path, in bytes of UTF-8: the key
	// index stores the whole path, folded, as one bbolt key (at most 32 KiB;
	// folding may lengthen a character by a byte).
	MaxPathLength = 8 << 10
	// MaxValueSize is the largest value's data, in bytes (1 MiB).
	MaxValueSize = 1 << 20
	// MaxTxnOps is the most operations and conditions one transaction may hold.
	MaxTxnOps = 10000
	// MaxTxnBytes bounds the data one transaction carries (16 MiB).
	MaxTxnBytes = 16 << 20
)

// Separator divides the names of a key path: "Resources/Web/Port".
const Separator = "/"

// ReservedKey is the root key the cluster service keeps its own records
// under (nodes, evictions). Client transactions may read it, never change it.
const ReservedKey = "Cluster"

// SecretsKey is the subtree of the reserved one that holds the cluster's
// secrets (its authority's key, the join secret, the tokens' hashes). No
// reader outside the cluster service shows what lies there: the API never
// serves it, and offline readers leave it out or name its entries only.
const SecretsKey = ReservedKey + "/Security"

var secretsPath = MustPath(SecretsKey)

// IsSecret reports whether a key path lies in the subtree of secrets. The
// hive's own matching of names decides, not another folding:
// strings.EqualFold and the hive disagree on some letters (U+0130).
func IsSecret(path string) bool {
	p, err := ParsePath(path)
	if err != nil {
		return false
	}
	return secretsPath.Under(p)
}

// Path is a parsed key path: the case-preserved names from the root down.
// The empty Path is the root key.
type Path []string

// ParsePath validates and splits a key path. Names are separated by "/";
// one leading "/" is allowed; "" and "/" name the root.
func ParsePath(s string) (Path, error) {
	s = strings.TrimPrefix(s, Separator)
	if s == "" {
		return Path{}, nil
	}
	if len(s) > MaxPathLength {
		return nil, fmt.Errorf("%w: the path is %d bytes long, limit %d", ErrInvalidPath, len(s), MaxPathLength)
	}
	parts := strings.Split(s, Separator)
	if len(parts) > MaxDepth {
		return nil, fmt.Errorf("%w: %q is %d levels deep, limit %d", ErrInvalidPath, s, len(parts), MaxDepth)
	}
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("%w: %q has an empty name (doubled or trailing %q)", ErrInvalidPath, s, Separator)
		}
		if err := validateName("key name", p); err != nil {
			return nil, fmt.Errorf("%w: in %q: %w", ErrInvalidPath, s, err)
		}
		if p == "." || p == ".." {
			return nil, fmt.Errorf("%w: %q: %q is not a key name", ErrInvalidPath, s, p)
		}
	}
	return Path(parts), nil
}

// MustPath parses a path known to be valid; it panics otherwise.
func MustPath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String joins the path with "/".
func (p Path) String() string { return strings.Join(p, Separator) }

// IsRoot reports whether p names the root key.
func (p Path) IsRoot() bool { return len(p) == 0 }

// Reserved reports whether p lies in the cluster's reserved subtree.
func (p Path) Reserved() bool { return len(p) > 0 && fold(p[0]) == fold(ReservedKey) }

// Child returns p extended by one name.
func (p Path) Child(name string) Path {
	out := make(Path, len(p), len(p)+1)
	copy(out, p)
	return append(out, name)
}

// Under reports whether q is p or lies below it, matched case-insensitively.
func (p Path) Under(q Path) bool {
	if len(q) < len(p) {
		return false
	}
	for i := range p {
		if fold(p[i]) != fold(q[i]) {
			return false
		}
	}
	return true
}

// Related reports whether one of p and q lies under the other: a change at
// one concerns a watcher of the other.
func (p Path) Related(q Path) bool { return p.Under(q) || q.Under(p) }

// validateName checks one key or value name.
func validateName(what, n string) error {
	if n == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalidName, what)
	}
	if !utf8.ValidString(n) {
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalidName, what, n)
	}
	if c := utf8.RuneCountInString(n); c > MaxNameLength {
		return fmt.Errorf("%w: %s is %d characters, limit %d", ErrInvalidName, what, c, MaxNameLength)
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s %q holds control character %U", ErrInvalidName, what, n, r)
		}
	}
	return nil
}

// fold is the case-insensitive form a name is stored and matched under.
func fold(s string) string { return strings.ToLower(s) }
