// Package client is the Go client of the cluster API, with the names a
// backup program looks for: GetNodeClusterState, OpenCluster,
// GetClusterInformation, and a call for every hive operation.
//
// A Cluster handle knows every member's address: when the node it talks to
// stops, the next call goes to another member without the caller noticing.
// A write whose outcome is unknown (the node went away after receiving it)
// is reported as ErrUncertain, never retried blindly.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/schedule"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	"github.com/google/uuid"
)

// EnvCluster names the environment variable clients read the cluster's
// addresses from ("host:port[,host:port]").
const EnvCluster = "CLUSTERKEEP_CLUSTER"

// Errors callers branch on. Errors from the cluster wrap them and *APIError.
var (
	ErrKeyNotFound    = errors.New("key not found")
	ErrValueNotFound  = errors.New("value not found")
	ErrNodeNotFound   = errors.New("node not found")
	ErrNotFound       = errors.New("not found")
	ErrPrecondition   = errors.New("precondition failed")
	ErrInvalid        = errors.New("invalid request")
	ErrConflict       = errors.New("conflict")
	ErrUnavailable    = errors.New("no member of the cluster answered")
	ErrRefused        = errors.New("every address refused the connection: no node listens there (check --cluster or " + EnvCluster + ")")
	ErrUncertain      = errors.New("outcome unknown: the node went away after receiving the request")
	ErrNotConfigured  = errors.New("node is not a member of a cluster")
	ErrCompacted      = errors.New("watch history compacted: re-read and watch again")
	ErrNoAddress      = errors.New("no cluster address given (use --cluster or " + EnvCluster + ")")
	ErrBusy           = errors.New("another backup or restore runs on the node")
	ErrNoSession      = errors.New("no such backup or restore in progress on the node")
	ErrWriterFailed   = errors.New("a writer failed")
	ErrFreezeTimeout  = errors.New("freeze window expired")
	errRetryElsewhere = errors.New("retry on another member")
)

// APIError is an error answer from a node.
type APIError struct {
	Status int
	Body   wire.Error
	Node   string
}

func (e *APIError) Error() string { return e.Body.Message }

func (e *APIError) Unwrap() error {
	switch e.Body.Code {
	case wire.CodeKeyNotFound:
		return ErrKeyNotFound
	case wire.CodeValueNotFound:
		return ErrValueNotFound
	case wire.CodeNodeNotFound:
		return ErrNodeNotFound
	case wire.CodePrecondition:
		return ErrPrecondition
	case wire.CodeInvalid:
		return ErrInvalid
	case wire.CodeConflict:
		return ErrConflict
	case wire.CodeUncertain:
		return ErrUncertain
	case wire.CodeNotConfigured:
		return ErrNotConfigured
	case wire.CodeCompacted:
		return ErrCompacted
	case wire.CodeBusy:
		return ErrBusy
	case wire.CodeNoSession:
		return ErrNoSession
	case wire.CodeWriterFailed:
		return ErrWriterFailed
	case wire.CodeFreezeTimeout:
		return ErrFreezeTimeout
	case wire.CodeOutOfSequence:
		return ErrConflict
	case wire.CodeUnauthenticated:
		return ErrUnauthenticated
	case wire.CodeForbidden:
		return ErrForbidden
	case wire.CodeNotFound:
		return ErrNotFound
	}
	return nil
}

// Cluster is a handle on a cluster (OpenCluster).
type Cluster struct {
	http *http.Client
	// unix serves the one unix: address a handle may have.
	unix     *http.Client
	creds    Credentials
	credsSet bool

	mu      sync.Mutex
	addrs   []string // every known member's API address; addrs[cur] is in use
	cur     int
	name    string
	retries time.Duration
	single  bool // a Node handle: no failover
	broken  error
	opened  wire.ClusterInfo
	// reached is set once any member has answered through the handle:
	// from then on refused connections are a cluster restarting, and are
	// retried for the whole window.
	reached atomic.Bool
}

// Option configures OpenCluster.
type Option func(*Cluster)

// WithRetryWindow sets how long a call keeps trying other members before
// it gives up with ErrUnavailable (default 15s, enough for an election).
func WithRetryWindow(d time.Duration) Option { return func(c *Cluster) { c.retries = d } }

// OpenCluster connects to the cluster that nodeAddrs (API addresses,
// "host:port", each may hold a comma-separated list) belong to, and learns
// every member's address. With no address it uses CLUSTERKEEP_CLUSTER.
func OpenCluster(ctx context.Context, nodeAddrs ...string) (*Cluster, error) {
	return OpenClusterWith(ctx, nodeAddrs)
}

