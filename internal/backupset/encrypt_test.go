package backupset

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
)

const testWriterID = "41e12264-35d8-479b-8e5c-9b23d1dad37e"

// testIdentity is a key made for these tests only.
const testIdentity = "AGE-SECRET-KEY-1LHJLHV89X5SXV5PD23LLAMWUD0ALLQQ24L5L26VQV54AFC8L4U3SNDJS55"

func identity(t testing.TB) *age.X25519Identity {
	id, err := age.ParseX25519Identity(testIdentity)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// writeSet writes a set of the files (name → content) and returns its path.
func writeSet(t testing.TB, dir string, compress bool, recipients []age.Recipient, files map[string][]byte) string {
	t.Helper()
	w, err := Create(dir, "s", compress)
	if err != nil {
		t.Fatal(err)
	}
	if recipients != nil {
		if err := w.Encrypt(recipients); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		if _, err := w.Add(File{Name: name, WriterID: testWriterID, Component: "c"}, bytes.NewReader(content), nil); err != nil {
			t.Fatal(err)
		}
	}
	p, err := w.Commit(&Manifest{BackupID: "b", Writers: []shadow.WriterMetadata{{Name: "w", ID: testWriterID}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readAll(t *testing.T, s *Set, f File) ([]byte, error) {
	t.Helper()
	r, err := s.Open(f)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// reseal rewrites a set's manifest after edit, with a valid checksum, as a
// forger would.
func reseal(t testing.TB, dir string, edit func(m *Manifest)) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	raw, err = m.Seal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEncryptedSetRoundTrip(t *testing.T) {
	big := make([]byte, 3<<20+17) // more than one pipeline chunk and many age chunks
	rand.Read(big)
	other, _ := age.GenerateX25519Identity()
	for _, compress := range []bool{false, true} {
		dir := writeSet(t, t.TempDir(), compress, []age.Recipient{identity(t).Recipient(), other.Recipient()},
			map[string][]byte{"a/db": big, "b/small": []byte("secret value"), "c/empty": nil})
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		m := s.Manifest
		if m.FormatVersion != FormatEncrypted || m.Encryption == nil || len(m.Encryption.Recipients) != 2 {
			t.Fatalf("manifest: %+v", m)
		}
		raw, _ := os.ReadFile(filepath.Join(dir, ManifestName))
		if bytes.Contains(raw, []byte(identity(t).Recipient().String())) {
			t.Fatal("the manifest names a recipient's public key")
		}
		for _, f := range m.Files {
			if f.SHA256 != "" || f.ContentMAC == "" || !strings.HasSuffix(f.StoredName(), ".age") {
				t.Fatalf("entry: %+v", f)
			}
			stored, _ := os.ReadFile(filepath.Join(dir, f.StoredName()))
			if f.Size > 0 && bytes.Contains(stored, []byte("secret")) {
				t.Fatal("plaintext stored")
			}
			// Without an identity: the ciphertext checks, the content cannot be read.
			if err := s.VerifyStored(f, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := readAll(t, s, f); !errors.Is(err, ErrNoIdentity) {
				t.Fatalf("read without identity: %v", err)
			}
		}
		// A wrong identity is named as such, with the set's recipients.
		stranger, _ := age.GenerateX25519Identity()
		err = s.Unlock([]age.Identity{stranger})
		if !errors.Is(err, ErrWrongIdentity) || !strings.Contains(err.Error(), m.Encryption.Recipients[0]) || !strings.Contains(err.Error(), Fingerprint(stranger.Recipient().String())) {
			t.Fatalf("wrong identity: %v", err)
		}
		if s.Unlocked() {
			t.Fatal("unlocked by a wrong identity")
		}
		// Either recipient opens it.
		for _, id := range []age.Identity{identity(t), other} {
			s, _ := Open(dir)
			if err := s.Unlock([]age.Identity{stranger, id}); err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(nil); err != nil {
				t.Fatal(err)
			}
			f, _ := m.File(testWriterID, "db")
			got, err := readAll(t, s, f)
			if err != nil || !bytes.Equal(got, big) {
				t.Fatalf("content: %d bytes, %v", len(got), err)
			}
		}
	}
}

func TestUnencryptedSetRefusesIdentities(t *testing.T) {
	dir := writeSet(t, t.TempDir(), false, nil, map[string][]byte{"a/f": []byte("x")})
	s, err := Open(dir)
	if err != nil || s.Manifest.FormatVersion != FormatVersion || s.Encrypted() {
		t.Fatalf("%+v %v", s, err)
	}
	if err := s.Unlock([]age.Identity{identity(t)}); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("got %v", err)
	}
	if err := s.Unlock(nil); err != nil || !s.Unlocked() {
		t.Fatal(err)
	}
	if err := s.Verify(nil); err != nil {
		t.Fatal(err)
	}
}

// Whatever is changed in an encrypted set, it is found: by the stored
// SHA-256 without an identity, and by age's authentication (and the
// content MAC) with one, even after the manifest was resealed to match.
func TestEncryptedSetTamperingIsFound(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 20000)
	fresh := func(t *testing.T, content []byte) (string, File) {
		dir := writeSet(t, t.TempDir(), false, []age.Recipient{identity(t).Recipient()}, map[string][]byte{"a/db": content})
		s, _ := Open(dir)
		return dir, s.Manifest.Files[0]
	}
	flip := func(t *testing.T, p string, at int64) {
		b, _ := os.ReadFile(p)
		if at < 0 {
			at += int64(len(b))
		}
		b[at] ^= 1
		os.WriteFile(p, b, 0o600)
	}
	sumOf := func(p string) (int64, string) {
		b, _ := os.ReadFile(p)
		h := sha256.Sum256(b)
		return int64(len(b)), hex.EncodeToString(h[:])
	}
	cases := map[string]func(t *testing.T, dir string, f File){
		"flipped payload": func(t *testing.T, dir string, f File) { flip(t, filepath.Join(dir, f.StoredName()), -100) },
		"flipped header":  func(t *testing.T, dir string, f File) { flip(t, filepath.Join(dir, f.StoredName()), 40) },
		"truncated": func(t *testing.T, dir string, f File) {
			p := filepath.Join(dir, f.StoredName())
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-65536-16)
		},
		"appended": func(t *testing.T, dir string, f File) {
			fh, _ := os.OpenFile(filepath.Join(dir, f.StoredName()), os.O_APPEND|os.O_WRONLY, 0)
			fh.Write([]byte("more"))
			fh.Close()
		},
		"other set's file": func(t *testing.T, dir string, f File) {
			// A file of the same size and recipient, but another content.
			odir, of := fresh(t, bytes.ToUpper(content))
			b, _ := os.ReadFile(filepath.Join(odir, of.StoredName()))
			os.WriteFile(filepath.Join(dir, f.StoredName()), b, 0o600)
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			for _, resealed := range []bool{false, true} {
				dir, f := fresh(t, content)
				tamper(t, dir, f)
				if resealed {
					// The forger makes the manifest agree with the stored bytes.
					n, sum := sumOf(filepath.Join(dir, f.StoredName()))
					reseal(t, dir, func(m *Manifest) { m.Files[0].StoredSize, m.Files[0].StoredSHA256 = n, sum })
				}
				s, err := Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.VerifyStored(f, nil); !resealed && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("stored bytes: %v", err)
				}
				if err := s.Unlock([]age.Identity{identity(t)}); err != nil {
					t.Fatal(err)
				}
				if err := s.Verify(nil); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("resealed %v: verify with the identity: %v", resealed, err)
				}
				p, cleanup, err := s.Extract(s.Manifest.Files[0], nil)
				if err == nil || p != "" || cleanup != nil {
					cleanup()
					t.Fatal("extracted a tampered file")
				}
			}
		})
	}
}

// A forger who drops the encryption must rewrite the set whole; what is
// left half-changed is refused by the strict parser.
func TestEncryptionFlagCannotBeDroppedHalfway(t *testing.T) {
	dir := writeSet(t, t.TempDir(), false, []age.Recipient{identity(t).Recipient()}, map[string][]byte{"a/db": []byte("x")})
	for name, edit := range map[string]func(m *Manifest){
		"section dropped":    func(m *Manifest) { m.Encryption = nil },
		"version dropped":    func(m *Manifest) { m.FormatVersion = FormatVersion },
		"file marked plain":  func(m *Manifest) { m.Files[0].Encryption = "" },
		"plain sum added":    func(m *Manifest) { m.Files[0].SHA256 = m.Files[0].ContentMAC },
		"no recipients":      func(m *Manifest) { m.Encryption.Recipients = nil },
		"bad fingerprint":    func(m *Manifest) { m.Encryption.Recipients = []string{"age1xyz"} },
		"other scheme":       func(m *Manifest) { m.Encryption.Scheme = "gpg" },
		"key not base64":     func(m *Manifest) { m.Encryption.Key = "!!" },
		"no stored checksum": func(m *Manifest) { m.Files[0].StoredSHA256 = "" },
	} {
		d := t.TempDir()
		os.CopyFS(d, os.DirFS(dir))
		reseal(t, d, func(m *Manifest) {})
		raw, _ := os.ReadFile(filepath.Join(d, ManifestName))
		m, err := ParseManifest(raw)
		if err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, _ := m.Seal()
		if _, err := ParseManifest(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	// A corrupted checksum key is corruption, not a wrong identity.
	d := t.TempDir()
	os.CopyFS(d, os.DirFS(dir))
	reseal(t, d, func(m *Manifest) {
		other := writeSet(t, t.TempDir(), false, []age.Recipient{identity(t).Recipient()}, nil)
		o, _ := Open(other)
		m.Encryption.Key = o.Manifest.Encryption.Key[:len(o.Manifest.Encryption.Key)-8] + "AAAAAAA="
	})
	s, err := Open(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock([]age.Identity{identity(t)}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupted key: %v", err)
	}
}

// Backup files are readable by their owner only.
func TestSetPermissions(t *testing.T) {
	for _, enc := range []bool{false, true} {
		var rs []age.Recipient
		if enc {
			rs = []age.Recipient{identity(t).Recipient()}
		}
		dir := writeSet(t, filepath.Join(t.TempDir(), "new", "target"), true, rs, map[string][]byte{"a/b/c": []byte("x")})
		filepath.WalkDir(filepath.Dir(dir), func(p string, d fs.DirEntry, err error) error {
			fi, _ := os.Lstat(p)
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s: %v, want %v", p, fi.Mode().Perm(), want)
			}
			return nil
		})
	}
}

// A link stored in a set is never followed: the listing refuses it, and
// reading the file it replaces fails.
func TestLinksInASetAreRefused(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("x"), 0o600)
	dir := writeSet(t, t.TempDir(), false, nil, map[string][]byte{"a/f": []byte("x")})
	s, _ := Open(dir)
	f := s.Manifest.Files[0]
	// The file is a link to a file with the very content.
	p := filepath.Join(dir, f.StoredName())
	os.Remove(p)
	os.Symlink(outside, p)
	if err := s.Verify(nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("verify: %v", err)
	}
	if _, err := readAll(t, s, f); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read through a link: %v", err)
	}
	// A directory of the set is a link.
	os.Remove(p)
	real := filepath.Join(t.TempDir(), "a")
	os.Mkdir(real, 0o700)
	os.WriteFile(filepath.Join(real, "f"), []byte("x"), 0o600)
	os.RemoveAll(filepath.Join(dir, "data", "a"))
	os.Symlink(real, filepath.Join(dir, "data", "a"))
	if err := s.Verify(nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("verify: %v", err)
	}
	if _, err := readAll(t, s, f); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read through a linked directory: %v", err)
	}
}

