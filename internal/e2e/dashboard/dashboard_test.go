// Package dashboard tests the agent's web dashboard in a real headless
// Chromium (Debian's chromium package, found on the PATH or in
// $CLUSTERKEEP_CHROMIUM), driven with chromedp, against a local cluster of
// three agent processes. scripts/test.sh installs chromium when it can,
// and says so when this package could not run.
//
// Chromium trusts the cluster's TLS certificate through
// --ignore-certificate-errors-spki-list naming the served certificate's
// public key (and the cluster authority's): errors are ignored for that
// key only, never for any other site, and only in this test's browser.
package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/clusterkeep/clusterkeep/internal/api"
	"github.com/clusterkeep/clusterkeep/internal/backup"
	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/schedule"
	"github.com/clusterkeep/clusterkeep/internal/security"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// chromiumPath finds the browser, or fails the test: scripts/test.sh runs
// this package only when chromium is there (it installs it first).
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("CLUSTERKEEP_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on the PATH (scripts/install-chromium.sh installs Debian's): the dashboard test did not run")
	return ""
}

// spki is the base64 SHA-256 of a certificate's public key, the form
// Chromium's --ignore-certificate-errors-spki-list takes.
func spki(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// servedKeys are the SPKI hashes of the certificates addr serves, checked
// against the cluster's authority, and of the authority.
func servedKeys(t *testing.T, addr string, ca *x509.Certificate) string {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	host, _, _ := strings.Cut(addr, ":")
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: host})
	if err != nil {
		t.Fatalf("TLS to %s with the cluster's authority: %v", addr, err)
	}
	defer conn.Close()
	keys := []string{spki(ca)}
	for _, c := range conn.ConnectionState().PeerCertificates {
		keys = append(keys, spki(c))
	}
	return strings.Join(keys, ",")
}

// consoleErrors collects what the page reports as errors.
type consoleErrors struct {
	mu   sync.Mutex
	errs []string
}

func (c *consoleErrors) listen(ev any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			c.errs = append(c.errs, "console.error: "+strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		c.errs = append(c.errs, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
	case *cdplog.EventEntryAdded:
		// What the browser itself reports: a load the Content Security
		// Policy refused, a resource that failed to load (network), a
		// violation or intervention. No script calls console.error for
		// those, so only the log shows them.
		e := ev.Entry
		if e.Level == cdplog.EntryLevelError || (e.Level == cdplog.EntryLevelWarning && (e.Source == cdplog.EntrySourceSecurity || e.Source == cdplog.EntrySourceViolation)) {
			c.errs = append(c.errs, fmt.Sprintf("browser log (%s, %s) at %s: %s", e.Source, e.Level, e.URL, e.Text))
		}
	}
}

func (c *consoleErrors) check(t *testing.T, when string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		t.Fatalf("%s: errors in the page's console:\n%s", when, strings.Join(c.errs, "\n"))
	}
}

// take waits until errors matching each of want were reported, and
// clears them all.
func (c *consoleErrors) take(t *testing.T, want ...string) {
	t.Helper()
	tc.Eventually(t, "the browser reports "+strings.Join(want, ", "), func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		all := strings.Join(c.errs, "\n")
		for _, w := range want {
			if !strings.Contains(all, w) {
				return fmt.Errorf("no %q among %q", w, c.errs)
			}
		}
		t.Logf("reported, as expected: %q", c.errs)
		c.errs = nil
		return nil
	})
}

// member is a row of the member table.
type member struct {
	Node  string `json:"node"`
	State string `json:"state"`
}

const membersJS = `Array.from(document.querySelectorAll("#members tbody tr")).map(tr => ({node: tr.dataset.node, state: tr.dataset.state}))`

func states(ms []member) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		out[m.Node] = m.State
	}
	return out
}

// groupsLease are short group leases, so the group fails over in seconds
// (internal/e2e's groups tests use the same).
var groupsLease = []string{"--group-lease", "3s", "--group-lease-margin", "1s", "--group-lease-renew", "250ms"}