// OpenClusterWith is OpenCluster with options.
func OpenClusterWith(ctx context.Context, nodeAddrs []string, opts ...Option) (*Cluster, error) {
	var addrs []string
	for _, a := range nodeAddrs {
		addrs = append(addrs, splitAddrs(a)...)
	}
	if len(addrs) == 0 {
		addrs = splitAddrs(os.Getenv(EnvCluster))
	}
	c := &Cluster{addrs: addrs, retries: 15 * time.Second}
	for _, o := range opts {
		o(c)
	}
	if !c.credsSet {
		cr, err := DefaultCredentials()
		if err != nil {
			return nil, err
		}
		c.creds = cr
	}
	c.http = &http.Client{Transport: security.HTTPTransport(c.creds.tlsConfig)}
	for _, a := range c.addrs {
		if p, ok := strings.CutPrefix(a, unixPrefix); ok && c.unix == nil {
			c.unix = unixClient(p)
		}
	}
	if c.single {
		return c, nil
	}
	if len(c.addrs) == 0 {
		return nil, fmt.Errorf("open cluster: %w", ErrNoAddress)
	}
	info, err := c.GetClusterInformation(ctx)
	if err != nil {
		return nil, fmt.Errorf("open cluster at %s: %w", strings.Join(addrs, ","), err)
	}
	c.learn(info)
	c.opened = info
	return c, nil
}

// Info is the cluster information the handle learnt when it was opened:
// a caller that needs it at once need not ask again.
func (c *Cluster) Info() wire.ClusterInfo { return c.opened }

// Node returns a handle on one node that never fails over: every call goes
// to addr. For reading one node's own copy (with Stale) and for tests.
// Credentials it cannot read from the environment fail its every call.
func Node(addr string, opts ...Option) *Cluster {
	c, err := OpenClusterWith(context.Background(), nil, append(opts, withNode(addr))...)
	if err != nil {
		return &Cluster{addrs: []string{addr}, single: true, broken: err}
	}
	return c
}

func withNode(addr string) Option {
	return func(c *Cluster) { c.addrs, c.single, c.retries = []string{addr}, true, 0 }
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, strings.TrimPrefix(strings.TrimPrefix(a, "http://"), "https://"))
		}
	}
	return out
}

// learn adds every member's address, keeping the one in use first.
func (c *Cluster) learn(info wire.ClusterInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.name = info.Name
	seen := map[string]bool{}
	cur := c.addrs[c.cur]
	out := []string{cur}
	seen[cur] = true
	for _, n := range info.Nodes {
		if n.APIAddr != "" && !seen[n.APIAddr] {
			seen[n.APIAddr] = true
			out = append(out, n.APIAddr)
		}
	}
	for _, a := range c.addrs {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	c.addrs, c.cur = out, 0
}

// Name is the cluster's name, as learnt when the handle was opened.
func (c *Cluster) Name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.name
}

// Addrs lists the member addresses the handle knows, the one in use first.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]string(nil), c.addrs[c.cur:]...)
	return append(out, c.addrs[:c.cur]...)
}

// Current is the address of the member calls go to now.
func (c *Cluster) Current() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs[c.cur]
}

func (c *Cluster) next(failed string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.addrs[c.cur] == failed {
		c.cur = (c.cur + 1) % len(c.addrs)
	}
}

// request is one API call.
type request struct {
	method string
	path   string // with query
	body   []byte
	ctype  string
	// idempotent calls are retried after any failure; others only when
	// the request cannot have reached a node.
	idempotent bool
}

