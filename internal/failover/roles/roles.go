// Package roles describes resources and groups as the cluster records them,
// and validates them. A resource is something a node runs (a command, a
// systemd unit); a group (a role) is an ordered set of resources placed and
// moved together. Nothing here acts on them: internal/placement decides
// where groups run, internal/resmgr runs them on a node.
package roles

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ErrInvalid: a resource or group is not valid (the message says why).
var ErrInvalid = errors.New("invalid")

// invalidError is an ErrInvalid whose message is only the reason.
type invalidError struct{ msg string }

func (e invalidError) Error() string        { return e.msg }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error {
	return invalidError{fmt.Sprintf(format, args...)}
}

// Defaults applied by Normalize to what is left unset.
const (
	DefaultMonitorInterval = 10 * time.Second
	DefaultMonitorTimeout  = 5 * time.Second
	DefaultStartTimeout    = 30 * time.Second
	DefaultStopTimeout     = 10 * time.Second
	DefaultFailoverPeriod  = 6 * time.Hour
)

// Failback policies.
const (
	FailbackNever       = "never"
	FailbackImmediately = "immediately"
	FailbackWindow      = "window"
)

// Wanted states of a group.
const (
	WantedOnline  = "online"
	WantedOffline = "offline"
)

// Duration is a time.Duration written in JSON as Go's duration text
// ("30s", "6h").
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads Go's duration text (or a number of nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return invalid("a duration is text such as \"30s\": %v", err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return invalid("duration %q: %v", s, err)
	}
	*d = Duration(v)
	return nil
}

// Resource is one thing a node runs.
type Resource struct {
	Name string `json:"name"`
	// Type names a registered type ("exec", "systemd").
	Type string `json:"type"`
	// Params are the type's parameters (see the type's Validate).
	Params map[string]string `json:"params,omitempty"`
	// MonitorInterval is how often the resource is checked; MonitorTimeout
	// how long one check may take.
	MonitorInterval Duration `json:"monitor_interval,omitempty"`
	MonitorTimeout  Duration `json:"monitor_timeout,omitempty"`
	// StartTimeout is how long a started resource may take to pass its
	// first check; StopTimeout how long a graceful stop may take before
	// the resource is killed.
	StartTimeout Duration `json:"start_timeout,omitempty"`
	StopTimeout  Duration `json:"stop_timeout,omitempty"`
	// RestartLimit is how many times a failed resource is restarted on the
	// same node before its group fails over (0: fail over at once).
	RestartLimit int `json:"restart_limit"`
}

// Failback says whether a group returns to a more preferred owner when
// that node comes back.
type Failback struct {
	// Policy is never, immediately, or window.
	Policy string `json:"policy"`
	// WindowStart and WindowEnd ("HH:MM", UTC) bound the daily window of
	// the window policy; a window may cross midnight.
	WindowStart string `json:"window_start,omitempty"`
	WindowEnd   string `json:"window_end,omitempty"`
}

