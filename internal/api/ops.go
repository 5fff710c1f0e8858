package api

// What an operator watches the node with: Prometheus metrics at /metrics
// and the read-only dashboard at /ui/, with its login by token and its
// session cookie.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/dashboard"
	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/clusterkeep/clusterkeep/internal/ui"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// Option configures a Server.
type Option func(*ops)

// WithMetrics serves h (the agent's Prometheus registry) at GET /metrics.
func WithMetrics(h http.Handler) Option { return func(o *ops) { o.metrics = h } }

// WithPlacement serves the nodes' lease renewals and the groups' status
// from the node's placement engine.
func WithPlacement(e *placement.Engine) Option { return func(o *ops) { o.placement = e } }

// WithBackupSource adds a source of backups to the dashboard's backups
// page, after the node's own shadow-copy sessions.
func WithBackupSource(b dashboard.BackupSource) Option {
	return func(o *ops) { o.backups = append(o.backups, b) }
}

// WithPeerHistory lets the dashboard list every member's backup and
// restore sessions: fetch asks the member at an API address for its
// coordinator's history (GET /v1/shadow/history), as a member node.
func WithPeerHistory(fetch func(ctx context.Context, addr string) (shadow.History, error)) Option {
	return func(o *ops) { o.peerHistory = fetch }
}

// ops is the server's metrics handler and dashboard.
type ops struct {
	metrics     http.Handler
	peerHistory func(ctx context.Context, addr string) (shadow.History, error)
	backups     []dashboard.BackupSource
	ui          *dashboard.UI
	placement   *placement.Engine
}

// SessionCookie holds the dashboard's token. The __Host- prefix makes the
// browser keep it only when set Secure, for the path /, by this host.
const SessionCookie = "__Host-clusterkeep-token"

// sessionTTL is how long the dashboard's cookie lasts.
const sessionTTL = 12 * time.Hour

func (s *Server) setUpOps(opts []Option) {
	for _, o := range opts {
		o(&s.ops)
	}
	self := func() string { return s.svc.Identity().NodeName }
	var sessions dashboard.BackupSource = dashboard.Sessions{Coord: s.coord, Node: self}
	if s.ops.peerHistory != nil {
		sessions = dashboard.ClusterSessions{Own: dashboard.Sessions{Coord: s.coord, Node: self}, Self: self,
			Peers: s.peers, Fetch: s.ops.peerHistory}
	}
	s.ops.ui = dashboard.New(uiSource{s}, s.log, append([]dashboard.BackupSource{sessions}, s.ops.backups...)...)
}

// peers are the members with their API addresses, for the dashboard.
func (s *Server) peers() ([]dashboard.Peer, error) {
	ms, err := s.svc.Members()
	if err != nil {
		return nil, err
	}
	out := make([]dashboard.Peer, 0, len(ms))
	for _, m := range ms {
		out = append(out, dashboard.Peer{Name: m.Name, APIAddr: m.APIAddr})
	}
	return out, nil
}

// shadowHistory answers GET /v1/shadow/history: what this node's
// coordinator served, its recent sessions newest first.
func (s *Server) shadowHistory(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.coord.History())
}

// opsRoutes are the metrics and the dashboard. The dashboard's pages need
// the read role, which a browser proves with the cookie /ui/login sets;
// only the login form itself is public.
func (s *Server) opsRoutes() []route {
	return []route{
		{"GET /metrics", accessRead, s.serveMetrics},
		{"GET /v1/shadow/history", accessRead, s.shadowHistory},
		{"GET /ui/login", accessPublic, s.loginPage},
		{"POST /ui/login", accessPublic, s.login},
		{"POST /ui/logout", accessPublic, s.logout},
		{"GET /ui/static/", accessPublic, s.uiStatic},
		{"GET /ui/{$}", accessRead, s.uiPage(func(u *dashboard.UI) http.HandlerFunc { return u.Overview })},
		{"GET /ui/groups", accessRead, s.uiPage(func(u *dashboard.UI) http.HandlerFunc { return u.GroupsPage })},
		{"GET /ui/api/groups", accessRead, s.uiPage(func(u *dashboard.UI) http.HandlerFunc { return u.GroupsJSON })},
		{"GET /ui/hive", accessRead, s.uiPage(func(u *dashboard.UI) http.HandlerFunc { return u.Hive })},
		{"GET /ui/backups", accessRead, s.uiPage(func(u *dashboard.UI) http.HandlerFunc { return u.Backups })},
		{"GET /ui/api/cluster", accessRead, s.uiPage(func(u *dashboard.UI) http.HandlerFunc { return u.ClusterJSON })},
		{"GET /ui", accessPublic, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui/", http.StatusMovedPermanently) }},
	}
}

// uiPage serves one of the dashboard's handlers.
func (s *Server) uiPage(h func(*dashboard.UI) http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h(s.ops.ui)(w, r) }
}

