// The cluster and groups pages keep their tables current: they ask this
// node for the cluster (or the groups) every 2 seconds and rewrite the
// table. Text only (never HTML) goes into the page.
"use strict";

(function () {
  var pollMs = 2000;

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el) {
      el.textContent = text;
    }
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) {
      e.textContent = text;
    }
    if (cls) {
      e.className = cls;
    }
    return e;
  }

  function cell(tr, text, cls) {
    var td = el("td", text, cls);
    tr.appendChild(td);
    return td;
  }

  // when shows a time as the server's pages do: UTC, to the second.
  function when(s) {
    if (!s) {
      return "—";
    }
    return new Date(s).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function renderCluster(c) {
    setText("cluster-name", c.name);
    setText("cluster-id", c.id);
    setText("generation", String(c.generation));
    setText("leader", c.leader || "none");
    setText("commit", String(c.commit_index));
    setText("seq", String(c.seq));
    setText("answered-by", c.answered_by);
    var tbody = document.querySelector("#members tbody");
    var rows = document.createDocumentFragment();
    (c.nodes || []).forEach(function (n) {
      var tr = document.createElement("tr");
      tr.dataset.node = n.name;
      tr.dataset.state = n.state;
      cell(tr, n.name);
      cell(tr, n.state, "state state-" + n.state);
      cell(tr, n.leader ? "leader" : "follower");
      cell(tr, n.api_addr);
      cell(tr, String(n.applied_index));
      cell(tr, String(n.seq));
      cell(tr, n.why || "", "why");
      rows.appendChild(tr);
    });
    tbody.replaceChildren(rows);
  }

  function resourcesCell(tr, g) {
    var td = cell(tr);
    if (g.owner_report) {
      td.appendChild(el("span", "owner reports " + g.owner_report, "muted"));
    }
    var rs = g.resources || [];
    if (rs.length === 0) {
      if (!g.owner_report) {
        td.appendChild(document.createTextNode("—"));
      }
      return;
    }
    var ul = el("ul", null, "resources");
    rs.forEach(function (r) {
      var li = el("li");
      li.dataset.resource = r.name;
      li.dataset.state = r.state;
      li.appendChild(document.createTextNode(r.name + ": "));
      li.appendChild(el("span", r.state, "state state-" + r.state));
      if (r.restarts) {
        li.appendChild(document.createTextNode(", restarted " + r.restarts + "×"));
      }
      if (r.last_failure) {
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", r.last_failure + " (" + when(r.last_failure_at) + ")", "why"));
      }
      ul.appendChild(li);
    });
    td.appendChild(ul);
  }

  function renderGroups(v) {
    if (v.leader) {
      setText("groups-source", "As the leader, " + v.leader + ", places them, with each resource's state as the group's owner reports it.");
    } else {
      setText("groups-source", "From " + v.answered_by + "'s own records of the groups: the resources' states come from the leader, which did not answer" +
        (v.note ? " (" + v.note + ")" : "") + ".");
    }
    var groups = v.groups || [];
    var rows = document.createDocumentFragment();
    groups.forEach(function (g) {
      var tr = document.createElement("tr");
      tr.dataset.group = g.name;
      tr.dataset.state = g.state;
      tr.dataset.owner = g.owner || "";
      tr.dataset.next = g.next || "";
      tr.dataset.report = g.owner_report || "";
      cell(tr, g.name);
      cell(tr, g.wanted);
      cell(tr, g.state, "state state-" + g.state);
      cell(tr, (g.owner || "—") + (g.next ? " → " + g.next : ""));
      cell(tr, (g.reason || "") + (g.held ? " Held: " + g.held : ""), "why");
      cell(tr, g.failovers + " / " + g.failover_threshold + " in " + g.failover_period);
      cell(tr, g.last_failure ? g.last_failure + " (" + when(g.last_failure_at) + ")" : "—", "why");
      resourcesCell(tr, g);
      rows.appendChild(tr);
    });
    document.querySelector("#groups tbody").replaceChildren(rows);
    document.getElementById("no-groups").hidden = groups.length > 0;
  }

  var pages = {
    overview: { url: "/ui/api/cluster", render: renderCluster },
    groups: { url: "/ui/api/groups", render: renderGroups },
  };
  var current = pages[document.body.dataset.page];
  if (!current) {
    return;
  }

  function poll() {
    fetch(current.url, { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) {
        if (resp.status === 401) {
          window.location.assign("/ui/login");
          return null;
        }
        return resp.json().then(function (body) {
          if (!resp.ok) {
            throw new Error(body.error || body.message || resp.statusText);
          }
          return body;
        });
      })
      .then(function (body) {
        if (body) {
          current.render(body);
          setText("updated", new Date().toLocaleTimeString());
          setText("poll-error", "");
        }
      })
      .catch(function (err) {
        // The node may be busy or restarting: say so, and keep polling.
        setText("poll-error", "Last refresh failed: " + err.message);
      })
      .finally(function () {
        window.setTimeout(poll, pollMs);
      });
  }

  window.setTimeout(poll, pollMs);
})();
