package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The Debian image the package suite boots systemd in. It is made from
// Debian's packages (no registry is reachable), once: the root file system
// is kept under the repository's .cache (gitignored), the image in the
// Docker engine under a tag naming what it holds; a later run finds one or
// the other.
const (
	systemdSuite = "bookworm"
	// systemdPackages are debootstrap's --include: systemd as PID 1, the
	// system bus, and polkit (with logind, which polkitd needs), through
	// which the unprivileged agent may manage the units of its systemd
	// resources.
	systemdPackages = "systemd,systemd-sysv,dbus,libpam-systemd,polkitd"
	// systemdImageKey names this recipe: change it when the recipe changes.
	systemdImageKey = systemdSuite + "-1"
	systemdImage    = "clusterkeep-e2e-systemd:" + systemdImageKey
	debianMirror    = "http://deb.debian.org/debian"
)

// repoRoot is the repository's top folder.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// systemdImageFor returns the image to boot, importing or building it
// when missing. A host where it cannot be built (no debootstrap, not root)
// skips the test, saying why.
func systemdImageFor(t *testing.T) string {
	t.Helper()
	requireDocker(t)
	bg := context.Background()
	if _, err := docker(bg, "image", "inspect", "--format", "{{.Id}}", systemdImage); err == nil {
		t.Logf("systemd image %s: cached in the Docker engine", systemdImage)
		return systemdImage
	}
	rootfs := filepath.Join(repoRoot(), ".cache", "systemd-rootfs", systemdImageKey)
	if _, err := os.Stat(filepath.Join(rootfs, "lib", "systemd", "systemd")); err != nil {
		if err := debootstrap(t, rootfs); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(bg, 10*time.Minute)
	defer cancel()
	imp := exec.CommandContext(ctx, "sh", "-c", `tar -C "$1" -c . | docker import -m "clusterkeep e2e: Debian $2 with systemd" - "$3"`,
		"sh", rootfs, systemdSuite, systemdImage)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("import %s as the image %s: %v: %s", rootfs, systemdImage, err, out)
	}
	t.Logf("systemd image %s: imported from %s in %v", systemdImage, rootfs, time.Since(start).Round(time.Second))
	return systemdImage
}

// debootstrap makes the root file system at dir from Debian's packages,
// aside first so that an interrupted run leaves nothing that looks done.
func debootstrap(t *testing.T, dir string) error {
	t.Helper()
	tool, err := exec.LookPath("debootstrap")
	if err != nil {
		t.Skipf("NOT RUN: building the systemd image needs debootstrap, which is missing (apt-get install debootstrap; scripts/test.sh installs it): %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("NOT RUN: building the systemd image needs debootstrap as root, and this test runs as another user")
	}
	partial := dir + ".partial"
	if err := os.RemoveAll(partial); err != nil {
		return fmt.Errorf("remove the leftover %s: %w", partial, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	start := time.Now()
	t.Logf("systemd image: debootstrap %s into %s (once; later runs reuse it)", systemdSuite, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, "--variant=minbase", "--include="+systemdPackages, systemdSuite, partial, debianMirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("debootstrap %s: %w\n%s", systemdSuite, err, tail(string(out), 30))
	}
	if err := os.Rename(partial, dir); err != nil {
		return err
	}
	t.Logf("systemd image: debootstrap took %v", time.Since(start).Round(time.Second))
	return nil
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// buildDeb builds the Debian package with scripts/build-deb.sh into a
// folder of the test and returns its path.
func buildDeb(t *testing.T) string {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot(), "scripts", "build-deb.sh"))
	cmd.Env = append(os.Environ(), "OUT_DIR="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/build-deb.sh: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deb := lines[len(lines)-1]
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("scripts/build-deb.sh printed %q, which is no file: %v", deb, err)
	}
	t.Logf("built %s in %v (%s)", filepath.Base(deb), time.Since(start).Round(time.Second), strings.TrimSpace(stderr.String()))
	return deb
}