// do runs a request against the current member, moving on to the next on
// failure, until one answers or the retry window closes.
func (c *Cluster) do(ctx context.Context, rq request) (*http.Response, error) {
	deadline := time.Now().Add(c.retries)
	var last error
	refused := map[string]bool{}
	for attempt := 0; ; attempt++ {
		addr := c.Current()
		resp, err := c.once(ctx, addr, rq)
		if err == nil {
			return resp, nil
		}
		if !errors.Is(err, errRetryElsewhere) {
			return nil, err
		}
		last = err
		if c.single {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, last)
		}
		// No node listens at any address and none ever answered: a wrong
		// address, not an election; waiting would only hide it.
		if connRefused(addr, err) {
			refused[addr] = true
			if addrs := c.Addrs(); !c.reached.Load() && len(refused) >= len(addrs) {
				return nil, fmt.Errorf("%w: %w: %s", ErrUnavailable, ErrRefused, strings.Join(addrs, ", "))
			}
		}
		c.next(addr)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, last)
		}
		// Cycle through members at once; pause once every member failed.
		if (attempt+1)%len(c.Addrs()) == 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func (c *Cluster) once(ctx context.Context, addr string, rq request) (*http.Response, error) {
	if c.broken != nil {
		return nil, c.broken
	}
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	hc, u := c.http, "https://"+addr+rq.path
	if strings.HasPrefix(addr, unixPrefix) {
		hc, u = c.unix, "http://local"+rq.path
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u, body)
	if err != nil {
		return nil, err
	}
	if rq.ctype != "" {
		req.Header.Set("Content-Type", rq.ctype)
	}
	switch {
	case c.creds.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.creds.Token)
	case c.creds.JoinSecret != "":
		req.Header.Set("Authorization", wire.JoinScheme+" "+c.creds.JoinSecret)
	}
	resp, err := hc.Do(req)
	if err == nil {
		c.reached.Store(true)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ErrNoCA) || errors.Is(err, ErrUntrusted) {
			return nil, err
		}
		if rq.idempotent || notSent(err) {
			return nil, fmt.Errorf("%w: %s: %w", errRetryElsewhere, addr, err)
		}
		return nil, fmt.Errorf("%s: %w: %w", addr, ErrUncertain, err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	ae := &APIError{Status: resp.StatusCode, Node: addr}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(raw, &ae.Body) != nil || ae.Body.Code == "" {
		ae.Body.Code, ae.Body.Message = wire.CodeInternal, fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(raw))
	}
	// A node that is no leader and knows none, or is stopping, or is in no
	// cluster: another member may answer.
	switch ae.Body.Code {
	case wire.CodeNotLeader, wire.CodeUnavailable, wire.CodeNotConfigured:
		return nil, fmt.Errorf("%w: %s: %s", errRetryElsewhere, addr, ae.Body.Message)
	case wire.CodeUncertain:
		if rq.idempotent {
			return nil, fmt.Errorf("%w: %s: %s", errRetryElsewhere, addr, ae.Body.Message)
		}
	}
	return nil, ae
}

// connRefused reports whether err is addr refusing the connection: nothing
// listens there (for a unix socket, also no socket file).
func connRefused(addr string, err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	return strings.HasPrefix(addr, unixPrefix) && errors.Is(err, syscall.ENOENT)
}

// notSent reports whether a transport error happened before the request
// could reach the server (so retrying elsewhere cannot apply it twice).
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (c *Cluster) getJSON(ctx context.Context, path string, out any) error {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, idempotent: true})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *Cluster) postJSON(ctx context.Context, path string, in, out any, idempotent bool) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: path, body: body, ctype: "application/json", idempotent: idempotent})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// GetClusterInformation returns the cluster's name, id, generation,
// version, leader and members with their states.
func (c *Cluster) GetClusterInformation(ctx context.Context) (wire.ClusterInfo, error) {
	var info wire.ClusterInfo
	if err := c.getJSON(ctx, "/v1/cluster", &info); err != nil {
		return info, fmt.Errorf("get cluster information: %w", err)
	}
	return info, nil
}

// NodeAction pauses, resumes or evicts a node, named by name or id.
func (c *Cluster) NodeAction(ctx context.Context, node, action string) (wire.Member, error) {
	var m wire.Member
	err := c.postJSON(ctx, "/v1/nodes/"+url.PathEscape(node)+"/"+action, nil, &m, action != "evict")
	if err != nil {
		return m, fmt.Errorf("%s node %s: %w", action, node, err)
	}
	return m, nil
}

// PauseNode pauses a node: it stays a member, keeps the groups it runs
// and is given no new one.
func (c *Cluster) PauseNode(ctx context.Context, node string) (wire.Member, error) {
	return c.NodeAction(ctx, node, "pause")
}

// DrainNode pauses a node and moves its groups to other nodes.
func (c *Cluster) DrainNode(ctx context.Context, node string) (wire.Member, error) {
	var m wire.Member
	if err := c.postJSON(ctx, "/v1/nodes/"+url.PathEscape(node)+"/pause?drain=true", nil, &m, true); err != nil {
		return m, fmt.Errorf("pause node %s with drain: %w", node, err)
	}
	return m, nil
}

// ResumeNode resumes a paused node.
func (c *Cluster) ResumeNode(ctx context.Context, node string) (wire.Member, error) {
	return c.NodeAction(ctx, node, "resume")
}

// EvictNode removes a node from the cluster for good.
func (c *Cluster) EvictNode(ctx context.Context, node string) (wire.Member, error) {
	return c.NodeAction(ctx, node, "evict")
}

// ReadOption changes how a read is served.
type ReadOption func(url.Values)

