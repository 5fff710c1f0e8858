// Package shadow is the shadow-copy framework, modelled on the Volume
// Shadow Copy Service: the coordinator that runs on each node, the writer
// and provider interfaces, the writer metadata and backup components
// documents, and the requester's sequence of calls for a backup and for a
// restore.
//
// It knows no particular writer (see internal/writers) and never decides
// what to back up or where to store it: the requester (internal/backup,
// internal/restore) does.
package shadow

import (
	"fmt"

	"github.com/google/uuid"
)

// RestoreMethod says how a writer's data is put back.
type RestoreMethod string

// The restore methods, with the names the Volume Shadow Copy Service uses.
const (
	RestoreIfNotThere              RestoreMethod = "RESTORE_IF_NOT_THERE"
	RestoreIfCanReplace            RestoreMethod = "RESTORE_IF_CAN_REPLACE"
	StopRestoreStart               RestoreMethod = "STOP_RESTORE_START"
	RestoreToAlternateLocation     RestoreMethod = "RESTORE_TO_ALTERNATE_LOCATION"
	RestoreAtReboot                RestoreMethod = "RESTORE_AT_REBOOT"
	RestoreAtRebootIfCannotReplace RestoreMethod = "RESTORE_AT_REBOOT_IF_CANNOT_REPLACE"
	RestoreCustom                  RestoreMethod = "CUSTOM"
	RestoreStopStart               RestoreMethod = "RESTORE_STOP_START"
)

// RestoreMethods lists every method.
var RestoreMethods = []RestoreMethod{RestoreIfNotThere, RestoreIfCanReplace, StopRestoreStart, RestoreToAlternateLocation,
	RestoreAtReboot, RestoreAtRebootIfCannotReplace, RestoreCustom, RestoreStopStart}

// ParseRestoreMethod validates a method name.
func ParseRestoreMethod(s string) (RestoreMethod, error) {
	for _, m := range RestoreMethods {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown restore method %q (want one of %v)", s, RestoreMethods)
}

// UsageType says what a writer's data is to the system.
type UsageType string

// Usage types.
const (
	UsageBootableSystemState UsageType = "BOOTABLE_SYSTEM_STATE"
	UsageSystemService       UsageType = "SYSTEM_SERVICE"
	UsageUserData            UsageType = "USER_DATA"
)

// ComponentType is a component's kind.
type ComponentType string

// Component types.
const (
	ComponentDatabase  ComponentType = "database"
	ComponentFileGroup ComponentType = "filegroup"
)

// Component is one unit of a writer's data that a requester can select.
type Component struct {
	LogicalPath string        `json:"logical_path"`
	Name        string        `json:"name"`
	Type        ComponentType `json:"type"`
	// Files are the absolute paths of the files the component owns, for
	// the provider to snapshot while the writer is frozen.
	Files []string `json:"files,omitempty"`
	// Streams are the names of the streams a self-checkpointing writer
	// hands over instead of files.
	Streams []string `json:"streams,omitempty"`
}

// Key is the component's identity within its writer.
func (c Component) Key() string { return c.LogicalPath + "\\" + c.Name }

// WriterMetadata is the writer metadata document (Identify's answer).
type WriterMetadata struct {
	Name          string        `json:"name"`
	ID            string        `json:"id"`
	InstanceID    string        `json:"instance_id"`
	UsageType     UsageType     `json:"usage_type"`
	RestoreMethod RestoreMethod `json:"restore_method"`
	// Service is what RESTORE_STOP_START and STOP_RESTORE_START stop and start.
	Service    string      `json:"service,omitempty"`
	Components []Component `json:"components"`
}

// Validate checks a metadata document.
func (m WriterMetadata) Validate() error {
	if m.Name == "" {
		return fmt.Errorf("writer metadata: no name")
	}
	if _, err := uuid.Parse(m.ID); err != nil {
		return fmt.Errorf("writer %q: id %q is not a UUID", m.Name, m.ID)
	}
	if _, err := ParseRestoreMethod(string(m.RestoreMethod)); err != nil {
		return fmt.Errorf("writer %q: %w", m.Name, err)
	}
	seen := map[string]bool{}
	for _, c := range m.Components {
		if c.Name == "" {
			return fmt.Errorf("writer %q: a component has no name", m.Name)
		}
		if seen[c.Key()] {
			return fmt.Errorf("writer %q: component %s twice", m.Name, c.Key())
		}
		seen[c.Key()] = true
		if c.Type != ComponentDatabase && c.Type != ComponentFileGroup {
			return fmt.Errorf("writer %q: component %s: type %q", m.Name, c.Key(), c.Type)
		}
	}
	return nil
}

// Component finds a component by logical path and name.
func (m WriterMetadata) Component(logicalPath, name string) (Component, bool) {
	for _, c := range m.Components {
		if c.LogicalPath == logicalPath && c.Name == name {
			return c, true
		}
	}
	return Component{}, false
}
