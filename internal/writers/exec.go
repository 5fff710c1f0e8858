package writers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/google/uuid"
)

// ExecConfig declares an application writer in the agent's configuration:
// the files it owns and the commands that make them consistent.
type ExecConfig struct {
	Name string `json:"name"`
	// ID is the writer's UUID; by default one derived from the name.
	ID string `json:"id,omitempty"`
	// Paths are files, or directories whose regular files all belong to the writer.
	Paths []string `json:"paths"`
	// Commands, each an argv (no shell: use ["sh","-c","..."] for one).
	// Freeze must return only once the files are consistent and stay so
	// until Thaw runs. Exit status 75 (EX_TEMPFAIL) marks a failure retryable.
	Freeze      []string `json:"freeze,omitempty"`
	Thaw        []string `json:"thaw,omitempty"`
	PreRestore  []string `json:"pre_restore,omitempty"`
	PostRestore []string `json:"post_restore,omitempty"`
	// Timeout bounds each command (Go duration, default 30s).
	Timeout       string `json:"timeout,omitempty"`
	RestoreMethod string `json:"restore_method,omitempty"`
}

// exTempFail is the exit status a command uses to say "try again later".
const exTempFail = 75

// execNamespace derives writer ids from names.
var execNamespace = uuid.MustParse("0b6f3f0e-6c1a-4e53-9a3a-5f1c2e7d4b10")

// Exec is an application writer that runs commands.
type Exec struct {
	cfg     ExecConfig
	id      string
	timeout time.Duration
	method  shadow.RestoreMethod
}

// NewExec validates cfg and returns its writer.
func NewExec(cfg ExecConfig) (*Exec, error) {
	if cfg.Name == "" {
		return nil, errors.New("application writer: no name")
	}
	w := &Exec{cfg: cfg, id: cfg.ID, timeout: 30 * time.Second, method: shadow.RestoreIfCanReplace}
	if w.id == "" {
		w.id = uuid.NewSHA1(execNamespace, []byte(cfg.Name)).String()
	} else if _, err := uuid.Parse(w.id); err != nil {
		return nil, fmt.Errorf("application writer %q: id %q is not a UUID", cfg.Name, w.id)
	}
	if cfg.Timeout != "" {
		d, err := time.ParseDuration(cfg.Timeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("application writer %q: timeout %q is not a positive duration", cfg.Name, cfg.Timeout)
		}
		w.timeout = d
	}
	if cfg.RestoreMethod != "" {
		m, err := shadow.ParseRestoreMethod(cfg.RestoreMethod)
		if err != nil {
			return nil, fmt.Errorf("application writer %q: %w", cfg.Name, err)
		}
		w.method = m
	}
	if len(cfg.Paths) == 0 {
		return nil, fmt.Errorf("application writer %q: no paths", cfg.Name)
	}
	for _, p := range cfg.Paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("application writer %q: path %q is not absolute", cfg.Name, p)
		}
	}
	return w, nil
}

// Identify lists the writer's files as one file-group component.
func (w *Exec) Identify(context.Context) (shadow.WriterMetadata, error) {
	var files []string
	for _, p := range w.cfg.Paths {
		fi, err := os.Stat(p)
		if err != nil {
			return shadow.WriterMetadata{}, fmt.Errorf("path %s: %w", p, err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(f string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, f)
			}
			return err
		})
		if err != nil {
			return shadow.WriterMetadata{}, fmt.Errorf("path %s: %w", p, err)
		}
	}
	sort.Strings(files)
	return shadow.WriterMetadata{
		Name: w.cfg.Name, ID: w.id, InstanceID: w.id, UsageType: shadow.UsageUserData, RestoreMethod: w.method,
		Components: []shadow.Component{{Name: w.cfg.Name, Type: shadow.ComponentFileGroup, Files: files}},
	}, nil
}

// run runs one command with the phase in its environment.
func (w *Exec) run(ctx context.Context, phase shadow.Phase, argv []string, doc *shadow.BackupComponents) error {
	if len(argv) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "CLUSTERKEEP_WRITER="+w.cfg.Name, "CLUSTERKEEP_PHASE="+string(phase))
	if doc != nil {
		cmd.Env = append(cmd.Env, "CLUSTERKEEP_BACKUP_ID="+doc.BackupID)
		for _, c := range doc.Selected(w.id) {
			if c.Authoritative {
				cmd.Env = append(cmd.Env, "CLUSTERKEEP_AUTHORITATIVE=1")
			}
		}
	}
	// Its own process group, so a timeout ends the command and its children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	if err == nil {
		return nil
	}
	out := strings.TrimSpace(stderr.String())
	if len(out) > 500 {
		out = "..." + out[len(out)-500:]
	}
	if ctx.Err() == context.DeadlineExceeded {
		return shadow.Retryable(fmt.Errorf("%s command timed out after %v: %s", phase, w.timeout, out))
	}
	e := fmt.Errorf("%s command %q: %w: %s", phase, strings.Join(argv, " "), err, out)
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == exTempFail {
		return shadow.Retryable(e)
	}
	return e
}

func (w *Exec) PrepareForBackup(context.Context, *shadow.BackupComponents) error { return nil }
func (w *Exec) PrepareForSnapshot(context.Context) error                         { return nil }

// Freeze runs the freeze command.
func (w *Exec) Freeze(ctx context.Context) error {
	return w.run(ctx, shadow.PhaseFreeze, w.cfg.Freeze, nil)
}

// Thaw runs the thaw command.
func (w *Exec) Thaw(ctx context.Context) error { return w.run(ctx, shadow.PhaseThaw, w.cfg.Thaw, nil) }

func (w *Exec) PostSnapshot(context.Context) error                             { return nil }
func (w *Exec) BackupComplete(context.Context, *shadow.BackupComponents) error { return nil }
func (w *Exec) Abort(context.Context) error                                    { return nil }

// PreRestore runs the pre-restore command.
func (w *Exec) PreRestore(ctx context.Context, doc *shadow.BackupComponents) error {
	return w.run(ctx, shadow.PhasePreRestore, w.cfg.PreRestore, doc)
}

// PostRestore runs the post-restore command.
func (w *Exec) PostRestore(ctx context.Context, doc *shadow.BackupComponents) error {
	return w.run(ctx, shadow.PhasePostRestore, w.cfg.PostRestore, doc)
}
