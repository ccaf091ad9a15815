// The open tab ← websocket. Works with htmx's ws extension (hx-ext="ws,activity-live").
//
// - On every (re)connect, tell the server the newest event this tab shows, so it can
//   send what was missed while the socket was down.
// - Drop rows the tab already shows (a row can come both live and in a resync).
// - Show the connection state: connecting, live or reconnecting.
(function () {
  const STATE_TEXT = {
    connecting: "Connecting to live updates…",
    live: "Live: new activity appears automatically",
    reconnecting: "Connection lost, reconnecting…",
    "signed-out": "Live updates stopped: you were signed out.",
    forbidden: "Live updates stopped: your access to this client's log changed.",
    stopped: "Live updates stopped.",
  };
  // What the viewer can do about a stop: sign in again, or reload to see where things stand.
  const STATE_ACTION = { "signed-out": "Sign in again", forbidden: "Reload", stopped: "Reload" };

  function setState(state) {
    const status = document.getElementById("activity-live-status");
    if (!status || status.dataset.state === state) return;
    status.dataset.state = state;
    status.textContent = STATE_TEXT[state];
    const action = document.getElementById("activity-live-action");
    if (!action) return;
    action.hidden = !STATE_ACTION[state];
    action.textContent = STATE_ACTION[state] || "";
    const here = window.location.pathname + window.location.search;
    action.href = state === "signed-out" ? `/login/?next=${encodeURIComponent(here)}` : here;
  }

  // New rows are announced politely, and a viewer scrolled down the list is offered a way
  // up to them instead of rows appearing unseen above.
  function announce(rows) {
    const announcer = document.getElementById("activity-announcer");
    if (!announcer || !rows.length) return;
    const first = rows[0];
    const what = `${first.querySelector(".badge").textContent} by ${first.querySelector('[data-label="Portal user"]').textContent}`;
    announcer.textContent = rows.length === 1 ? `New event: ${what}` : `${rows.length} new events, the newest: ${what}`;
  }

  let unseen = 0;
  function offerNewRows(rows) {
    const control = document.getElementById("activity-new-events");
    const table = document.getElementById("activity-rows");
    if (!control || !table || !rows.length) return;
    if (table.getBoundingClientRect().top >= 0) return; // the newest rows are in view
    unseen += rows.length;
    control.textContent = `${unseen} new event${unseen === 1 ? "" : "s"} ↑`;
    control.hidden = false;
  }

  document.addEventListener("click", (event) => {
    if (event.target.id !== "activity-new-events") return;
    event.target.hidden = true;
    unseen = 0;
    const first = document.querySelector("#activity-rows tr.event");
    document.getElementById("activity-filters")?.scrollIntoView();
    if (first) first.focus({ preventScroll: true });
  });
  window.addEventListener("scroll", () => {
    const control = document.getElementById("activity-new-events");
    const table = document.getElementById("activity-rows");
    if (control && !control.hidden && table && table.getBoundingClientRect().top >= 0) {
      control.hidden = true;
      unseen = 0;
    }
  }, { passive: true });

  function shownIds() {
    return [...document.querySelectorAll("#activity-rows tr.event")].map((row) => Number(row.id.slice(6)));
  }

  htmx.defineExtension("activity-live", {
    transformResponse: function (text) {
      const template = document.createElement("template");
      template.innerHTML = text;
      template.content.querySelectorAll("tr.event").forEach((row) => {
        if (document.getElementById(row.id)) row.remove();
      });
      return template.innerHTML;
    },
  });

  // A summary card shows the row's time and how long ago (and `extra`), if it is newer than its own.
  function showIfNewer(card, row, ...extra) {
    const shownTime = card && card.querySelector("time");
    const rowTime = row.querySelector("time");
    if (!card || (shownTime && shownTime.dateTime >= rowTime.dateTime)) return;
    card.replaceChildren(rowTime.cloneNode(true), " ", row.querySelector(".ago").cloneNode(true), ...extra);
  }

  // Keep the login summary true as logins arrive: the newest login, and both counts.
  function countNewLogins(tbody) {
    tbody.querySelectorAll("tr.event-login.event-new:not([data-counted])").forEach((row) => {
      row.dataset.counted = "1";
      showIfNewer(document.getElementById("summary-last-login"), row);
      ["summary-7d", "summary-30d"].forEach((id) => {
        const counter = document.getElementById(id);
        if (counter) counter.textContent = String(Number(counter.textContent) + 1);
      });
    });
  }

  // And the failed sign-ins: the count (a lockout is no attempt, as on the server) and the last one.
  function countNewFailures(tbody) {
    tbody.querySelectorAll("tr.event-login_failed.event-new:not([data-counted])").forEach((row) => {
      row.dataset.counted = "1";
      const counter = document.getElementById("summary-failed-7d");
      if (counter && row.dataset.alert !== "lockout") counter.textContent = String(Number(counter.textContent) + 1);
      const reason = row.querySelector(".reason");
      const email = row.querySelector('td[data-label="Portal user"]');
      showIfNewer(document.getElementById("summary-last-failure"), row, Object.assign(document.createElement("span"), {
        className: "muted reason", textContent: `${reason ? reason.textContent : ""} · ${email.textContent}`,
      }));
    });
  }

  let everOpened = false;

  document.addEventListener("htmx:wsConnecting", () => setState(everOpened ? "reconnecting" : "connecting"));

  document.addEventListener("htmx:wsOpen", (event) => {
    everOpened = true;
    retries = 0;
    setState("live");
    const after = Math.max(0, ...shownIds());
    event.detail.socketWrapper.send(JSON.stringify({ type: "resync", after: after }));
  });

  // Back off to at most 10 s between attempts, with jitter so a restarted server is not
  // hit by every tab at once.
  htmx.config.wsReconnectDelay = (retry) => Math.min(1000 * 2 ** retry, 10000) * (0.5 + Math.random() / 2);
  let retries = 0;

  document.addEventListener("htmx:wsClose", (event) => {
    const code = event.detail.event.code;
    if (code === 4401) {
      // The session behind this socket ended or changed its key (a password change): open
      // a new socket with the current cookie; its handshake lets us back in, or says 4403.
      setState("reconnecting");
      setTimeout(() => event.detail.socketWrapper.reconnect(), 0);
      return;
    }
    if (code >= 4000) {
      // 4001: nobody is signed in any more; 4403: access ended; 4400 and others: refused.
      setState(code === 4001 ? "signed-out" : code === 4403 ? "forbidden" : "stopped");
      return;
    }
    setState("reconnecting");
    // htmx itself retries after 1006, 1011, 1012 and 1013; a server that shuts down
    // cleanly says 1001 (going away), which it does not retry. Retry those here.
    if (![1006, 1011, 1012, 1013].includes(code) && document.body.contains(event.target)) {
      setTimeout(() => event.detail.socketWrapper.reconnect(), htmx.config.wsReconnectDelay(retries++));
    }
  });

  document.addEventListener("htmx:wsAfterMessage", () => {
    const control = document.getElementById("activity-live-control");
    if (control && control.dataset.action === "reload") {
      // Too much was missed to send row by row: fetch the list again.
      control.dataset.action = "";
      htmx.ajax("GET", window.location.href, { target: "#activity-results" });
      return;
    }
    const tbody = document.getElementById("activity-rows");
    if (!tbody) return;
    // Keep newest first even when an event arrives with an earlier time than one shown.
    const rows = [...tbody.querySelectorAll("tr.event")];
    const key = (row) => [Number(row.dataset.sort), Number(row.id.slice(6))];
    const sorted = [...rows].sort((a, b) => {
      const [ta, ia] = key(a), [tb, ib] = key(b);
      return tb - ta || ib - ia;
    });
    if (sorted.some((row, i) => row !== rows[i])) {
      const loadOlder = document.getElementById("load-older");
      sorted.forEach((row) => {
        tbody.insertBefore(row, loadOlder);
        const details = document.getElementById(`${row.id}-details`); // an expanded row's details stay under it
        if (details) tbody.insertBefore(details, loadOlder);
      });
    }
    const arrived = [...tbody.querySelectorAll("tr.event.event-new:not([data-seen])")];
    arrived.forEach((row) => { row.dataset.seen = "1"; });
    arrived.sort((a, b) => Number(b.dataset.sort) - Number(a.dataset.sort));
    announce(arrived);
    offerNewRows(arrived);
    countNewLogins(tbody);
    countNewFailures(tbody);
    if (rows.length) {
      tbody.closest("table").hidden = false;
      const empty = document.getElementById("activity-empty");
      if (empty) empty.hidden = true;
    }
  });
})();
