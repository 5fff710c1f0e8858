package testcluster

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/agent"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/security"
)

// Trust is the one authority and pair of tokens of a test process.
type Trust struct {
	CACert, CAKey         string // PEM files
	JoinToken, AdminToken string
}

var (
	trustOnce sync.Once
	trust     Trust
	trustErr  error
)

// UseTrust makes one authority, join token and admin token for the whole
// test process and puts them in its environment (the variables the agent,
// `local up` and clients read), so that every cluster a test creates, as
// processes or in this process, and every client, CLI or library, trust
// and prove the same. Tests of the defaults (an authority the cluster
// makes itself) clear these variables for the processes they start.
func UseTrust(t testing.TB) Trust {
	t.Helper()
	trustOnce.Do(func() { trust, trustErr = makeTrust() })
	if trustErr != nil {
		t.Fatal(trustErr)
	}
	return trust
}

func makeTrust() (Trust, error) {
	dir, err := os.MkdirTemp("", "clusterkeep-trust-")
	if err != nil {
		return Trust{}, err
	}
	ca, err := security.NewCA("tests")
	if err != nil {
		return Trust{}, err
	}
	key, err := ca.KeyDER()
	if err != nil {
		return Trust{}, err
	}
	tr := Trust{CACert: filepath.Join(dir, "ca.pem"), CAKey: filepath.Join(dir, "ca-key.pem")}
	if err := os.WriteFile(tr.CACert, security.EncodePEM("CERTIFICATE", ca.Cert.Raw), 0o644); err != nil {
		return Trust{}, err
	}
	if err := os.WriteFile(tr.CAKey, security.EncodePEM("PRIVATE KEY", key), 0o600); err != nil {
		return Trust{}, err
	}
	if tr.JoinToken, err = security.NewSecret(); err != nil {
		return Trust{}, err
	}
	if tr.AdminToken, err = security.NewSecret(); err != nil {
		return Trust{}, err
	}
	for k, v := range map[string]string{
		client.EnvCA: tr.CACert, client.EnvToken: tr.AdminToken,
		agent.EnvCACert: tr.CACert, agent.EnvCAKey: tr.CAKey,
		agent.EnvJoinToken: tr.JoinToken, agent.EnvAdminToken: tr.AdminToken,
	} {
		if err := os.Setenv(k, v); err != nil {
			return Trust{}, err
		}
	}
	return tr, nil
}

// WithoutTrust is env (or the process's environment, if nil) without the
// variables UseTrust sets: a process started with it uses the defaults.
func WithoutTrust(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	drop := map[string]bool{client.EnvCA: true, client.EnvToken: true, client.EnvTokenFile: true, agent.EnvCACert: true,
		agent.EnvCAKey: true, agent.EnvJoinToken: true, agent.EnvAdminToken: true}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			out = append(out, kv)
		}
	}
	return out
}
