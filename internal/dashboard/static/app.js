// The cluster page keeps its member table current: it asks this node for
// the cluster every 2 seconds and rewrites the table. Text only (never
// HTML) goes into the page.
"use strict";

(function () {
  if (document.body.dataset.page !== "overview") {
    return;
  }
  var pollMs = 2000;

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el) {
      el.textContent = text;
    }
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) {
      td.className = cls;
    }
    tr.appendChild(td);
  }

  function render(c) {
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
    setText("updated", new Date().toLocaleTimeString());
    setText("poll-error", "");
  }

  function poll() {
    fetch("/ui/api/cluster", { credentials: "same-origin", cache: "no-store" })
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
      .then(function (c) {
        if (c) {
          render(c);
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
