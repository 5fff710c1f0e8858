package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/hive"
	"github.com/clusterkeep/clusterkeep/internal/reserved"
	"github.com/clusterkeep/clusterkeep/internal/schedule"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/shadow"
	"github.com/clusterkeep/clusterkeep/internal/version"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/clusterkeep/clusterkeep/internal/wire/hiveconv"
)

// maxBody bounds a request body: the largest transaction plus its framing.
const maxBody = hive.MaxTxnBytes*2 + 1<<20

// probeTimeout bounds asking one member for its status.
const probeTimeout = time.Second

// Server serves the cluster API of one node.
type Server struct {
	svc   *cluster.Service
	coord *shadow.Coordinator
	log   *slog.Logger
	http  *http.Client
	mux   *http.ServeMux
	// lastCatchUp is when an unknown token last made this node catch up.
	lastCatchUp atomic.Int64
	ops         ops // metrics and the dashboard
}

// NewServer returns the API handler for svc.
func NewServer(svc *cluster.Service, coord *shadow.Coordinator, log *slog.Logger, opts ...Option) *Server {
	s := &Server{svc: svc, coord: coord, log: log, mux: http.NewServeMux(),
		http: &http.Client{Transport: security.HTTPTransport(svc.Credentials().Client)}}
	s.setUpOps(opts)
	for _, rt := range s.routes() {
		s.handle(rt.pattern, rt.access, rt.h)
	}
	return s
}

// route is one endpoint: its pattern, what it requires of the caller,
// and its handler.
type route struct {
	pattern string
	access  access
	h       http.HandlerFunc
}

// routes lists every endpoint; each is served behind its access check.
func (s *Server) routes() []route {
	rs := []route{
		{"GET /v1/local/status", accessRead, s.localStatus},
		{"POST /v1/local/leave", accessOperator, s.leave},
		{"GET /v1/cluster", accessRead, s.clusterInfo},
		{"GET /v1/join-info", accessRead, s.joinInfo},
		{"POST /v1/join/hello", accessPublic, s.joinHello},
		{"POST /v1/join/cert", accessJoin, s.leaderOnly(s.issueCert)},
		{"POST /v1/join/rotate", accessLocal, s.leaderOnly(s.rotateJoinToken)},
		{"POST /v1/members", accessSelfAdd, s.leaderOnly(s.addMember)},
		{"POST /v1/nodes/{node}/{action}", accessOperator, s.leaderOnly(s.nodeAction)},
		{"GET /v1/keys", accessRead, s.readKey},
		{"POST /v1/txn", accessOperator, s.leaderOnly(s.txn)},
		{"GET /v1/export", accessRead, s.export},
		{"POST /v1/import", accessOperator, s.leaderOnly(s.importText)},
		{"GET /v1/watch", accessRead, s.watch},
		{"GET /v1/read-index", accessRead, s.leaderOnly(s.readIndex)},
		{"GET /v1/tokens", accessOperator, s.listTokens},
		{"POST /v1/tokens", accessOperator, s.leaderOnly(s.createToken)},
		{"DELETE /v1/tokens/{name}", accessOperator, s.leaderOnly(s.revokeToken)},
	}
	rs = append(rs, s.shadowRoutes()...)
	rs = append(rs, s.scheduleRoutes()...)
	rs = append(rs, s.rolesRoutes()...)
	rs = append(rs, s.groupsRoutes()...)
	return append(rs, s.opsRoutes()...)
}

// Route describes an endpoint for documentation and tests.
type Route struct {
	Pattern string `json:"pattern"`
	// Access is "public", "join", "self-add", "read", "operator" or "backup".
	Access string `json:"access"`
}

