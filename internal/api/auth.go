package api

// Authentication and authorization of API calls, and the endpoints of
// trust: the join handshake and API tokens.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/security"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// Errors of authentication.
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
)

// access is what an endpoint requires of its caller.
type access int

const (
	accessPublic   access = iota // anyone: the join handshake's first step
	accessJoin                   // the join secret
	accessSelfAdd                // a node adding itself, or an operator
	accessRead                   // role read (any role)
	accessOperator               // role operator
	accessBackup                 // role backup
	accessLocal                  // the local socket only (root on a node)
	accessNode                   // a member node's certificate only
)

// caller is who makes a request.
type caller struct {
	// all: the local socket, or a member node's certificate.
	all   bool
	local bool // the local socket
	roles []security.Role
	// node is the node id of a presented certificate; joinSecret whether
	// the request carries the join secret.
	node       string
	joinSecret bool
	name       string
}

type localKey struct{}

// Local returns the handler of the node's unix socket: whoever can open the
// socket (its file is 0600, in a 0700 data directory) may do anything.
func (s *Server) Local() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), localKey{}, true)))
	})
}

// identify finds the caller of r. A request neither over the local socket
// nor over TLS is refused: the TCP listener is always TLS.
func (s *Server) identify(r *http.Request) (caller, error) {
	if local, _ := r.Context().Value(localKey{}).(bool); local {
		return caller{all: true, local: true, name: "local socket"}, nil
	}
	if r.TLS == nil {
		return caller{}, fmt.Errorf("%w: the API takes TLS connections only", ErrUnauthenticated)
	}
	var c caller
	if id := security.PeerNodeID(r.TLS); id != "" {
		c.node, c.name = id, "node "+id
		switch {
		case s.svc.IsMember(id):
			c.all = true
			return c, nil
		case s.svc.IsEvicted(id):
			return c, fmt.Errorf("%w: node %s was evicted from the cluster", ErrForbidden, id)
		}
		// A node given its certificate that is still joining: it may
		// read, and add itself.
		c.roles = []security.Role{security.RoleRead}
	}
	auth := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(auth, " ")
	switch {
	case auth == "":
		// A browser's dashboard session: GET and HEAD only, read only.
		if cc, ok := s.cookieCaller(r, c); ok {
			return cc, nil
		}
	case strings.EqualFold(scheme, "Bearer"):
		t, err := s.svc.Authenticate(strings.TrimSpace(cred))
		if errors.Is(err, cluster.ErrUnknownToken) && s.catchUp(r.Context()) == nil {
			// A token made a moment ago on the leader may not have
			// reached this node yet.
			t, err = s.svc.Authenticate(strings.TrimSpace(cred))
		}
		if err != nil {
			return c, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
		}
		c.roles, c.name = t.Roles, "token "+t.Name
	case strings.EqualFold(scheme, wire.JoinScheme):
		if !s.svc.CheckJoinSecret(strings.TrimSpace(cred)) {
			return c, fmt.Errorf("%w: wrong join token", ErrUnauthenticated)
		}
		c.joinSecret = true
	default:
		// The value is not echoed: it may be a token sent without its scheme.
		return c, fmt.Errorf("%w: unknown authorization scheme (want Bearer)", ErrUnauthenticated)
	}
	return c, nil
}

// allowed checks c against what an endpoint requires.
func (c caller) allowed(need access) error {
	// A member node may make a local-only call too: it forwards one made
	// on its socket to the leader (and a member may do anything anyway).
	if need == accessLocal && !c.local && !(c.all && c.node != "") {
		return fmt.Errorf("%w: this call is made through a node's local socket only (root on the node: --cluster unix:DATA_DIR/api.sock)", ErrForbidden)
	}
	if need == accessNode {
		switch {
		case c.all && c.node != "":
			return nil
		case c.name == "" && !c.joinSecret:
			return fmt.Errorf("%w: this call is made by member nodes only, with their certificate", ErrUnauthenticated)
		}
		return fmt.Errorf("%w: this call is made by member nodes only, with their certificate", ErrForbidden)
	}
	if c.all || need == accessPublic {
		return nil
	}
	switch need {
	case accessJoin:
		// The join token only: a certificate makes a member, and a member
		// may do anything, so no role short of that may get one.
		if c.joinSecret {
			return nil
		}
	case accessSelfAdd:
		if c.node != "" || security.Grants(c.roles, security.RoleOperator) {
			return nil // the handler checks a node adds only itself
		}
	case accessLocal:
		return fmt.Errorf("%w: this call is made through a node's local socket only (root on the node: --cluster unix:DATA_DIR/api.sock)", ErrForbidden)
	case accessRead, accessOperator, accessBackup:
		role := map[access]security.Role{accessRead: security.RoleRead, accessOperator: security.RoleOperator, accessBackup: security.RoleBackup}[need]
		if security.Grants(c.roles, role) {
			return nil
		}
		if len(c.roles) > 0 {
			return fmt.Errorf("%w: %s has roles %v; this call needs the %s role", ErrForbidden, c.name, c.roles, role)
		}
	}
	if c.name == "" && !c.joinSecret {
		return fmt.Errorf("%w: this call needs a token (Authorization: Bearer TOKEN)", ErrUnauthenticated)
	}
	return fmt.Errorf("%w: %s may not make this call", ErrForbidden, c.name)
}