// The dashboard of a three-node cluster, in a real browser: the login
// with the admin token, the member table with the three members Up, then
// node3 Down once it is stopped (the page's script updates the table; the
// page is not reloaded); in a second tab the groups page with a group
// Online on node3, then on another node once node3 is stopped (updated
// without a reload, and the same once reloaded), as the metrics of the
// nodes left say too; the hive browser and the backups page, with no
// error in the console at any time; the session cookie is HttpOnly,
// Secure and SameSite=Strict.
func TestDashboardInChromium(t *testing.T) {
	browser := chromiumPath(t)
	c := tc.ProcessesWith(t, 3, groupsLease...)
	cr, err := c.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	ctx := tc.Context(t)
	cl, err := client.OpenClusterWith(ctx, []string{c.Nodes[0].API}, client.WithCredentials(cr))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.SetValue(ctx, "Apps/Web", wire.StringValue("Greeting", `<b>hello</b> "web"`)); err != nil {
		t.Fatal(err)
	}
	node1 := c.Nodes[0].API
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("ignore-certificate-errors-spki-list", servedKeys(t, node1, cr.CA)),
		chromedp.NoSandbox, // tests may run as root, where chromium's sandbox refuses to start
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	var console consoleErrors
	if err := chromedp.Listen(bctx, console.listen); err != nil {
		t.Fatalf("start chromium %s: %v", browser, err)
	}

	// doIn runs steps in a tab; readIn runs one step that reads
	// something; do and readString do so in the first tab.
	doIn := func(tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		rctx, cancel := context.WithTimeout(tab, time.Minute)
		defer cancel()
		if err := chromedp.Do(rctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	readIn := func(tab context.Context, what string, a chromedp.Action[string]) string {
		t.Helper()
		rctx, cancel := context.WithTimeout(tab, time.Minute)
		defer cancel()
		v, err := chromedp.Run(rctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		doIn(bctx, what, steps...)
	}
	readString := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		return readIn(bctx, what, a)
	}
	base := "https://" + node1

	// Not logged in: the dashboard sends the browser to the login form.
	do("open the dashboard", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	if loc := readString("location", chromedp.Location()); !strings.HasSuffix(loc, "/ui/login") {
		t.Fatalf("not logged in, the dashboard is at %s, want the login form", loc)
	}
	do("log in",
		chromedp.SendKeys(chromedp.ID("token"), cr.Token),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("members")))
	if loc := readString("location", chromedp.Location()); !strings.HasSuffix(loc, "/ui/") {
		t.Fatalf("after login the browser is at %s, want /ui/", loc)
	}
	cookies, err := chromedp.Call(bctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatalf("read the cookies: %v", err)
	}
	found := false
	for _, ck := range cookies.Cookies {
		if ck.Name == api.SessionCookie {
			found = true
			if !ck.HTTPOnly || !ck.Secure || ck.SameSite != network.CookieSameSiteStrict {
				t.Errorf("session cookie: HttpOnly %v, Secure %v, SameSite %q; want HttpOnly, Secure, Strict", ck.HTTPOnly, ck.Secure, ck.SameSite)
			}
		}
	}
	if !found {
		t.Fatalf("no session cookie %s among %d cookies", api.SessionCookie, len(cookies.Cookies))
	}
	if scriptSees := readString("document.cookie", chromedp.Evaluate[string](`document.cookie`)); strings.Contains(scriptSees, api.SessionCookie) {
		t.Errorf("the page's script can read the session cookie: %q", scriptSees)
	}

	ms, err := chromedp.Run(bctx, chromedp.Evaluate[[]member](membersJS))
	if err != nil {
		t.Fatalf("read the member table: %v", err)
	}
	leader := readString("leader", chromedp.Text(chromedp.ID("leader")))
	generation := readString("generation", chromedp.Text(chromedp.ID("generation")))
	got := states(ms)
	if len(got) != 3 || got["node1"] != "Up" || got["node2"] != "Up" || got["node3"] != "Up" {
		t.Fatalf("member table %v, want node1, node2 and node3 Up", got)
	}
	if leader == "" || leader == "none" || generation == "" {
		t.Errorf("leader %q, generation %q", leader, generation)
	}
	console.check(t, "the cluster page")

	// The console check sees what only the browser's log reports: an
	// image the Content Security Policy refuses, and one that is not
	// there.
	readString("load what the page may not", chromedp.Evaluate[string](`
		for (const src of ["https://example.invalid/refused.png", "/ui/static/missing.png"]) {
			const img = document.createElement("img");
			img.src = src;
			document.body.appendChild(img);
		}
		"asked"`))
	console.take(t, "Content Security Policy", "404")
	do("reload the cluster page", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("members")))
	console.check(t, "the cluster page, reloaded")

	// A group of one resource, online on node3 (its preferred owner),
	// shown so on the groups page of a second tab.
	if _, err := cl.PutResource(ctx, roles.Resource{Name: "web", Type: "exec", Params: map[string]string{"start": "sleep 1000000"},
		MonitorInterval: roles.Duration(500 * time.Millisecond), MonitorTimeout: roles.Duration(400 * time.Millisecond),
		StopTimeout: roles.Duration(2 * time.Second)}, wire.PutCreate); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutGroup(ctx, roles.Group{Name: "site", Resources: []string{"web"}, PreferredOwners: []string{"node3", "node2", "node1"},
		FailoverThreshold: 3, Wanted: roles.WantedOnline}, wire.PutCreate); err != nil {
		t.Fatal(err)
	}
	waitGroup(ctx, t, cl, "online on node3", func(s placement.GroupStatus) bool { return s.Owner == "node3" })
	gctx, cancelTab := chromedp.NewContext(bctx)
	defer cancelTab()
	if err := chromedp.Listen(gctx, console.listen); err != nil {
		t.Fatalf("open a second tab: %v", err)
	}
	doIn(gctx, "open the groups page", chromedp.Navigate(base+"/ui/groups"), chromedp.WaitVisible(chromedp.ID("groups")))
	if nav := readIn(gctx, "the navigation", chromedp.Text(chromedp.CSS("nav a.current"))); nav != "Groups" {
		t.Errorf("the current page in the navigation is %q, want Groups", nav)
	}
	site := groupRow(t, gctx, "site")
	if site.State != "Online" || site.Owner != "node3" || site.Report != "Online" || len(site.Resources) != 1 ||
		site.Resources[0].Name != "web" || site.Resources[0].State != "Online" || site.Cells[1] != "online" || site.Cells[5] != "0 / 3 in 6h" {
		t.Fatalf("groups page: %+v, want site wanted online, Online on node3 with web Online, 0 / 3 failovers in 6h", site)
	}
	if src := readIn(gctx, "the groups' source", chromedp.Text(chromedp.ID("groups-source"))); !strings.HasPrefix(src, "As the leader") {
		t.Errorf("groups page says %q, want the leader's view", src)
	}
	console.check(t, "the groups page")
	readIn(gctx, "mark the groups page", chromedp.Evaluate[string](`window.__notReloaded = "yes"; window.__notReloaded`))

	// Stop node3, the hard way (a graceful stop moves its groups without
	// counting a failover): the cluster page's polling shows it Down
	// without a reload, and the groups page the group failed over to
	// another node.
	if _, err := c.Stop("node3", true); err != nil {
		t.Fatal(err)
	}
	readString("mark the page", chromedp.Evaluate[string](`window.__notReloaded = "yes"; window.__notReloaded`))
	tc.Eventually(t, "node3 shown Down", func() error {
		rctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		ms, err := chromedp.Run(rctx, chromedp.Evaluate[[]member](membersJS))
		if err != nil {
			return err
		}
		still, err := chromedp.Run(rctx, chromedp.Evaluate[string](`String(window.__notReloaded)`))
		if err != nil {
			return err
		}
		if still != "yes" {
			return fmt.Errorf("the page was reloaded")
		}
		got := states(ms)
		if got["node3"] != "Down" || got["node1"] != "Up" || got["node2"] != "Up" {
			return fmt.Errorf("member table %v, want node3 Down, node1 and node2 Up", got)
		}
		return nil
	})
	console.check(t, "the cluster page after node3 stopped")

	var moved groupView
	tc.Eventually(t, "the groups page shows site failed over", func() error {
		rctx, cancel := context.WithTimeout(gctx, 10*time.Second)
		defer cancel()
		still, err := chromedp.Run(rctx, chromedp.Evaluate[string](`String(window.__notReloaded)`))
		if err != nil {
			return err
		}
		if still != "yes" {
			return fmt.Errorf("the groups page was reloaded")
		}
		rows, err := chromedp.Run(rctx, chromedp.Evaluate[[]groupView](groupsJS))
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.Group == "site" {
				moved = r
				if r.State == "Online" && r.Owner != "" && r.Owner != "node3" && len(r.Resources) == 1 && r.Resources[0].State == "Online" {
					return nil
				}
			}
		}
		return fmt.Errorf("groups page rows %+v, want site Online with web Online on a node other than node3", rows)
	})
	if moved.Cells[5] != "1 / 3 in 6h" || !strings.Contains(moved.Cells[6], "node3") {
		t.Errorf("site after the failover: failovers %q, last failure %q; want 1 / 3 in 6h, node3 lost", moved.Cells[5], moved.Cells[6])
	}
	doIn(gctx, "reload the groups page", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("groups")))
	if again := groupRow(t, gctx, "site"); again.State != "Online" || again.Owner != moved.Owner || len(again.Resources) != 1 ||
		again.Cells[5] != moved.Cells[5] || again.Cells[6] != moved.Cells[6] {
		t.Errorf("groups page reloaded: %+v, want what its refresh showed: %+v", again, moved)
	}
	console.check(t, "the groups page after node3 stopped")

	// Every node left serves the group's metrics from its own hive
	// (one of them is a follower).
	for _, nd := range c.Nodes[:2] {
		tc.Eventually(t, nd.Name+"'s group metrics", func() error {
			return checkGroupMetrics(ctx, nd.API, cr, "site", moved.Owner)
		})
	}

	// The hive browser: the typed value, shown as text (not as markup);
	// the cluster's secrets are not listed.
	do("browse the hive", chromedp.Navigate(base+"/ui/hive?key=Apps/Web"), chromedp.WaitVisible(chromedp.ID("values")))
	data := readString("the values", chromedp.Text(chromedp.ID("values")))
	if !strings.Contains(data, "Greeting") || !strings.Contains(data, "string") || !strings.Contains(data, `"<b>hello</b> \"web\""`) {
		t.Errorf("hive page shows %q, want the value Greeting as a quoted string", data)
	}
	do("browse the cluster's key", chromedp.Navigate(base+"/ui/hive?key=Cluster"), chromedp.WaitVisible(chromedp.ID("subkeys")))
	subkeys := readString("the subkeys", chromedp.Text(chromedp.ID("subkeys")))
	if strings.Contains(subkeys, "Security") || !strings.Contains(subkeys, "Nodes") {
		t.Errorf("Cluster's subkeys on the page: %q, want Nodes and not Security", subkeys)
	}
	console.check(t, "the hive pages")

	// The backups page lists a backup node1's coordinator served and a
	// scheduled run, as rows with their results.
	res, err := backup.Create(ctx, backup.Options{DataDir: t.TempDir(), Cluster: []string{node1}, To: t.TempDir(), Node: "node1",
		Client: []client.Option{client.WithCredentials(cr)}})
	if err != nil {
		t.Fatal(err)
	}
	// Two more taken through node2: node1's page lists them too.
	var throughNode2 []string
	for range 2 {
		r, err := backup.Create(ctx, backup.Options{DataDir: t.TempDir(), Cluster: []string{c.Nodes[1].API}, To: t.TempDir(), Node: "node2",
			Client: []client.Option{client.WithCredentials(cr)}})
		if err != nil {
			t.Fatal(err)
		}
		throughNode2 = append(throughNode2, r.BackupID)
	}
	to := t.TempDir()
	if err := cl.SetSchedule(ctx, schedule.Config{Spec: "@every 1h", Target: to}); err != nil {
		t.Fatal(err)
	}
	asked, err := cl.RunSchedule(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var run schedule.Run
	tc.Eventually(t, "the scheduled run", func() error {
		s, err := cl.Schedule(ctx)
		if err != nil {
			return err
		}
		if run = s.State.Last; run.Started.Before(asked) || run.Result != schedule.OK {
			return fmt.Errorf("last run %+v", run)
		}
		return nil
	})
	do("open the backups page", chromedp.Navigate(base+"/ui/backups"), chromedp.WaitVisible(chromedp.CSS("section.backup-source")))
	sources, err := chromedp.Run(bctx, chromedp.Evaluate[[]backupSource](backupsJS))
	if err != nil {
		t.Fatalf("read the backups page: %v", err)
	}
	served, scheduled, inTarget := false, false, false
	servedByNode2 := map[string]bool{}
	for _, src := range sources {
		for _, r := range src.Rows {
			switch {
			case strings.Contains(src.Source, "shadow-copy coordinator") && r.ID == res.BackupID:
				served = r.Kind == "backup" && r.Result == "completed" && r.Where == "node1"
			case strings.Contains(src.Source, "shadow-copy coordinator") && slices.Contains(throughNode2, r.ID):
				servedByNode2[r.ID] = r.Kind == "backup" && r.Result == "completed" && r.Where == "node2"
			case strings.HasPrefix(src.Source, "Scheduled backups: @every 1h to "+to) && r.Where == run.Path:
				scheduled = r.Type == "scheduled" && r.Result == "completed" && r.Verified == "verified"
			case src.Source == "Sets in the schedule's target "+to && strings.HasPrefix(r.Where, run.Path):
				inTarget = r.Kind == "backup" && r.Result == "completed"
			}
		}
	}
	if !served || !scheduled || !inTarget || !servedByNode2[throughNode2[0]] || !servedByNode2[throughNode2[1]] {
		t.Errorf("the backups page lacks the backup %s node1 served (found: %v), the backups %v node2 served (found: %v), "+
			"or the scheduled run %s in the schedule's table (found: %v) and among the target's sets (found: %v): %+v",
			res.BackupID, served, throughNode2, servedByNode2, run.Path, scheduled, inTarget, sources)
	}
	console.check(t, "the backups page")
}