// Routes lists the API's endpoints and the access each requires.
func Routes() []Route {
	names := map[access]string{accessPublic: "public", accessJoin: "join", accessSelfAdd: "self-add",
		accessRead: "read", accessOperator: "operator", accessBackup: "backup", accessLocal: "local", accessNode: "node"}
	var out []Route
	for _, r := range (&Server{}).routes() {
		out = append(out, Route{Pattern: r.pattern, Access: names[r.access]})
	}
	return out
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	s.mux.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// errInvalidRequest is a request this server cannot make sense of.
var errInvalidRequest = errors.New("invalid request")

// errorCodes maps the errors callers branch on to a status and a code,
// first match first.
var errorCodes = []struct {
	errs   []error
	status int
	code   string
}{
	{[]error{ErrUnauthenticated}, http.StatusUnauthorized, wire.CodeUnauthenticated},
	{[]error{ErrForbidden}, http.StatusForbidden, wire.CodeForbidden},
	{[]error{shadow.ErrBusy}, http.StatusConflict, wire.CodeBusy},
	{[]error{shadow.ErrSessionEnded}, http.StatusNotFound, wire.CodeNoSession},
	{[]error{shadow.ErrWrongState}, http.StatusConflict, wire.CodeOutOfSequence},
	{[]error{shadow.ErrNoComponent, shadow.ErrNoWriter, shadow.ErrNothingSelected}, http.StatusBadRequest, wire.CodeInvalid},
	{[]error{shadow.ErrFreezeTimeout}, http.StatusGatewayTimeout, wire.CodeFreezeTimeout},
	{[]error{hive.ErrKeyNotFound}, http.StatusNotFound, wire.CodeKeyNotFound},
	{[]error{hive.ErrValueNotFound}, http.StatusNotFound, wire.CodeValueNotFound},
	{[]error{cluster.ErrUnknownNode}, http.StatusNotFound, wire.CodeNodeNotFound},
	{[]error{cluster.ErrUnknownToken}, http.StatusNotFound, wire.CodeNotFound},
	{[]error{cluster.ErrTokenExists}, http.StatusConflict, wire.CodeConflict},
	{[]error{cluster.ErrNoAuthority}, http.StatusServiceUnavailable, wire.CodeNotConfigured},
	{[]error{cluster.ErrNoSchedule}, http.StatusNotFound, wire.CodeNotFound},
	{[]error{placement.ErrNotMember}, http.StatusForbidden, wire.CodeForbidden},
	{[]error{placement.ErrNotLeader}, http.StatusServiceUnavailable, wire.CodeNotLeader},
	{[]error{cluster.ErrPlacementChanged}, http.StatusConflict, wire.CodeConflict},
	{[]error{schedule.ErrBadSpec}, http.StatusBadRequest, wire.CodeInvalid},
	{[]error{hive.ErrPreconditionFailed}, http.StatusConflict, wire.CodePrecondition},
	{[]error{hive.ErrCompacted}, http.StatusGone, wire.CodeCompacted},
	{[]error{cluster.ErrNameTaken, cluster.ErrLastMember, cluster.ErrAlreadyMember}, http.StatusConflict, wire.CodeConflict},
	{[]error{cluster.ErrEvicted}, http.StatusForbidden, wire.CodeEvicted},
	{[]error{cluster.ErrNotConfigured}, http.StatusServiceUnavailable, wire.CodeNotConfigured},
	{[]error{cluster.ErrNotLeader, cluster.ErrNoLeader, cluster.ErrNotReady}, http.StatusServiceUnavailable, wire.CodeNotLeader},
	{[]error{cluster.ErrServiceStopped, hive.ErrClosed}, http.StatusServiceUnavailable, wire.CodeUnavailable},
	{[]error{errUncertain, cluster.ErrUncertain}, http.StatusBadGateway, wire.CodeUncertain},
	{[]error{hive.ErrInvalidPath, hive.ErrInvalidName, hive.ErrInvalidType, hive.ErrInvalidValue, hive.ErrValueTooLarge,
		hive.ErrInvalidTxn, hive.ErrReserved, hive.ErrBadExport, errInvalidRequest, cluster.ErrInvalidInput}, http.StatusBadRequest, wire.CodeInvalid},
}

// classify finds an error's status and code.
func classify(err error) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusBadRequest, wire.CodeInvalid
	}
	for _, ec := range errorCodes {
		for _, e := range ec.errs {
			if errors.Is(err, e) {
				return ec.status, ec.code
			}
		}
	}
	var we *shadow.WriterError
	if errors.As(err, &we) {
		return http.StatusInternalServerError, wire.CodeWriterFailed
	}
	return http.StatusInternalServerError, wire.CodeInternal
}

// writeError answers an error with its status and code.
func writeError(w http.ResponseWriter, err error) {
	status, code := classify(err)
	writeJSON(w, status, wire.Error{Code: code, Message: err.Error()})
}

// isInvalid reports whether err is the caller's fault.
func isInvalid(err error) bool {
	_, code := classify(err)
	return code == wire.CodeInvalid
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %w", errInvalidRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: body: trailing data after the JSON object", errInvalidRequest)
	}
	return nil
}

// errUncertain: the leader may or may not have applied a forwarded write.
var errUncertain = errors.New("the leader did not answer: the change may or may not have been applied")

