package shadow

import (
	"fmt"
	"time"
)

// BackupType is a backup's type.
type BackupType string

// Backup types: a full backup marks the data backed up (writers may, say,
// truncate logs at BackupComplete); a copy backup leaves no trace.
const (
	BackupFull BackupType = "full"
	BackupCopy BackupType = "copy"
)

// SelectedComponent is a component the requester added to the document.
type SelectedComponent struct {
	WriterID    string `json:"writer_id"`
	WriterName  string `json:"writer_name"`
	LogicalPath string `json:"logical_path"`
	Name        string `json:"name"`
	// At restore: whether the requester selected it, whether the restore is
	// authoritative (SetAuthoritativeRestore), and an alternate target.
	SelectedForRestore bool   `json:"selected_for_restore,omitempty"`
	Authoritative      bool   `json:"authoritative,omitempty"`
	RestoreTarget      string `json:"restore_target,omitempty"`
	// Files are the names, inside the backup, of what was captured.
	Files []string `json:"files,omitempty"`
}

// Key identifies the component in the document.
func (s SelectedComponent) Key() string { return s.WriterID + "/" + s.LogicalPath + "\\" + s.Name }

// PhaseStatus is how one writer ended a phase.
type PhaseStatus struct {
	Phase     Phase       `json:"phase"`
	State     WriterState `json:"state"`
	Error     string      `json:"error,omitempty"`
	Retryable bool        `json:"retryable,omitempty"`
}

// BackupComponents is the backup components document: what the requester
// selected and how each writer fared. It is stored with every backup and
// read back at restore.
type BackupComponents struct {
	BackupID   string              `json:"backup_id"`
	BackupType BackupType          `json:"backup_type"`
	Created    time.Time           `json:"created"`
	Components []SelectedComponent `json:"components"`
	// WriterStatus holds, per writer id, the status each phase ended in.
	WriterStatus map[string][]PhaseStatus `json:"writer_status"`
}

func (d *BackupComponents) find(writerID, logicalPath, name string) (*SelectedComponent, error) {
	for i := range d.Components {
		c := &d.Components[i]
		if c.WriterID == writerID && c.LogicalPath == logicalPath && c.Name == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w: writer %s component %s\\%s", ErrNoComponent, writerID, logicalPath, name)
}

// Selected returns the components of writerID selected in the document.
func (d *BackupComponents) Selected(writerID string) []SelectedComponent {
	var out []SelectedComponent
	for _, c := range d.Components {
		if c.WriterID == writerID {
			out = append(out, c)
		}
	}
	return out
}

func (d *BackupComponents) record(writerID string, st PhaseStatus) {
	if d.WriterStatus == nil {
		d.WriterStatus = map[string][]PhaseStatus{}
	}
	d.WriterStatus[writerID] = append(d.WriterStatus[writerID], st)
}