// backupSource is a table of the backups page, and its rows.
type backupSource struct {
	Source string `json:"source"`
	Rows   []struct {
		ID       string `json:"id"`
		Kind     string `json:"kind"`
		Type     string `json:"type"`
		Result   string `json:"result"`
		Verified string `json:"verified"`
		Where    string `json:"where"`
	} `json:"rows"`
}

const backupsJS = `Array.from(document.querySelectorAll("section.backup-source")).map(s => ({
	source: s.dataset.source,
	rows: Array.from(s.querySelectorAll("tbody tr")).map(tr => ({id: tr.dataset.id, kind: tr.dataset.kind, type: tr.dataset.type,
		result: tr.dataset.result, verified: tr.dataset.verified, where: tr.dataset.where}))}))`

// waitGroup waits until the leader reports group site online, its owner
// reporting it so, and ok accepts it.
func waitGroup(ctx context.Context, t *testing.T, cl *client.Cluster, what string, ok func(placement.GroupStatus) bool) {
	t.Helper()
	tc.Eventually(t, "group site "+what, func() error {
		list, err := cl.GroupsStatus(ctx)
		if err != nil {
			return err
		}
		for _, s := range list {
			if s.Name == "site" && s.State == "Online" && s.OwnerReport == "Online" && ok(s) {
				return nil
			}
		}
		return fmt.Errorf("groups %+v", list)
	})
}