// leaderOnly runs h on the leader: on a follower the request is forwarded.
func (s *Server) leaderOnly(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, fmt.Errorf("%w: read body: %w", errInvalidRequest, err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		err = h(w, r)
		if err == nil {
			return
		}
		if errors.Is(err, cluster.ErrNotLeader) && r.Header.Get(wire.ForwardedHeader) == "" {
			s.forward(w, r, body)
			return
		}
		writeError(w, err)
	}
}

// forward sends the request to the leader and copies its answer back.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	leader, err := s.waitLeaderAPI(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, "https://"+leader+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		writeError(w, err)
		return
	}
	req.Header = r.Header.Clone()
	req.Header.Set(wire.ForwardedHeader, s.svc.Identity().NodeName)
	resp, err := s.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			writeError(w, fmt.Errorf("%w: leader %s: %v", cluster.ErrNoLeader, leader, err))
		} else {
			writeError(w, fmt.Errorf("forward to leader %s: %w: %v", leader, errUncertain, err))
		}
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (s *Server) waitLeaderAPI(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		addr, err := s.svc.LeaderAPI()
		if err == nil && addr != "" {
			return addr, nil
		}
		if errors.Is(err, cluster.ErrNotConfigured) || errors.Is(err, cluster.ErrServiceStopped) || errors.Is(err, cluster.ErrNotReady) {
			return "", err
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = cluster.ErrNoLeader
			}
			return "", fmt.Errorf("find the leader: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readIndex answers, on the leader, the commit index a read or a backup
// must see applied to hold every change acknowledged before it began.
func (s *Server) readIndex(w http.ResponseWriter, r *http.Request) error {
	idx, err := s.svc.ReadIndex(r.Context())
	if err != nil {
		if errors.Is(err, cluster.ErrNotReady) {
			return fmt.Errorf("%w: %w", cluster.ErrNotLeader, err)
		}
		return err
	}
	writeJSON(w, http.StatusOK, wire.ReadIndexResult{Index: idx})
	return nil
}

func (s *Server) localStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.svc.Status())
}

func (s *Server) joinInfo(w http.ResponseWriter, r *http.Request) {
	info, err := s.svc.JoinInfo()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request) error {
	var m wire.Member
	if err := decodeBody(r, &m); err != nil {
		return err
	}
	if c := callerOf(r); !c.all && !security.Grants(c.roles, security.RoleOperator) && c.node != m.ID {
		return fmt.Errorf("%w: %s may add only itself, not node %s", ErrForbidden, c.name, m.ID)
	}
	if err := s.svc.AddMember(r.Context(), m); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) nodeAction(w http.ResponseWriter, r *http.Request) error {
	node, action := r.PathValue("node"), r.PathValue("action")
	m, err := s.svc.Member(node)
	if err != nil {
		return err
	}
	switch action {
	case "pause":
		var drain bool
		if d := r.URL.Query().Get("drain"); d != "" {
			if drain, err = strconv.ParseBool(d); err != nil {
				return fmt.Errorf("%w: drain %q: want true or false", errInvalidRequest, d)
			}
		}
		err = s.svc.SetPaused(r.Context(), m.ID, true, drain)
	case "resume":
		err = s.svc.SetPaused(r.Context(), m.ID, false, false)
	case "evict":
		err = s.svc.RemoveMember(r.Context(), m.ID)
	default:
		return fmt.Errorf("%w: unknown node action %q (want pause, resume or evict)", errInvalidRequest, action)
	}
	if err != nil {
		return err
	}
	m, _ = s.svc.Member(m.ID)
	writeJSON(w, http.StatusOK, m)
	return nil
}

