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