func TestParseRecipientsAndIdentities(t *testing.T) {
	dir := t.TempDir()
	pub := identity(t).Recipient().String()
	other, _ := age.GenerateX25519Identity()
	rf := filepath.Join(dir, "recipients.txt")
	os.WriteFile(rf, []byte("# team\n"+other.Recipient().String()+"\n\n"), 0o600)
	rs, err := ParseRecipients([]string{pub}, []string{rf})
	if err != nil || len(rs) != 2 {
		t.Fatalf("%v %v", rs, err)
	}
	if _, err := ParseRecipients([]string{testIdentity}, nil); err == nil || strings.Contains(err.Error(), testIdentity) {
		t.Fatalf("a secret key as a recipient: %v", err)
	}
	if _, err := ParseRecipients([]string{"age1nope"}, nil); err == nil {
		t.Fatal("bad recipient accepted")
	}
	if _, err := ParseRecipients(nil, []string{filepath.Join(dir, "missing")}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: %v", err)
	}
	idf := filepath.Join(dir, "key.txt")
	os.WriteFile(idf, []byte("# created: now\n# public key: "+pub+"\n"+testIdentity+"\n"), 0o600)
	ids, err := ReadIdentities([]string{idf})
	if err != nil || len(ids) != 1 {
		t.Fatalf("%v %v", ids, err)
	}
	if _, err := ReadIdentities([]string{rf}); err == nil || !strings.Contains(err.Error(), rf) {
		t.Fatalf("a recipients file as identities: %v", err)
	}
}

// Sets written before encryption existed (testdata/v1, made by that
// build) are read and verified as they were.
func TestSetsOfTheFirstFormatStillRead(t *testing.T) {
	for _, name := range []string{"plain", "zstd"} {
		s, err := Open(filepath.Join("testdata", "v1", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Encrypted() || s.Manifest.FormatVersion != FormatVersion {
			t.Fatalf("%s: %+v", name, s.Manifest)
		}
		if err := s.Verify(nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, err := readAll(t, s, s.Manifest.Files[0]); err != nil || string(got) != "old content" {
			t.Fatalf("%s: %q %v", name, got, err)
		}
	}
}