// Group is a role: resources started in order and stopped in reverse, on
// one node at a time.
type Group struct {
	Name string `json:"name"`
	// Resources in start order (stopped in reverse).
	Resources []string `json:"resources"`
	// PossibleOwners names the nodes the group may run on (empty: all).
	PossibleOwners []string `json:"possible_owners,omitempty"`
	// PreferredOwners is the order in which nodes are tried.
	PreferredOwners []string `json:"preferred_owners,omitempty"`
	// At most FailoverThreshold failovers in FailoverPeriod; then the
	// group stays offline. A threshold of 0 means no automatic failover.
	FailoverThreshold int      `json:"failover_threshold"`
	FailoverPeriod    Duration `json:"failover_period,omitempty"`
	Failback          Failback `json:"failback"`
	// Wanted is the operator's wanted state: online or offline.
	Wanted string `json:"wanted"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidName checks a resource or group name: 1 to 63 letters, digits, '.',
// '_' or '-', starting with a letter or digit. Names are matched without
// regard to case.
func ValidName(what, name string) error {
	if !nameRE.MatchString(name) {
		return invalid("%s name %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", what, name)
	}
	return nil
}

// Normalize fills what is unset with the defaults.
func (r *Resource) Normalize() {
	if r.MonitorInterval == 0 {
		r.MonitorInterval = Duration(DefaultMonitorInterval)
	}
	if r.MonitorTimeout == 0 {
		r.MonitorTimeout = Duration(DefaultMonitorTimeout)
	}
	if r.StartTimeout == 0 {
		r.StartTimeout = Duration(DefaultStartTimeout)
	}
	if r.StopTimeout == 0 {
		r.StopTimeout = Duration(DefaultStopTimeout)
	}
	if r.Params == nil {
		r.Params = map[string]string{}
	}
}

// Validate checks the resource on its own (after Normalize).
func (r Resource) Validate() error {
	if err := ValidName("resource", r.Name); err != nil {
		return err
	}
	t, err := Lookup(r.Type)
	if err != nil {
		return fmt.Errorf("resource %s: %w", r.Name, err)
	}
	if err := t.Validate(r.Params); err != nil {
		return fmt.Errorf("resource %s: %w", r.Name, err)
	}
	switch {
	case r.MonitorInterval <= 0:
		return invalid("resource %s: monitor interval %s must be positive", r.Name, time.Duration(r.MonitorInterval))
	case r.MonitorTimeout <= 0:
		return invalid("resource %s: monitor timeout %s must be positive", r.Name, time.Duration(r.MonitorTimeout))
	case r.MonitorTimeout > r.MonitorInterval:
		return invalid("resource %s: monitor timeout %s is longer than the interval %s", r.Name, time.Duration(r.MonitorTimeout), time.Duration(r.MonitorInterval))
	case r.StartTimeout <= 0:
		return invalid("resource %s: start timeout %s must be positive", r.Name, time.Duration(r.StartTimeout))
	case r.StopTimeout <= 0:
		return invalid("resource %s: stop timeout %s must be positive", r.Name, time.Duration(r.StopTimeout))
	case r.RestartLimit < 0:
		return invalid("resource %s: restart limit %d is negative", r.Name, r.RestartLimit)
	}
	return nil
}

// Normalize fills what is unset with the defaults.
func (g *Group) Normalize() {
	if g.Resources == nil {
		g.Resources = []string{}
	}
	if g.Failback.Policy == "" {
		g.Failback.Policy = FailbackNever
	}
	if g.Wanted == "" {
		g.Wanted = WantedOffline
	}
	if g.FailoverPeriod == 0 {
		g.FailoverPeriod = Duration(DefaultFailoverPeriod)
	}
}

// Validate checks the group on its own (after Normalize); Check checks it
// against the resources and members the cluster records.
func (g Group) Validate() error {
	if err := ValidName("group", g.Name); err != nil {
		return err
	}
	if err := unique("group "+g.Name+": resource", g.Resources); err != nil {
		return err
	}
	for _, r := range g.Resources {
		if err := ValidName("resource", r); err != nil {
			return fmt.Errorf("group %s: %w", g.Name, err)
		}
	}
	if err := unique("group "+g.Name+": possible owner", g.PossibleOwners); err != nil {
		return err
	}
	if err := unique("group "+g.Name+": preferred owner", g.PreferredOwners); err != nil {
		return err
	}
	if len(g.PossibleOwners) > 0 {
		possible := fold(g.PossibleOwners)
		for _, p := range g.PreferredOwners {
			if !possible[strings.ToLower(p)] {
				return invalid("group %s: preferred owner %s is not among its possible owners", g.Name, p)
			}
		}
	}
	for _, n := range append(append([]string{}, g.PossibleOwners...), g.PreferredOwners...) {
		if strings.TrimSpace(n) == "" {
			return invalid("group %s: an owner's name is empty", g.Name)
		}
	}
	switch {
	case g.FailoverThreshold < 0:
		return invalid("group %s: failover threshold %d is negative", g.Name, g.FailoverThreshold)
	case g.FailoverPeriod <= 0:
		return invalid("group %s: failover period %s must be positive", g.Name, time.Duration(g.FailoverPeriod))
	}
	fb := g.Failback
	switch fb.Policy {
	case FailbackNever, FailbackImmediately:
		if fb.WindowStart != "" || fb.WindowEnd != "" {
			return invalid("group %s: a failback window is only for the %q policy, not %q", g.Name, FailbackWindow, fb.Policy)
		}
	case FailbackWindow:
		s, err := clock(fb.WindowStart)
		if err != nil {
			return invalid("group %s: failback window start: %v", g.Name, err)
		}
		e, err := clock(fb.WindowEnd)
		if err != nil {
			return invalid("group %s: failback window end: %v", g.Name, err)
		}
		if s == e {
			return invalid("group %s: the failback window starts and ends at %s", g.Name, fb.WindowStart)
		}
	default:
		return invalid("group %s: failback policy %q: use never, immediately or window", g.Name, fb.Policy)
	}
	if g.Wanted != WantedOnline && g.Wanted != WantedOffline {
		return invalid("group %s: wanted state %q: use online or offline", g.Name, g.Wanted)
	}
	return nil
}

// Check validates g against the cluster's records: resources maps each
// recorded resource's name (any case) to the group that holds it ("" for
// none), members lists the members' names. Every resource must exist and
// be in no other group; every owner must be a member.
func (g Group) Check(resources map[string]string, members []string) error {
	held := map[string]string{}
	for name, grp := range resources {
		held[strings.ToLower(name)] = grp
	}
	for _, r := range g.Resources {
		grp, ok := held[strings.ToLower(r)]
		switch {
		case !ok:
			return invalid("group %s: no resource named %s", g.Name, r)
		case grp != "" && !strings.EqualFold(grp, g.Name):
			return invalid("group %s: resource %s is already in group %s", g.Name, r, grp)
		}
	}
	m := fold(members)
	for _, n := range append(append([]string{}, g.PossibleOwners...), g.PreferredOwners...) {
		if !m[strings.ToLower(n)] {
			return invalid("group %s: owner %s is not a member of the cluster", g.Name, n)
		}
	}
	return nil
}

// Owners lists the nodes g names as owners, possible and preferred, once
// each (lower case).
func (g Group) Owners() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range append(append([]string{}, g.PossibleOwners...), g.PreferredOwners...) {
		if l := strings.ToLower(n); !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

func unique(what string, names []string) error {
	seen := map[string]bool{}
	for _, n := range names {
		l := strings.ToLower(n)
		if seen[l] {
			return invalid("%s %s is listed twice", what, n)
		}
		seen[l] = true
	}
	return nil
}

func fold(names []string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[strings.ToLower(n)] = true
	}
	return m
}

// clock parses "HH:MM" (24-hour) into minutes after midnight.
func clock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, fmt.Errorf("%q is not a time of day as HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}
