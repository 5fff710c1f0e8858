package backupset

// Encrypted sets.
//
// An encrypted set (format FormatEncrypted) keeps its manifest in the
// clear, so that it can be listed, inspected and its stored bytes checked
// without any key. Each data file is stored as one age stream (compressed
// first, with --compress), named NAME[.zst].age: `age -d -i KEY FILE`
// decrypts it. The manifest records, for each file, the size and SHA-256 of
// the stored (encrypted) bytes, which `backup verify` checks without an
// identity, and an HMAC-SHA256 of the content under a random checksum key
// of the set, which is checked whenever the file is decrypted. The checksum
// key is stored in the manifest as a small age stream encrypted to the same
// recipients; the manifest also lists the recipients' fingerprints, so that
// a wrong identity is named as such.
//
// What this protects, and what it does not:
//
//   - Without an identity of a recipient, nobody reads the content, nor
//     confirms a guess of it (there is no plain SHA-256 of the content).
//   - Any change of the stored bytes fails their SHA-256 and, when
//     decrypting, age's authentication of every chunk, its end, and its
//     header's MAC: tampering is found at verify and at restore, and a
//     restore writes nothing it could not authenticate (age releases no
//     chunk before its tag checks, and the restore installs nothing before
//     the whole file checked).
//   - The manifest's own checksum is no signature, and age does not
//     authenticate the sender: anyone who knows a recipient's public key can
//     encrypt a forged database to it and reseal the manifest. And a forger
//     who can rewrite the set can drop the encryption altogether: replace
//     the files by plaintext ones and write a format 1 manifest without the
//     encryption section. Such a set no longer claims to be encrypted, so
//     Unlock refuses it when identities are given (ErrNotEncrypted):
//     restore and verify with --identity refuse a set that is not
//     encrypted. Proving who made a set needs a signature (a later issue).

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"filippo.io/age"
)

// EncryptionAge is the one encryption scheme: age.
const EncryptionAge = "age"

// macKeySize is the size of a set's checksum key.
const macKeySize = 32

// maxKeyBlob bounds the stored, encrypted checksum key (a post-quantum
// recipient's stanza is over a kilobyte; this allows dozens).
const maxKeyBlob = 64 << 10

// Encryption is the manifest's description of an encrypted set.
type Encryption struct {
	Scheme string `json:"scheme"` // "age"
	// Recipients are the fingerprints of the recipients the files are
	// encrypted to (Fingerprint), sorted.
	Recipients []string `json:"recipients"`
	// Key is the set's checksum key, an age stream encrypted to the same
	// recipients, in standard base64.
	Key string `json:"key"`
}

func (e *Encryption) check() error {
	if e.Scheme != EncryptionAge {
		return fmt.Errorf("unknown scheme %q", e.Scheme)
	}
	if len(e.Recipients) == 0 {
		return errors.New("no recipients")
	}
	for _, r := range e.Recipients {
		if !isFingerprint(r) {
			return fmt.Errorf("recipient fingerprint %q is malformed", r)
		}
	}
	if len(e.Key) == 0 || len(e.Key) > base64.StdEncoding.EncodedLen(maxKeyBlob) {
		return errors.New("the checksum key is missing or too long")
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(e.Key); err != nil {
		return fmt.Errorf("the checksum key is not base64: %v", err)
	}
	return nil
}

const fingerprintPrefix = "sha256:"

// Fingerprint names an age recipient by its public key's encoding without
// repeating it: "sha256:" and the first 16 bytes of its SHA-256, in hex.
func Fingerprint(recipient string) string {
	h := sha256.Sum256([]byte(recipient))
	return fingerprintPrefix + hex.EncodeToString(h[:16])
}

func isFingerprint(s string) bool {
	rest, ok := strings.CutPrefix(s, fingerprintPrefix)
	if !ok || len(rest) != 32 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil && strings.ToLower(rest) == rest
}

// recipientFingerprint is Fingerprint of a recipient's string form.
func recipientFingerprint(r age.Recipient) (string, error) {
	s, ok := r.(fmt.Stringer)
	if !ok {
		return "", fmt.Errorf("age recipient of type %T has no public key encoding", r)
	}
	return Fingerprint(s.String()), nil
}

// identityFingerprint is the fingerprint of an identity's recipient, or
// "" for an identity of a kind this build cannot name.
func identityFingerprint(id age.Identity) string {
	switch i := id.(type) {
	case *age.X25519Identity:
		return Fingerprint(i.Recipient().String())
	case *age.HybridIdentity:
		return Fingerprint(i.Recipient().String())
	}
	return ""
}

// ParseRecipients reads age recipients: each key given (an "age1..."
// public key), and each file in age's recipients-file format (one key a
// line, "#" comments and blank lines ignored).
func ParseRecipients(keys, files []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" || strings.ContainsAny(k, "\n#") {
			return nil, fmt.Errorf("recipient %q: not one age public key", k)
		}
		rs, err := age.ParseRecipients(strings.NewReader(k))
		if err != nil {
			// age's error leaves the key out in case it is a secret one.
			return nil, fmt.Errorf("recipient %s: not an age public key (age1...): %v", shorten(k), err)
		}
		out = append(out, rs...)
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("recipients file: %w", err)
		}
		rs, err := age.ParseRecipients(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("recipients file %s: %v", name, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// shorten keeps a possibly secret string out of a message, but for its
// start.
func shorten(s string) string {
	if strings.HasPrefix(strings.ToUpper(s), "AGE-SECRET-KEY") {
		return "AGE-SECRET-KEY-… (a secret key: give the public key, age1…)"
	}
	if len(s) > 12 {
		return fmt.Sprintf("%q", s[:12]+"…")
	}
	return fmt.Sprintf("%q", s)
}

// ReadIdentities reads age identity files (age's format: one secret key a
// line, "#" comments and blank lines ignored, as age-keygen writes them).
func ReadIdentities(files []string) ([]age.Identity, error) {
	var out []age.Identity
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("identity file: %w", err)
		}
		ids, err := age.ParseIdentities(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("identity file %s: %v", name, err)
		}
		out = append(out, ids...)
	}
	return out, nil
}

