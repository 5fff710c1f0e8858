package offline

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/hive"
)

// Change is one difference between two hives. A change in the subtree of
// secrets (Secret) names the secret and never carries its bytes: Old and
// New are empty.
type Change struct {
	Kind string `json:"kind"` // added, removed, changed
	Key  string `json:"key"`
	// Name is the value's name; empty for a key added or removed. For a
	// secret it names the entry (a value, or a token by its name).
	Name   string `json:"name,omitempty"`
	Old    string `json:"old,omitempty"`
	New    string `json:"new,omitempty"`
	Secret bool   `json:"secret,omitempty"`
}

// Secrets says what a comparison found of the subtree of secrets.
type Secrets string

// What a comparison can say of the secrets.
const (
	SecretsUnchanged   Secrets = "unchanged"
	SecretsChanged     Secrets = "changed"
	SecretsNotCompared Secrets = "not compared"
)

// Contents is a hive to compare: its export without the subtree of
// secrets, and a digest of each secret entry (kept in memory, never
// shown), or nothing when its secrets are not known (the running
// cluster's, which the API never serves).
type Contents struct {
	export  []byte
	secrets secretSet // nil: not known
}

// Read reads a set's hive to compare it. An encrypted set needs
// identities that decrypt it; they are ignored for one that is not
// (comparing it is not trusting it).
func Read(path string, ids ...age.Identity) (*Contents, error) {
	s, err := openReadable(path, ids, false)
	if err != nil {
		return nil, err
	}
	var c Contents
	err = WithHive(s, func(h *hive.Hive) error {
		return h.View(func(r *hive.Reader) error {
			var buf bytes.Buffer
			if err := r.ExportSkipping(&buf, "", hive.IsSecret); err != nil {
				return err
			}
			c.export = buf.Bytes()
			c.secrets, err = readSecrets(r)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read backup set %s: %w", path, err)
	}
	return &c, nil
}

// FromExport is an export to compare whose secrets are not known, as the
// running cluster's: whatever of the subtree of secrets it holds is left
// out.
func FromExport(text []byte) *Contents { return &Contents{export: text} }

// Export returns the hive of a set in the text form, without the subtree
// of secrets. An encrypted set needs identities that decrypt it; they are
// ignored for one that is not.
func Export(path string, ids ...age.Identity) ([]byte, error) {
	c, err := Read(path, ids...)
	if err != nil {
		return nil, err
	}
	return c.export, nil
}

// Comparison is what Diff found: the changes, sorted by key and name, and
// what could be said of the secrets.
type Comparison struct {
	Changes []Change `json:"changes"`
	Secrets Secrets  `json:"secrets"`
}

// Diff lists what differs from a to b. Secrets are compared by digest
// when both sides know them, and named, never shown.
func Diff(a, b *Contents) (*Comparison, error) {
	ma, err := exportMap(a.export)
	if err != nil {
		return nil, err
	}
	mb, err := exportMap(b.export)
	if err != nil {
		return nil, err
	}
	out := &Comparison{Changes: []Change{}, Secrets: SecretsNotCompared}
	split := func(s string) (string, string) { k, n, _ := strings.Cut(s, "\x00"); return k, n }
	for id, va := range ma {
		vb, ok := mb[id]
		k, n := split(va[0])
		switch {
		case !ok:
			out.Changes = append(out.Changes, Change{Kind: "removed", Key: k, Name: n, Old: va[1]})
		case va[1] != vb[1]:
			out.Changes = append(out.Changes, Change{Kind: "changed", Key: k, Name: n, Old: va[1], New: vb[1]})
		}
	}
	for id, vb := range mb {
		if _, ok := ma[id]; !ok {
			k, n := split(vb[0])
			out.Changes = append(out.Changes, Change{Kind: "added", Key: k, Name: n, New: vb[1]})
		}
	}
	if a.secrets != nil && b.secrets != nil {
		out.Secrets = SecretsUnchanged
		for _, c := range a.secrets.diff(b.secrets) {
			out.Secrets = SecretsChanged
			out.Changes = append(out.Changes, c)
		}
	}
	sort.Slice(out.Changes, func(i, j int) bool {
		ci, cj := out.Changes[i], out.Changes[j]
		if !strings.EqualFold(ci.Key, cj.Key) {
			return strings.ToLower(ci.Key) < strings.ToLower(cj.Key)
		}
		return strings.ToLower(ci.Name) < strings.ToLower(cj.Name)
	})
	return out, nil
}

// exportMap reads an export into key (and key\x00value) → display text,
// leaving out the subtree of secrets.
func exportMap(text []byte) (map[string][2]string, error) {
	ops, err := hive.ParseExport(bytes.NewReader(text))
	if err != nil {
		return nil, err
	}
	out := map[string][2]string{}
	for _, op := range ops {
		if hive.IsSecret(op.Key) {
			continue
		}
		if op.Kind == hive.OpCreateKey {
			out[strings.ToLower(op.Key)] = [2]string{op.Key, ""}
			continue
		}
		v := op.Value
		out[strings.ToLower(op.Key)+"\x00"+strings.ToLower(v.Name)] = [2]string{op.Key + "\x00" + v.Name, string(v.Type) + " " + hive.FormatData(*v)}
	}
	return out, nil
}

// secretEntry is one secret as shown: where (a key path holding no secret
// name) and what (a value's name, or an entry by its Name value), with a
// digest of its contents that is compared, never shown.
type secretEntry struct {
	key, name string
	digest    [sha256.Size]byte
}

// secretSet is the secret entries of a hive, by a label unique among them.
type secretSet map[string]secretEntry

// readSecrets reads the subtree of secrets as entries: each value of the
// subtree's own key (CAKey, JoinSecret…), each value of a key one level
// below (Tokens), and each key two levels below (a token, named by its
// Name value, since its own name is the token's hash) with all it holds.
func readSecrets(r *hive.Reader) (secretSet, error) {
	root := hive.MustPath(hive.SecretsKey)
	type group struct {
		key, name string
		h         []byte
	}
	groups := map[string]*group{} // by the lower-cased path, never shown
	var order []string
	err := r.Walk(root, func(k hive.Key) error {
		p := hive.MustPath(k.Path)
		rel := p[len(root):]
		if len(rel) <= 1 {
			shown := hive.SecretsKey
			if len(rel) == 1 {
				shown += "/" + rel[0]
			}
			for _, v := range k.Values {
				id := strings.ToLower(k.Path + "\x00" + v.Name)
				groups[id] = &group{key: shown, name: v.Name, h: valueBytes(nil, v)}
				order = append(order, id)
			}
			return nil
		}
		id := strings.ToLower(p[:len(root)+2].String())
		g, ok := groups[id]
		if !ok {
			g = &group{key: hive.SecretsKey + "/" + rel[0]}
			groups[id] = g
			order = append(order, id)
		}
		g.h = append(g.h, strings.ToLower(rel.String())...)
		g.h = append(g.h, 0)
		for _, v := range k.Values {
			if len(rel) == 2 && strings.EqualFold(v.Name, "Name") && v.Type == hive.TypeString {
				g.name = fmt.Sprintf("%s %q", entryWord(rel[0]), v.String)
			}
			g.h = valueBytes(g.h, v)
		}
		return nil
	})
	if errors.Is(err, hive.ErrKeyNotFound) {
		return secretSet{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the secrets' entries: %w", err)
	}
	out := secretSet{}
	for _, id := range order {
		g := groups[id]
		if g.name == "" {
			g.name = "an unnamed " + entryWord(strings.TrimPrefix(g.key, hive.SecretsKey+"/"))
		}
		label := g.key + "\x00" + g.name
		for n := 2; ; n++ {
			if _, taken := out[label]; !taken {
				break
			}
			label = fmt.Sprintf("%s\x00%s (%d)", g.key, g.name, n)
		}
		_, name, _ := strings.Cut(label, "\x00")
		out[label] = secretEntry{key: g.key, name: name, digest: sha256.Sum256(g.h)}
	}
	return out, nil
}

// entryWord is what an entry of the secrets' subkey is called.
func entryWord(subkey string) string {
	if strings.EqualFold(subkey, "Tokens") {
		return "token"
	}
	return "entry"
}

func valueBytes(b []byte, v hive.Value) []byte {
	b = append(b, strings.ToLower(v.Name)...)
	b = append(b, 0)
	b = append(b, v.Type...)
	b = append(b, 0)
	b = append(b, hive.FormatData(v)...)
	return append(b, 0)
}

// diff names the secret entries added, removed and changed from s to t.
func (s secretSet) diff(t secretSet) []Change {
	var out []Change
	for l, a := range s {
		b, ok := t[l]
		switch {
		case !ok:
			out = append(out, Change{Kind: "removed", Key: a.key, Name: a.name, Secret: true})
		case a.digest != b.digest:
			out = append(out, Change{Kind: "changed", Key: a.key, Name: a.name, Secret: true})
		}
	}
	for l, b := range t {
		if _, ok := s[l]; !ok {
			out = append(out, Change{Kind: "added", Key: b.key, Name: b.name, Secret: true})
		}
	}
	return out
}

// names lists the entries, sorted, as "KEY : NAME".
func (s secretSet) names() []string {
	var out []string
	for _, e := range s {
		out = append(out, e.key+" : "+e.name)
	}
	sort.Strings(out)
	return out
}