// leave evicts this node through the leader, then moves its data aside.
func (s *Server) leave(w http.ResponseWriter, r *http.Request) {
	id := s.svc.Identity()
	if !id.Configured() {
		writeError(w, cluster.ErrNotConfigured)
		return
	}
	err := s.svc.RemoveMember(r.Context(), id.NodeID)
	if errors.Is(err, cluster.ErrNotLeader) {
		var leader string
		if leader, err = s.waitLeaderAPI(r.Context()); err == nil {
			err = s.post(r.Context(), leader, "/v1/nodes/"+id.NodeID+"/evict")
		}
	}
	if err != nil {
		writeError(w, fmt.Errorf("leave cluster: %w", err))
		return
	}
	if err := s.svc.Forget("left"); err != nil {
		writeError(w, fmt.Errorf("leave cluster: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, s.svc.Status())
}

func (s *Server) post(ctx context.Context, addr, path string) error {
	return s.call(ctx, http.MethodPost, addr, path, nil)
}

// call makes a request of another member, as this node (its certificate),
// and decodes the answer into out when it is not nil.
func (s *Server) call(ctx context.Context, method, addr, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set(wire.ForwardedHeader, s.svc.Identity().NodeName)
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e wire.Error
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%s %s: %s (%s)", addr, path, e.Message, resp.Status)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// consistent prepares a read: a linearizable read is answered by the
// leader after its read index is applied; a stale one by this node as is.
// It returns false when the request was forwarded (and answered) already.
func (s *Server) consistent(w http.ResponseWriter, r *http.Request) bool {
	if stale, _ := strconv.ParseBool(r.URL.Query().Get("stale")); stale {
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	for {
		_, err := s.svc.ReadIndex(ctx)
		switch {
		case err == nil:
			return true
		case errors.Is(err, cluster.ErrNotLeader) && r.Header.Get(wire.ForwardedHeader) == "":
			s.forward(w, r, nil)
			return false
		case errors.Is(err, cluster.ErrNotReady):
			select {
			case <-ctx.Done():
				writeError(w, err)
				return false
			case <-time.After(20 * time.Millisecond):
			}
		default:
			writeError(w, err)
			return false
		}
	}
}

func (s *Server) readKey(w http.ResponseWriter, r *http.Request) {
	if !s.consistent(w, r) {
		return
	}
	path := r.URL.Query().Get("key")
	if reserved.IsSecret(path) {
		writeError(w, fmt.Errorf("%w: %s holds the cluster's secrets and is not served", ErrForbidden, reserved.SecurityKey))
		return
	}
	if name := r.URL.Query().Get("value"); name != "" {
		v, err := s.svc.Hive().GetValue(path, name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
		return
	}
	k, err := s.svc.Hive().Get(path)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (s *Server) txn(w http.ResponseWriter, r *http.Request) error {
	var t hive.Txn
	if err := decodeBody(r, &t); err != nil {
		return err
	}
	seq, err := s.svc.Apply(r.Context(), t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.TxnResult{Seq: seq})
	return nil
}

func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	if !s.consistent(w, r) {
		return
	}
	var buf bytes.Buffer
	err := s.svc.Hive().View(func(rd *hive.Reader) error {
		return rd.ExportSkipping(&buf, r.URL.Query().Get("key"), reserved.IsSecret)
	})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(buf.Bytes())
}

// importText applies an export as one atomic transaction; with
// replace=true the subtree it names is deleted first.
func (s *Server) importText(w http.ResponseWriter, r *http.Request) error {
	ops, err := hive.ParseExport(r.Body)
	if err != nil {
		return err
	}
	// The cluster's own subtree is never imported: an export of the whole
	// hive holds it, and it describes the cluster that exported it.
	keys, skipped, kept := 0, 0, ops[:0]
	for _, op := range ops {
		if p, _ := hive.ParsePath(op.Key); p.Reserved() {
			skipped++
			continue
		}
		if op.Kind == hive.OpCreateKey {
			keys++
		}
		kept = append(kept, op)
	}
	ops = kept
	if len(ops) == 0 {
		return fmt.Errorf("%w: the import holds nothing outside %q", errInvalidRequest, hive.ReservedKey)
	}
	if replace, _ := strconv.ParseBool(r.URL.Query().Get("replace")); replace {
		root, err := hive.ParsePath(r.URL.Query().Get("key"))
		if err != nil {
			return err
		}
		if root.IsRoot() {
			return fmt.Errorf("%w: replace needs a key below the root", errInvalidRequest)
		}
		for _, op := range ops {
			if p, _ := hive.ParsePath(op.Key); !root.Under(p) {
				return fmt.Errorf("%w: key %q in the import lies outside %q, which replace would delete", errInvalidRequest, op.Key, root)
			}
		}
		ops = append([]hive.Op{hive.DeleteKey(root.String())}, ops...)
	}
	seq, err := s.svc.Apply(r.Context(), hive.Txn{Ops: ops})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	writeJSON(w, http.StatusOK, wire.ImportResult{Seq: seq, Keys: keys, Ops: len(ops), SkippedReserved: skipped})
	return nil
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := strconv.ParseUint(q.Get("after"), 10, 64)
	if err != nil {
		writeError(w, fmt.Errorf("%w: after=%q is not a sequence number", errInvalidRequest, q.Get("after")))
		return
	}
	wait := 30 * time.Second
	if ws := q.Get("wait"); ws != "" {
		if wait, err = time.ParseDuration(ws); err != nil || wait <= 0 || wait > 10*time.Minute {
			writeError(w, fmt.Errorf("%w: wait=%q is not a duration up to 10m", errInvalidRequest, ws))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	evs, seen, err := s.svc.Hive().Watch(ctx, r.URL.Query().Get("key"), after)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		writeError(w, err)
		return
	}
	kept := []hive.Event{}
	for _, ev := range evs {
		if !reserved.IsSecret(ev.Key) {
			kept = append(kept, ev)
		}
	}
	writeJSON(w, http.StatusOK, wire.WatchResult{Events: hiveconv.Events(kept), Seq: seen})
}

// clusterInfo answers GetClusterInformation: the identity from this node,
// the members from its hive, and each member's state from asking it.
func (s *Server) clusterInfo(w http.ResponseWriter, r *http.Request) {
	st := s.svc.Status()
	if st.ClusterID == "" {
		writeError(w, cluster.ErrNotConfigured)
		return
	}
	if !s.consistent(w, r) {
		return
	}
	info, err := s.gatherClusterInfo(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// gatherClusterInfo is the cluster as this node's hive records it, each
// member's state from asking it.
func (s *Server) gatherClusterInfo(ctx context.Context) (wire.ClusterInfo, error) {
	st := s.svc.Status()
	members, err := s.svc.Members()
	if err != nil {
		return wire.ClusterInfo{}, err
	}
	info := wire.ClusterInfo{Name: st.ClusterName, ID: st.ClusterID, Generation: st.Generation, Version: version.Version,
		LeaderID: st.LeaderID, Commit: st.Commit, Seq: st.Seq, AnsweredBy: st.NodeName, Nodes: make([]wire.NodeInfo, len(members))}
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info.Nodes[i] = s.nodeInfo(ctx, m, st)
		}()
	}
	wg.Wait()
	sort.Slice(info.Nodes, func(i, j int) bool { return info.Nodes[i].Name < info.Nodes[j].Name })
	info.LeaderID = ""
	for _, n := range info.Nodes {
		// A leader that does not answer is no leader any more.
		if n.Leader && n.State != wire.NodeDown {
			info.Leader, info.LeaderID = n.Name, n.ID
		}
	}
	return info, nil
}

func (s *Server) nodeInfo(ctx context.Context, m wire.Member, self wire.LocalStatus) wire.NodeInfo {
	n := wire.NodeInfo{ID: m.ID, Name: m.Name, APIAddr: m.APIAddr, RaftAddr: m.RaftAddr, Paused: m.Paused, Voter: m.Voter, Leader: m.ID == self.LeaderID}
	var peer wire.LocalStatus
	var err error
	if m.ID == self.NodeID {
		peer = self
	} else {
		peer, err = s.probe(ctx, m.APIAddr)
	}
	switch {
	case err != nil:
		n.State, n.Why = wire.NodeDown, err.Error()
	case peer.NodeID != m.ID:
		n.State, n.Why = wire.NodeDown, fmt.Sprintf("%s answers as node %s", m.APIAddr, peer.NodeID)
	case peer.ClusterID != self.ClusterID || peer.Generation != self.Generation:
		n.State, n.Why = wire.NodeDown, fmt.Sprintf("node is in cluster %s generation %d", peer.ClusterID, peer.Generation)
	case peer.RaftState == "" || peer.RaftState == "Shutdown":
		n.State, n.Why = wire.NodeDown, "cluster service not running"
	case !peer.Voter:
		n.State, n.Why = wire.NodeJoining, "not yet in the consensus configuration"
	case self.Commit > 0 && peer.Applied == 0:
		n.State, n.Why = wire.NodeJoining, "has applied nothing yet"
	case m.Paused:
		n.State = wire.NodePaused
	default:
		n.State = wire.NodeUp
	}
	n.Applied, n.Seq, n.RestorePending = peer.Applied, peer.Seq, peer.RestorePending
	if peer.RaftState == "Leader" {
		n.Leader = true
	}
	return n
}

func (s *Server) probe(ctx context.Context, addr string) (wire.LocalStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var st wire.LocalStatus
	if err := s.call(ctx, http.MethodGet, addr, "/v1/local/status", &st); err != nil {
		return st, fmt.Errorf("no answer: %s", strings.TrimPrefix(err.Error(), "Get "))
	}
	return st, nil
}