func (s *Server) uiStatic(w http.ResponseWriter, r *http.Request) { s.ops.ui.Static(w, r) }

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.ops.metrics == nil {
		writeJSON(w, http.StatusNotFound, wire.Error{Code: wire.CodeNotFound, Message: "this node serves no metrics"})
		return
	}
	s.ops.metrics.ServeHTTP(w, r)
}

// uiRedirect sends a browser (a client that accepts HTML) asking for a
// dashboard page without a valid session to the login form; other clients
// get the API's 401. It reports whether it answered.
func uiRedirect(w http.ResponseWriter, r *http.Request, err error) bool {
	if r.Method != http.MethodGet || !errors.Is(err, ErrUnauthenticated) || !strings.Contains(r.Header.Get("Accept"), "text/html") ||
		!strings.HasPrefix(r.URL.Path, "/ui/") || strings.HasPrefix(r.URL.Path, "/ui/api/") {
		return false
	}
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	return true
}

// cookieCaller is the caller a session cookie makes: the cookie is taken
// for GET and HEAD only, and grants the read role only, whatever the
// token's roles. A request that changes anything needs the Authorization
// header, which a browser never adds by itself to a forged request.
func (s *Server) cookieCaller(r *http.Request, c caller) (caller, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return c, false
	}
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return c, false
	}
	t, err := s.authenticate(r.Context(), ck.Value)
	if err != nil {
		// A session whose token was revoked is no session: the caller
		// is anonymous (and a dashboard page sends it to log in again).
		return c, false
	}
	c.roles, c.name = readOnly(t.Roles), "token "+t.Name+" (dashboard session)"
	return c, true
}

// authenticate checks an API token, catching up with the leader first when
// this node does not know it yet (a token made a moment ago).
func (s *Server) authenticate(ctx context.Context, token string) (cluster.Token, error) {
	t, err := s.svc.Authenticate(strings.TrimSpace(token))
	if errors.Is(err, cluster.ErrUnknownToken) && s.catchUp(ctx) == nil {
		t, err = s.svc.Authenticate(strings.TrimSpace(token))
	}
	return t, err
}

// sameOrigin refuses a form posted from another site (login CSRF): the
// browser's Sec-Fetch-Site, else its Origin, must name this server.
func sameOrigin(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "same-origin", "none":
		return nil
	case "":
	default:
		return fmt.Errorf("%w: a form posted from another site (Sec-Fetch-Site: %s)", ErrForbidden, site)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil // not a browser's cross-site post: those carry one
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Errorf("%w: a form posted from another origin (%s)", ErrForbidden, origin)
	}
	return nil
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.ops.ui.Login(w, http.StatusOK, "")
}

