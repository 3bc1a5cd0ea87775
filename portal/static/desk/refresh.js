// The dashboard keeps itself current by reloading every N seconds (data-refresh on <main>),
// but never while a librarian is using a form: once a field is changed or has the focus the
// page stays as it is until the form is sent (or the "Refresh" link is used). A hidden tab
// waits too. Without script the page simply has the "Refresh" link.
(function () {
  "use strict";
  var holder = document.querySelector("[data-refresh]");
  if (!holder) { return; }
  var seconds = parseInt(holder.getAttribute("data-refresh"), 10) || 15;
  var touched = false;
  function markTouched(event) {
    if (event.target && event.target.closest && event.target.closest("form")) { touched = true; }
  }
  document.addEventListener("input", markTouched, true);
  document.addEventListener("change", markTouched, true);
  function busy() {
    var active = document.activeElement;
    var inForm = active && active !== document.body && active.closest && active.closest("form");
    return touched || Boolean(inForm) || document.hidden;
  }
  function tick() {
    if (busy()) {
      return false;
    }
    window.location.reload();
    return true;
  }
  window.setInterval(tick, seconds * 1000);
  window.hotspotDeskRefresh = tick;  // the browser test calls it instead of waiting
}());