// Stale lets any member answer from its own copy, which may lag.
func Stale() ReadOption { return func(q url.Values) { q.Set("stale", "true") } }

// keyURL addresses a key endpoint. The key path travels in the query, never
// in the URL path, so that no router cleans "a/../b" or "a//b" into a
// different, valid key.
func keyURL(endpoint, path string, q url.Values) string {
	q.Set("key", path)
	return endpoint + "?" + q.Encode()
}

func readQuery(opts []ReadOption) url.Values {
	q := url.Values{}
	for _, o := range opts {
		o(q)
	}
	return q
}

// GetKey reads a key with its values and subkey names. Reads are
// linearizable unless Stale is given.
func (c *Cluster) GetKey(ctx context.Context, path string, opts ...ReadOption) (wire.Key, error) {
	var k wire.Key
	if err := c.getJSON(ctx, keyURL("/v1/keys", path, readQuery(opts)), &k); err != nil {
		return k, fmt.Errorf("get key %q: %w", path, err)
	}
	return k, nil
}

// GetValue reads one value of a key.
func (c *Cluster) GetValue(ctx context.Context, path, name string, opts ...ReadOption) (wire.Value, error) {
	q := readQuery(opts)
	q.Set("value", name)
	var v wire.Value
	if err := c.getJSON(ctx, keyURL("/v1/keys", path, q), &v); err != nil {
		return v, fmt.Errorf("get value %q of %q: %w", name, path, err)
	}
	return v, nil
}

// Txn applies a transaction atomically and returns its sequence number.
func (c *Cluster) Txn(ctx context.Context, t wire.Txn) (uint64, error) {
	if t.RequestID == "" {
		// With a request id the cluster applies the transaction once
		// however often it is sent, so a retry after an unknown outcome
		// (a node that died holding the request) is safe.
		t.RequestID = uuid.NewString()
	}
	var r wire.TxnResult
	if err := c.postJSON(ctx, "/v1/txn", t, &r, true); err != nil {
		return 0, fmt.Errorf("transaction: %w", err)
	}
	return r.Seq, nil
}

// CreateKey creates a key and any missing ancestors.
func (c *Cluster) CreateKey(ctx context.Context, path string) (uint64, error) {
	return c.Txn(ctx, wire.Txn{Ops: []wire.Op{wire.CreateKey(path)}})
}

// SetValue sets a value, creating the key if needed.
func (c *Cluster) SetValue(ctx context.Context, path string, v wire.Value) (uint64, error) {
	return c.Txn(ctx, wire.Txn{Ops: []wire.Op{wire.SetValue(path, v)}})
}

// DeleteKey deletes a key and its subtree; ErrKeyNotFound if it is not there.
func (c *Cluster) DeleteKey(ctx context.Context, path string) (uint64, error) {
	seq, err := c.Txn(ctx, wire.Txn{Conds: []wire.Cond{{Kind: wire.CondKeyExists, Key: path}}, Ops: []wire.Op{wire.DeleteKey(path)}})
	if errors.Is(err, ErrPrecondition) {
		return 0, fmt.Errorf("delete key %q: %w", path, ErrKeyNotFound)
	}
	return seq, err
}

// DeleteValue deletes a value; ErrValueNotFound if it is not there.
func (c *Cluster) DeleteValue(ctx context.Context, path, name string) (uint64, error) {
	seq, err := c.Txn(ctx, wire.Txn{Conds: []wire.Cond{{Kind: wire.CondValueExists, Key: path, Name: name}}, Ops: []wire.Op{wire.DeleteValue(path, name)}})
	if errors.Is(err, ErrPrecondition) {
		return 0, fmt.Errorf("delete value %q of %q: %w", name, path, ErrValueNotFound)
	}
	return seq, err
}

// Export writes the subtree at path in the hive's text form.
func (c *Cluster) Export(ctx context.Context, path string, w io.Writer, opts ...ReadOption) error {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: keyURL("/v1/export", path, readQuery(opts)), idempotent: true})
	if err != nil {
		return fmt.Errorf("export %q: %w", path, err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// Import applies an export atomically. With replace, the subtree at path is
// deleted first (every key of the import must lie in it).
func (c *Cluster) Import(ctx context.Context, path string, r io.Reader, replace bool) (wire.ImportResult, error) {
	var res wire.ImportResult
	body, err := io.ReadAll(r)
	if err != nil {
		return res, err
	}
	q := url.Values{}
	if replace {
		q.Set("replace", "true")
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: keyURL("/v1/import", path, q), body: body, ctype: "text/plain"})
	if err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	defer resp.Body.Close()
	return res, json.NewDecoder(resp.Body).Decode(&res)
}

// Watch blocks until a change after sequence number after touches the
// subtree at path, or wait passes (then it returns no events).
func (c *Cluster) Watch(ctx context.Context, path string, after uint64, wait time.Duration) (wire.WatchResult, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "wait": {wait.String()}}
	var r wire.WatchResult
	if err := c.getJSON(ctx, keyURL("/v1/watch", path, q), &r); err != nil {
		return r, fmt.Errorf("watch %q: %w", path, err)
	}
	return r, nil
}

