// Package dashboard is the read-only web page every agent serves under
// /ui/: the cluster and its members, the resource groups, the hive browser
// and the backups this node knows of. Pages are rendered on the server
// with html/template; one small script (no build step) polls JSON
// endpoints to keep the member and group tables current. Assets are
// embedded in the binary.
//
// The package renders only: authentication (the login form's token, the
// session cookie) and the routes' access checks belong to internal/api,
// which mounts these handlers and gives them a Source.
package dashboard

import (
	"context"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/hive"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Cluster is the cluster as the answering node sees it.
type Cluster struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Generation uint64 `json:"generation"`
	Leader     string `json:"leader"`
	Commit     uint64 `json:"commit_index"`
	Seq        uint64 `json:"seq"`
	AnsweredBy string `json:"answered_by"`
	Nodes      []Node `json:"nodes"`
}

// Node is one member and its state.
type Node struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	State   string `json:"state"` // Up, Down, Joining, Paused
	Why     string `json:"why,omitempty"`
	Leader  bool   `json:"leader"`
	APIAddr string `json:"api_addr"`
	Applied uint64 `json:"applied_index"`
	Seq     uint64 `json:"seq"`
}

// Source gives the dashboard what it shows. Key must refuse what the API
// refuses (the cluster's secrets) and leave such subkeys out.
type Source interface {
	Cluster(ctx context.Context) (Cluster, error)
	Groups(ctx context.Context) (Groups, error)
	Key(ctx context.Context, path string) (hive.Key, error)
}

// Backup is one backup (or restore) as a BackupSource knows it.
type Backup struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"` // backup or restore
	Type    string    `json:"type,omitempty"`
	Where   string    `json:"where,omitempty"` // the node or target
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	Result  string    `json:"result"` // running, completed, failed
	Bytes   int64     `json:"bytes"`
	// Verified is the verification state when the source knows it
	// ("verified", "failed"), empty when it does not.
	Verified string `json:"verified,omitempty"`
	Error    string `json:"error,omitempty"`
}

// BackupSource lists backups. The node's own shadow-copy sessions are one
// (see Sessions); backup targets and schedules add theirs through
// UI.AddBackupSource.
type BackupSource interface {
	// Name titles the source's table.
	Name() string
	Backups(ctx context.Context) ([]Backup, error)
}

// UI renders the dashboard.
type UI struct {
	src     Source
	backups []BackupSource
	log     *slog.Logger
	pages   map[string]*template.Template
	static  http.Handler
}

// pages are the parsed templates, one per page: they are part of the
// binary, so a template that does not parse fails every test at once.
var pages = func() map[string]*template.Template {
	funcs := template.FuncMap{"value": formatValue, "bytes": formatBytes, "when": formatTime, "join": joinPath, "crumbs": crumbs}
	out := map[string]*template.Template{}
	for _, page := range []string{"overview", "groups", "hive", "backups", "login"} {
		out[page] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+page+".html"))
	}
	return out
}()

// New returns the dashboard of src, listing the backups of the sources given.
func New(src Source, log *slog.Logger, backups ...BackupSource) *UI {
	sub, err := fs.Sub(assets, "static")
	if err != nil {
		panic(err) // "static" is a valid name: fs.Sub cannot fail
	}
	return &UI{src: src, backups: backups, log: log, pages: pages,
		static: http.StripPrefix("/ui/static/", http.FileServerFS(sub))}
}

// AddBackupSource adds a source to the backups page (call before serving).
func (u *UI) AddBackupSource(b BackupSource) { u.backups = append(u.backups, b) }

// page is what every template gets.
type page struct {
	Title    string
	Nav      string
	LoggedIn bool
	Error    string
	Data     any
}

// securityHeaders keeps the pages from being framed, sniffed, cached or
// running anything but their own script.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func (u *UI) render(w http.ResponseWriter, status int, name string, p page) {
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := u.pages[name].Execute(w, p); err != nil {
		u.log.Warn("dashboard: render", "page", name, "err", err)
	}
}

// Overview serves /ui/: the cluster, its leader, generation and members.
func (u *UI) Overview(w http.ResponseWriter, r *http.Request) {
	c, err := u.src.Cluster(r.Context())
	p := page{Title: "Cluster", Nav: "overview", LoggedIn: true, Data: c}
	if err != nil {
		p.Error = err.Error()
	}
	u.render(w, http.StatusOK, "overview", p)
}

// ClusterJSON serves /ui/api/cluster, which the page's script polls.
func (u *UI) ClusterJSON(w http.ResponseWriter, r *http.Request) {
	c, err := u.src.Cluster(r.Context())
	pollJSON(w, c, err)
}

// pollJSON answers a page script's poll: v, or the error (503), never
// cached.
func pollJSON(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}

// hiveView is the hive page's data.
type hiveView struct {
	Key hive.Key
}

// Hive serves /ui/hive?key=PATH: a key's subkeys and typed values.
func (u *UI) Hive(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Query().Get("key")
	k, err := u.src.Key(r.Context(), path)
	p := page{Title: "Hive", Nav: "hive", LoggedIn: true, Data: hiveView{Key: k}}
	status := http.StatusOK
	if err != nil {
		p.Error, status = err.Error(), http.StatusNotFound
		p.Data = hiveView{Key: hive.Key{Path: path}}
	}
	u.render(w, status, "hive", p)
}

// backupTable is one source's backups on the backups page.
type backupTable struct {
	Name    string
	Backups []Backup
	Error   string
}

// Backups serves /ui/backups: every source's backups.
func (u *UI) Backups(w http.ResponseWriter, r *http.Request) {
	var tables []backupTable
	for _, s := range u.backups {
		bs, err := s.Backups(r.Context())
		t := backupTable{Name: s.Name(), Backups: bs}
		if err != nil {
			t.Error = err.Error()
		}
		tables = append(tables, t)
	}
	u.render(w, http.StatusOK, "backups", page{Title: "Backups", Nav: "backups", LoggedIn: true, Data: tables})
}

// Login renders the login form, with msg when the last attempt failed.
func (u *UI) Login(w http.ResponseWriter, status int, msg string) {
	u.render(w, status, "login", page{Title: "Log in", Nav: "login", Error: msg})
}

// Static serves /ui/static/: the stylesheet and the script.
func (u *UI) Static(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	u.static.ServeHTTP(w, r)
}

// formatValue shows a value's data in the hive's text form.
func formatValue(v hive.Value) string {
	switch v.Type {
	case hive.TypeString:
		return strconv.Quote(v.String)
	case hive.TypeMultiString:
		q := make([]string, len(v.Strings))
		for i, s := range v.Strings {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	case hive.TypeUint32:
		return fmt.Sprintf("%d (0x%x)", v.Uint32, v.Uint32)
	case hive.TypeUint64:
		return fmt.Sprintf("%d (0x%x)", v.Uint64, v.Uint64)
	default:
		const show = 64
		if len(v.Binary) > show {
			return fmt.Sprintf("%s… (%d bytes)", hex.EncodeToString(v.Binary[:show]), len(v.Binary))
		}
		return hex.EncodeToString(v.Binary)
	}
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// joinPath is the path of a subkey.
func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "/" + name
}

// crumb is one step of a key's path.
type crumb struct{ Name, Path string }

// crumbs splits a key path into links to each ancestor.
func crumbs(path string) []crumb {
	var out []crumb
	parts := slices.DeleteFunc(strings.Split(path, "/"), func(s string) bool { return s == "" })
	for i, p := range parts {
		out = append(out, crumb{Name: p, Path: strings.Join(parts[:i+1], "/")})
	}
	return out
}