type callerKey struct{}

// handle registers h for pattern, behind the check of need.
func (s *Server) handle(pattern string, need access, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, err := s.identify(r)
		if err == nil {
			err = c.allowed(need)
		}
		if err != nil {
			if !uiRedirect(w, r, err) {
				writeError(w, err)
			}
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

func callerOf(r *http.Request) caller { c, _ := r.Context().Value(callerKey{}).(caller); return c }

// joinHello is the first step of a join: the member proves it knows the
// join secret over the joiner's nonce, the authority and its own TLS
// certificate, so the joiner can trust the authority it is given.
func (s *Server) joinHello(w http.ResponseWriter, r *http.Request) {
	var req wire.JoinHello
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Nonce) < 16 {
		writeError(w, fmt.Errorf("%w: join nonce of %d bytes (at least 16)", errInvalidRequest, len(req.Nonce)))
		return
	}
	ca, secret, err := s.svc.Authority()
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := s.svc.JoinInfo()
	if err != nil {
		writeError(w, err)
		return
	}
	leaf, err := s.servingCert(r.TLS)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.JoinWelcome{Info: info, CA: ca.Cert.Raw,
		MAC: security.JoinHelloMAC(secret, req.Nonce, ca.Cert.Raw, leaf, info)})
}

// servingCert is the certificate this node served on the connection.
func (s *Server) servingCert(st *tls.ConnectionState) ([]byte, error) {
	cfg, err := s.svc.Credentials().Client()
	if err != nil || st == nil {
		return nil, fmt.Errorf("%w: this node holds no certificate to prove itself with", cluster.ErrNotConfigured)
	}
	return cfg.Certificates[0].Certificate[0], nil
}

// issueCert gives a joining node its certificate (join secret required).
func (s *Server) issueCert(w http.ResponseWriter, r *http.Request) error {
	var req wire.CertRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if _, err := x509.ParsePKIXPublicKey(req.PublicKey); err != nil {
		return fmt.Errorf("%w: public key: %w", errInvalidRequest, err)
	}
	// On the leader, whose database holds every member acknowledged: a
	// lagging follower might not know yet the member an id names.
	if _, err := s.svc.ReadIndex(r.Context()); err != nil {
		return err
	}
	// A certificate names its node id: one for an id that is a member
	// already would let its holder pose as that member. A member's own
	// certificate comes from its database (it reissues it at start).
	switch {
	case s.svc.IsEvicted(req.Member.ID):
		return fmt.Errorf("issue certificate for %s: %w", req.Member.ID, cluster.ErrEvicted)
	case s.svc.IsMember(req.Member.ID):
		return fmt.Errorf("issue certificate for %s: %w: node id %s is a member already; a new machine joins with a new data directory", req.Member.Name, cluster.ErrAlreadyMember, req.Member.ID)
	}
	ca, cert, err := s.svc.IssueCert(req.Member, req.PublicKey)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidRequest, err)
	}
	writeJSON(w, http.StatusOK, wire.Certificate{CA: ca, Cert: cert})
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.svc.Tokens()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req wire.TokenRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	roles, err := security.ParseRoles(req.Roles)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidRequest, err)
	}
	// Nobody grants more than they hold.
	if c := callerOf(r); !c.all {
		for _, role := range roles {
			if !security.Grants(c.roles, role) {
				return fmt.Errorf("%w: %s cannot grant the %s role it does not hold", ErrForbidden, c.name, role)
			}
		}
	}
	token, err := s.svc.CreateToken(r.Context(), req.Name, roles)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.NewToken{Name: req.Name, Roles: roles, Token: token})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.RevokeToken(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"revoked": r.PathValue("name")})
	return nil
}

// catchUpEvery bounds how often a follower asks the leader to catch up
// on behalf of unknown tokens.
const catchUpEvery = 200 * time.Millisecond

// catchUp waits, on a follower, until this node has applied everything
// the leader committed before the call. It answers at once on the leader.
func (s *Server) catchUp(ctx context.Context) error {
	// The leader applied every token it acknowledged: nothing to catch up.
	if s.svc.Status().RaftState == "Leader" {
		return errors.New("the leader is never behind")
	}
	// Unknown tokens cost the leader one read index at most every
	// catchUpEvery, however many arrive.
	now := time.Now().UnixNano()
	if last := s.lastCatchUp.Load(); now-last < int64(catchUpEvery) || !s.lastCatchUp.CompareAndSwap(last, now) {
		return errors.New("caught up a moment ago")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	leader, err := s.waitLeaderAPI(ctx)
	if err != nil {
		return err
	}
	var ri wire.ReadIndexResult
	if err := s.call(ctx, http.MethodGet, leader, "/v1/read-index", &ri); err != nil {
		return err
	}
	return s.svc.WaitApplied(ctx, ri.Index)
}

// rotateJoinToken replaces the cluster's join token (after an eviction,
// say: the evicted machine knew it). Only root on a node may: the token
// makes members, and a member may do anything.
func (s *Server) rotateJoinToken(w http.ResponseWriter, r *http.Request) error {
	token, err := s.svc.RotateJoinSecret(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"join_token": token})
	return nil
}