// LocalStatus asks one node for its own status, without failing over.
// The caller bounds the wait with ctx.
func LocalStatus(ctx context.Context, addr string, opts ...Option) (wire.LocalStatus, error) {
	var st wire.LocalStatus
	err := Node(addr, opts...).getJSON(ctx, "/v1/local/status", &st)
	return st, err
}

// JoinInfo asks a member what a joining node needs to know.
func (c *Cluster) JoinInfo(ctx context.Context) (wire.JoinInfo, error) {
	var ji wire.JoinInfo
	err := c.getJSON(ctx, "/v1/join-info", &ji)
	return ji, err
}

// AddMember asks the leader to add a prepared node.
func (c *Cluster) AddMember(ctx context.Context, m wire.Member) error {
	return c.postJSON(ctx, "/v1/members", m, nil, true)
}

// Leave makes the node at addr leave its cluster gracefully: it is removed
// through the leader and its cluster data is moved aside.
func Leave(ctx context.Context, addr string, opts ...Option) (wire.LocalStatus, error) {
	var st wire.LocalStatus
	if err := Node(addr, opts...).postJSON(ctx, "/v1/local/leave", nil, &st, false); err != nil {
		return st, fmt.Errorf("leave: %w", err)
	}
	return st, nil
}

// ReadIndex asks the leader for the commit index a consistent read must
// see applied.
func (c *Cluster) ReadIndex(ctx context.Context) (uint64, error) {
	var r wire.ReadIndexResult
	if err := c.getJSON(ctx, "/v1/read-index", &r); err != nil {
		return 0, fmt.Errorf("read index: %w", err)
	}
	return r.Index, nil
}

// Tokens lists the cluster's API tokens (never their secrets).
func (c *Cluster) Tokens(ctx context.Context) ([]wire.Token, error) {
	var out []wire.Token
	err := c.getJSON(ctx, "/v1/tokens", &out)
	return out, err
}

// CreateToken makes an API token named name with roles; the answer is the
// only place the token itself appears.
func (c *Cluster) CreateToken(ctx context.Context, name string, roles []string) (wire.NewToken, error) {
	var out wire.NewToken
	err := c.postJSON(ctx, "/v1/tokens", wire.TokenRequest{Name: name, Roles: roles}, &out, false)
	return out, err
}

// RevokeToken deletes the API token named name.
func (c *Cluster) RevokeToken(ctx context.Context, name string) error {
	resp, err := c.do(ctx, request{method: http.MethodDelete, path: "/v1/tokens/" + url.PathEscape(name)})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Schedule reads the scheduled backups' configuration and state.
func (c *Cluster) Schedule(ctx context.Context) (schedule.Status, error) {
	var out schedule.Status
	err := c.getJSON(ctx, "/v1/schedule", &out)
	return out, err
}

// SetSchedule records the scheduled backups' configuration.
func (c *Cluster) SetSchedule(ctx context.Context, sc schedule.Config) error {
	body, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, request{method: http.MethodPut, path: "/v1/schedule", body: body, ctype: "application/json", idempotent: true})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// RemoveSchedule removes the scheduled backups (the sets stay).
func (c *Cluster) RemoveSchedule(ctx context.Context) error {
	resp, err := c.do(ctx, request{method: http.MethodDelete, path: "/v1/schedule", idempotent: true})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// RunSchedule asks the leader to take a scheduled run at once; it returns
// the time asked (a run started after it answers the request).
func (c *Cluster) RunSchedule(ctx context.Context) (time.Time, error) {
	var out struct {
		Asked time.Time `json:"asked"`
	}
	err := c.postJSON(ctx, "/v1/schedule/run", nil, &out, false)
	return out.Asked, err
}

// RotateJoinToken replaces the cluster's join token and returns the new
// one. Only through a node's local socket.
func (c *Cluster) RotateJoinToken(ctx context.Context) (string, error) {
	var out struct {
		Token string `json:"join_token"`
	}
	err := c.postJSON(ctx, "/v1/join/rotate", nil, &out, false)
	return out.Token, err
}
