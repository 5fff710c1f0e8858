package api_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clusterkeep/clusterkeep/internal/api"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/security"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
)

// The dashboard's session cookie: set by a same-origin login with a valid
// token, HttpOnly, Secure and SameSite=Strict; taken for GET requests only
// and for the read role only, so a forged request that changes anything
// fails even with an admin's cookie.
func TestDashboardSessionCookie(t *testing.T) {
	nodes := tc.InProcess(t, 1)
	ctx := tc.Context(t)
	tr := tc.UseTrust(t)
	ca, err := client.LoadCA(tr.CACert)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{
		Transport:     security.HTTPTransport(func() (*tls.Config, error) { return security.ClientConfig(ca, nil), nil }),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := "https://" + nodes[0].API()
	do := func(method, path string, body string, hdr map[string]string, cookie string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: cookie})
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	login := func(token string, extra map[string]string) *http.Response {
		h := map[string]string{}
		for k, v := range form {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		resp, _ := do(http.MethodPost, "/ui/login", url.Values{"token": {token}}.Encode(), h, "")
		return resp
	}

	// Without a session a browser is sent to the login form; an API
	// client gets 401.
	if resp, _ := do(http.MethodGet, "/ui/", "", map[string]string{"Accept": "text/html"}, ""); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("GET /ui/ without a session: %s to %q, want 303 to /ui/login", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := do(http.MethodGet, "/ui/api/cluster", "", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /ui/api/cluster without a session: %s, want 401", resp.Status)
	}

	// A wrong token, and a login posted from another site, set nothing.
	for name, resp := range map[string]*http.Response{
		"wrong token":  login("ckt_not-a-token-of-this-cluster", nil),
		"cross origin": login(tr.AdminToken, map[string]string{"Origin": "https://evil.example"}),
		"cross site":   login(tr.AdminToken, map[string]string{"Sec-Fetch-Site": "cross-site"}),
	} {
		if resp.StatusCode < 400 || len(resp.Cookies()) > 0 {
			t.Errorf("login with %s: %s, cookies %v; want refused, no cookie", name, resp.Status, resp.Cookies())
		}
	}

	resp := login(tr.AdminToken, map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("login: %s to %q, want 303 to /ui/", resp.Status, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == api.SessionCookie {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
		t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/", session)
	}

	// With the cookie: the pages and every read.
	for _, path := range []string{"/ui/", "/ui/hive", "/ui/backups", "/ui/api/cluster", "/v1/cluster", "/metrics"} {
		if resp, body := do(http.MethodGet, path, "", nil, session.Value); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the session: %s %s", path, resp.Status, body)
		}
	}
	// The cluster's secrets are not shown.
	if resp, body := do(http.MethodGet, "/ui/hive?key=Cluster/Security", "", nil, session.Value); resp.StatusCode == http.StatusOK || strings.Contains(body, "JoinSecret") {
		t.Errorf("GET /ui/hive?key=Cluster/Security: %s, shows JoinSecret: %v", resp.Status, strings.Contains(body, "JoinSecret"))
	}
	// Read only, even with an admin's token: an operator's GET is refused.
	if resp, _ := do(http.MethodGet, "/v1/tokens", "", nil, session.Value); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /v1/tokens with an admin's session: %s, want 403", resp.Status)
	}
	// Never for a change: a forged write with the admin's cookie is
	// anonymous.
	before, err := tc.Open(t, nodes[0].API()).GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	txn := `{"ops":[{"kind":"set-value","key":"Apps/Forged","value":{"name":"X","type":"uint32","data":1}}]}`
	if resp, body := do(http.MethodPost, "/v1/txn", txn, map[string]string{"Content-Type": "application/json"}, session.Value); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /v1/txn with only the session cookie: %s %s, want 401", resp.Status, body)
	}
	if resp, _ := do(http.MethodPost, "/v1/nodes/n1/pause", "", nil, session.Value); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /v1/nodes/n1/pause with only the session cookie: %s, want 401", resp.Status)
	}
	after, err := tc.Open(t, nodes[0].API()).GetClusterInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Seq != before.Seq {
		t.Errorf("the hive changed: seq %d -> %d", before.Seq, after.Seq)
	}

	// Logging out clears the cookie.
	resp, _ = do(http.MethodPost, "/ui/logout", "", map[string]string{"Sec-Fetch-Site": "same-origin"}, session.Value)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Errorf("logout: %s, cookies %v; want the session cookie expired", resp.Status, resp.Cookies())
	}
}