// sealing is what a writer needs to encrypt a set.
type sealing struct {
	recipients []age.Recipient
	key        []byte
	desc       Encryption
}

func newSealing(recipients []age.Recipient) (*sealing, error) {
	if len(recipients) == 0 {
		return nil, errors.New("encrypt backup set: no recipients")
	}
	s := &sealing{recipients: recipients, key: make([]byte, macKeySize), desc: Encryption{Scheme: EncryptionAge}}
	if _, err := rand.Read(s.key); err != nil {
		return nil, fmt.Errorf("encrypt backup set: %w", err)
	}
	for _, r := range recipients {
		fp, err := recipientFingerprint(r)
		if err != nil {
			return nil, fmt.Errorf("encrypt backup set: %w", err)
		}
		if !slices.Contains(s.desc.Recipients, fp) {
			s.desc.Recipients = append(s.desc.Recipients, fp)
		}
	}
	slices.Sort(s.desc.Recipients)
	var blob bytes.Buffer
	w, err := age.Encrypt(&blob, recipients...)
	if err != nil {
		return nil, fmt.Errorf("encrypt backup set: %w", err)
	}
	w.Write(s.key)
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypt backup set: %w", err)
	}
	s.desc.Key = base64.StdEncoding.EncodeToString(blob.Bytes())
	return s, nil
}

// Encrypted says whether the set is encrypted.
func (s *Set) Encrypted() bool { return s.Manifest.Encryption != nil }

// Unlocked says whether the set's files can be decrypted (an unencrypted
// set always can).
func (s *Set) Unlocked() bool { return !s.Encrypted() || s.macKey != nil }

// Unlock takes the identities that decrypt an encrypted set: it decrypts
// the set's checksum key with them, and fails with ErrWrongIdentity, naming
// the fingerprints, if none of them can. With no identities it does
// nothing (the set's files then cannot be read if it is encrypted, but its
// stored bytes can be verified). Identities given for a set that is not
// encrypted are refused (ErrNotEncrypted): the caller expects an encrypted
// set, and a forger could have removed the encryption (see the package
// notes above).
func (s *Set) Unlock(ids []age.Identity) error {
	if len(ids) == 0 {
		return nil
	}
	e := s.Manifest.Encryption
	if e == nil {
		return fmt.Errorf("open backup set %s: %w, but identities were given: if you trust it, read it without --identity", s.Location, ErrNotEncrypted)
	}
	blob, err := base64.StdEncoding.Strict().DecodeString(e.Key)
	if err != nil {
		return fmt.Errorf("open backup set %s: %w: checksum key: %v", s.Location, ErrCorrupt, err)
	}
	r, err := age.Decrypt(bytes.NewReader(blob), ids...)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return s.wrongIdentity(ids)
	}
	if err != nil {
		return fmt.Errorf("open backup set %s: %w: checksum key: %v", s.Location, ErrCorrupt, err)
	}
	key, err := io.ReadAll(io.LimitReader(r, macKeySize+1))
	if err != nil || len(key) != macKeySize {
		return fmt.Errorf("open backup set %s: %w: checksum key does not decrypt to a key (%v)", s.Location, ErrCorrupt, err)
	}
	s.ids, s.macKey = ids, key
	return nil
}

func (s *Set) wrongIdentity(ids []age.Identity) error {
	var given []string
	for _, id := range ids {
		if fp := identityFingerprint(id); fp != "" {
			given = append(given, fp)
		} else {
			given = append(given, fmt.Sprintf("(%T)", id))
		}
	}
	for _, fp := range given {
		if slices.Contains(s.Manifest.Encryption.Recipients, fp) {
			// The identity is a recipient, yet cannot open the key.
			return fmt.Errorf("open backup set %s: %w: its checksum key does not decrypt with the identity %s, one of its recipients", s.Location, ErrCorrupt, fp)
		}
	}
	return fmt.Errorf("open backup set %s: %w: it is encrypted to %s; the identities given are %s",
		s.Location, ErrWrongIdentity, strings.Join(s.Manifest.Encryption.Recipients, ", "), strings.Join(given, ", "))
}