// login checks the pasted token and keeps it in the session cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		s.ops.ui.Login(w, http.StatusForbidden, err.Error())
		return
	}
	if err := r.ParseForm(); err != nil {
		s.ops.ui.Login(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		s.ops.ui.Login(w, http.StatusBadRequest, "Paste a token.")
		return
	}
	if _, err := s.authenticate(r.Context(), token); err != nil {
		s.log.Info("dashboard login refused", "remote", r.RemoteAddr, "err", err)
		s.ops.ui.Login(w, http.StatusUnauthorized, "That token is not valid here: "+err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// logout forgets the session cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		writeError(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// Members counts the cluster's members and those Up, as this node sees
// them: its own records, and each member asked for its state (for the
// metrics).
func (s *Server) Members(ctx context.Context) (total, up int, err error) {
	if !s.svc.Identity().Configured() {
		return 0, 0, nil
	}
	info, err := s.gatherClusterInfo(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, n := range info.Nodes {
		if n.State == wire.NodeUp {
			up++
		}
	}
	return len(info.Nodes), up, nil
}

// uiSource gives the dashboard this node's view: stale reads of its own
// hive (the page shows what this node knows, even without a quorum) and
// its members' states from asking them.
type uiSource struct{ s *Server }

func (u uiSource) Cluster(ctx context.Context) (dashboard.Cluster, error) {
	if !u.s.svc.Identity().Configured() {
		return dashboard.Cluster{AnsweredBy: u.s.svc.Identity().NodeName}, cluster.ErrNotConfigured
	}
	info, err := u.s.gatherClusterInfo(ctx)
	if err != nil {
		return dashboard.Cluster{}, err
	}
	c := dashboard.Cluster{Name: info.Name, ID: info.ID, Generation: info.Generation, Leader: info.Leader,
		Commit: info.Commit, Seq: info.Seq, AnsweredBy: info.AnsweredBy, Nodes: make([]dashboard.Node, 0, len(info.Nodes))}
	for _, n := range info.Nodes {
		c.Nodes = append(c.Nodes, dashboard.Node{Name: n.Name, ID: n.ID, State: string(n.State), Why: n.Why, Leader: n.Leader && n.State != wire.NodeDown,
			APIAddr: n.APIAddr, Applied: n.Applied, Seq: n.Seq})
	}
	return c, nil
}

// uiLeaderTimeout bounds asking the leader for the groups: past it, the
// page shows this node's own records of them.
const uiLeaderTimeout = 2 * time.Second

// Groups are the groups as the leader sees them, with what their owners
// report; when the leader cannot be asked, this node's own records of them
// (the owners report to the leader only).
func (u uiSource) Groups(ctx context.Context) (dashboard.Groups, error) {
	self := u.s.svc.Identity()
	out := dashboard.Groups{AnsweredBy: self.NodeName, Groups: []dashboard.Group{}}
	if !self.Configured() {
		return out, cluster.ErrNotConfigured
	}
	lctx, cancel := context.WithTimeout(ctx, uiLeaderTimeout)
	list, leader, err := u.leaderGroups(lctx)
	cancel()
	if err == nil {
		out.Leader = leader
	} else {
		out.Note = err.Error()
		if list, _, err = u.s.recordedGroups(); err != nil {
			return out, err
		}
	}
	for _, g := range list {
		dg := dashboard.Group{Name: g.Name, Wanted: g.Wanted, State: g.State, Reason: g.Reason, Owner: g.Owner, Next: g.Next,
			OwnerReport: g.OwnerReport, Failovers: g.Failovers, FailoverThreshold: g.FailoverThreshold,
			FailoverPeriod: ui.ShortDuration(time.Duration(g.FailoverPeriod)), Held: g.Held, LastFailure: g.LastFailure, LastFailureAt: g.LastFailureAt}
		for _, r := range g.Resources {
			dg.Resources = append(dg.Resources, dashboard.Resource{Name: r.Name, State: r.State, Restarts: r.Restarts,
				LastFailure: r.LastFailure, LastFailureAt: r.LastFailureAt})
		}
		out.Groups = append(out.Groups, dg)
	}
	return out, nil
}

// leaderGroups asks the leader (this node, or another as this node) for
// the groups' status, and names it.
func (u uiSource) leaderGroups(ctx context.Context) ([]placement.GroupStatus, string, error) {
	s := u.s
	if s.svc.ReadyTerm() != 0 && s.ops.placement != nil {
		list, err := s.groupStatuses(ctx)
		return list, s.svc.Identity().NodeName, err
	}
	addr, err := s.svc.LeaderAPI()
	if err != nil {
		return nil, "", fmt.Errorf("find the leader: %w", err)
	}
	leader := addr
	if ms, err := s.svc.Members(); err == nil {
		for _, m := range ms {
			if m.APIAddr == addr {
				leader = m.Name
			}
		}
	}
	var list []placement.GroupStatus
	if err := s.call(ctx, http.MethodGet, addr, "/v1/groups/status", &list); err != nil {
		return nil, "", fmt.Errorf("ask the leader %s: %w", leader, err)
	}
	return list, leader, nil
}

func (u uiSource) Key(ctx context.Context, path string) (hive.Key, error) {
	if reserved.IsSecret(path) {
		return hive.Key{}, fmt.Errorf("%w: %s holds the cluster's secrets and is not served", ErrForbidden, reserved.SecurityKey)
	}
	k, err := u.s.svc.Hive().Get(path)
	if err != nil {
		return k, err
	}
	kept := k.Subkeys[:0:0]
	for _, sub := range k.Subkeys {
		if !reserved.IsSecret(strings.TrimPrefix(k.Path+"/"+sub, "/")) {
			kept = append(kept, sub)
		}
	}
	k.Subkeys = kept
	return k, nil
}

// readOnly is what a dashboard session may do with a token of roles.
func readOnly(roles []security.Role) []security.Role {
	if len(roles) == 0 {
		return nil
	}
	return []security.Role{security.RoleRead}
}
