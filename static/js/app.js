// Keyboard support for ARIA tabs (WAI-ARIA Authoring Practices, "tabs with manual
// activation"): arrow keys, Home and End move focus; Enter or Space opens the tab.
document.addEventListener("keydown", (event) => {
  const tab = event.target.closest('[role="tab"]');
  if (!tab) return;
  const tabs = [...tab.closest('[role="tablist"]').querySelectorAll('[role="tab"]')];
  const index = tabs.indexOf(tab);
  let next = null;
  if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
  else if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
  else if (event.key === "Home") next = tabs[0];
  else if (event.key === "End") next = tabs[tabs.length - 1];
  else if (event.key === " ") { event.preventDefault(); tab.click(); return; }
  if (next) {
    event.preventDefault();
    tabs.forEach((t) => t.setAttribute("tabindex", t === next ? "0" : "-1"));
    next.focus();
  }
});

// After an htmx tab switch, keep keyboard focus on the selected tab.
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target.id === "client-tabs") {
    const selected = event.detail.target.querySelector('[role="tab"][aria-selected="true"]');
    if (selected) selected.focus();
  }
});

// The Activity Log's From and To dates bound each other, so From cannot pass To.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!input.matches('input[type="date"][name="date_from"], input[type="date"][name="date_to"]')) return;
  const { date_from: from, date_to: to } = input.form.elements;
  to.min = from.value || from.min;
  from.max = to.value || to.max;
});

// A date the browser itself refuses (typed past the other one) says why, where it is.
document.addEventListener("htmx:validation:halted", (event) => {
  event.target.reportValidity?.();
});

// One clock (clients/clock.py). "How long ago" keeps counting while a page stays open,
// in the same words the server uses.
const AGO_STEPS = [[365 * 86400, "year"], [30 * 86400, "month"], [86400, "day"], [3600, "hour"], [60, "minute"]];

function ago(when, now) {
  const seconds = Math.floor((now - when) / 1000);
  for (const [size, unit] of AGO_STEPS) {
    if (seconds >= size) {
      const count = Math.floor(seconds / size);
      return `${count} ${unit}${count === 1 ? "" : "s"} ago`;
    }
  }
  return "just now";
}

function refreshAgo(root = document) {
  const now = Date.now();
  root.querySelectorAll("[data-ago]").forEach((element) => {
    const text = ago(Date.parse(element.dataset.ago), now);
    if (element.textContent !== text) element.textContent = text;
  });
}
setInterval(refreshAgo, 15000);
document.addEventListener("htmx:afterSettle", () => refreshAgo());
document.addEventListener("htmx:wsAfterMessage", () => refreshAgo());

// `2026-11-25 21:09:32 EST` in the browser's own zone, for the tooltip of every time.
function spellLocal(date) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23", timeZoneName: "short",
  }).formatToParts(date).map((part) => [part.type, part.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${parts.timeZoneName}`;
}

// Hovering or focusing a time shows it in UTC (from the server) and in the viewer's own zone.
function addLocalTime(event) {
  const time = event.target.closest?.("time.stamp");
  if (!time || time.dataset.local) return;
  time.dataset.local = spellLocal(new Date(time.dateTime));
  time.title = `${time.title}\nYour time: ${time.dataset.local}`;
}
document.addEventListener("mouseover", addLocalTime);
document.addEventListener("focusin", addLocalTime);

// The zone switch (base.html) offers the browser's zone by name, which only the browser knows.
function fillBrowserZone() {
  const form = document.querySelector("form.zone-switch");
  if (!form) return;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  form.elements.browser_zone.value = zone;
  form.querySelector('option[value="browser"]').textContent = `Your browser: ${zone}`;
}
fillBrowserZone();

// The Activity Log's filters apply as they change, with one request for a burst of
// changes: arrow keys through a select, or a search typed and then Enter.
let filtersPending = null;
document.addEventListener("change", (event) => {
  const form = event.target.closest("#activity-filters");
  if (!form) return;
  clearTimeout(filtersPending);
  filtersPending = setTimeout(() => htmx.trigger(form, "filters-changed"), 400);
});
document.addEventListener("submit", (event) => {
  if (event.target.id === "activity-filters") clearTimeout(filtersPending);
});

// "Load older": the address keeps the position (a reload or a shared link lands there),
// and focus moves to the first of the rows it added. The link is gone once its rows are
// in, so the rows themselves (htmx:load) finish the job.
let olderRequested = null;
document.addEventListener("htmx:beforeRequest", (event) => {
  const link = event.detail.elt;
  if (!link.matches?.("#load-older a")) return;
  const rows = document.querySelectorAll("#activity-rows tr.event");
  olderRequested = { after: rows.length ? rows[rows.length - 1].id : "", href: link.getAttribute("href") };
});
document.addEventListener("htmx:load", (event) => {
  if (!olderRequested || !event.target.matches?.("tr.event")) return;
  const { after, href } = olderRequested;
  olderRequested = null;
  const last = after && document.getElementById(after);
  const first = last ? last.nextElementSibling : event.target;
  if (first && first.matches("tr.event")) first.focus();
  history.replaceState(history.state, "", href);
});
