// Activity Log rows expand in place (the row partial's "Details" button, a link to the
// event's page without JavaScript). The first expansion asks the server for the details
// row (htmx puts it under the row); later presses hide and show it without asking again.
(function () {
  function detailsOf(toggle) {
    return document.getElementById(toggle.getAttribute("aria-controls"));
  }

  document.addEventListener("htmx:confirm", (event) => {
    const toggle = event.detail.elt;
    if (!toggle.classList || !toggle.classList.contains("row-toggle")) return;
    const details = detailsOf(toggle);
    if (!details) return; // not fetched yet: let htmx ask for it
    event.preventDefault();
    const expand = toggle.getAttribute("aria-expanded") !== "true";
    details.hidden = !expand;
    toggle.setAttribute("aria-expanded", String(expand));
  });

  // Every toggle says whether its details are shown: after a fetch, and after a live row
  // or "Load older" adds toggles of their own.
  document.addEventListener("htmx:afterSettle", () => {
    document.querySelectorAll(".row-toggle").forEach((toggle) => {
      const details = detailsOf(toggle);
      toggle.setAttribute("aria-expanded", String(Boolean(details && !details.hidden)));
    });
  });

  // A link that acts as a button answers Space as well as Enter.
  document.addEventListener("keydown", (event) => {
    if (event.key === " " && event.target.classList && event.target.classList.contains("row-toggle")) {
      event.preventDefault();
      event.target.click();
    }
  });
})();