// groupView is a row of the groups table: its data and its cells' text.
type groupView struct {
	Group     string   `json:"group"`
	State     string   `json:"state"`
	Owner     string   `json:"owner"`
	Next      string   `json:"next"`
	Report    string   `json:"report"`
	Cells     []string `json:"cells"`
	Resources []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"resources"`
}

const groupsJS = `Array.from(document.querySelectorAll("#groups tbody tr")).map(tr => ({
	group: tr.dataset.group, state: tr.dataset.state, owner: tr.dataset.owner, next: tr.dataset.next, report: tr.dataset.report,
	cells: Array.from(tr.cells).map(td => td.textContent.trim()),
	resources: Array.from(tr.querySelectorAll("li[data-resource]")).map(li => ({name: li.dataset.resource, state: li.dataset.state}))}))`

// groupRow reads the row of group name in tab.
func groupRow(t *testing.T, tab context.Context, name string) groupView {
	t.Helper()
	rctx, cancel := context.WithTimeout(tab, time.Minute)
	defer cancel()
	rows, err := chromedp.Run(rctx, chromedp.Evaluate[[]groupView](groupsJS))
	if err != nil {
		t.Fatalf("read the groups page: %v", err)
	}
	for _, r := range rows {
		if r.Group == name {
			if len(r.Cells) != 8 {
				t.Fatalf("group %s's row has %d cells: %+v", name, len(r.Cells), r)
			}
			return r
		}
	}
	t.Fatalf("group %s not on the groups page: %+v", name, rows)
	return groupView{}
}

// checkGroupMetrics scrapes addr's /metrics: group is Online (and in no
// other state) on owner alone.
func checkGroupMetrics(ctx context.Context, addr string, cr client.Credentials, group, owner string) error {
	hc := &http.Client{Transport: security.HTTPTransport(func() (*tls.Config, error) { return security.ClientConfig(cr.CA, nil), nil })}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cr.Token)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return fmt.Errorf("parse %s/metrics: %w", addr, err)
	}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	states := map[string]float64{}
	for _, m := range mfs["clusterkeep_group_state"].GetMetric() {
		if label(m, "group") == group {
			states[label(m, "state")] = m.GetGauge().GetValue()
		}
	}
	var owners []string
	for _, m := range mfs["clusterkeep_group_owner_info"].GetMetric() {
		if label(m, "group") == group {
			owners = append(owners, label(m, "node"))
		}
	}
	var failovers float64
	for _, m := range mfs["clusterkeep_group_failovers"].GetMetric() {
		if label(m, "group") == group {
			failovers = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{"Online": 1, "Pending": 0, "Offline": 0, "Failed": 0}
	if len(states) != len(want) || fmt.Sprint(states) != fmt.Sprint(want) || len(owners) != 1 || owners[0] != owner || failovers != 1 {
		return fmt.Errorf("%s: group %s states %v, owners %v, failovers %v; want Online on %s alone after 1 failover", addr, group, states, owners, failovers, owner)
	}
	return nil
}
