/* Facteur's own small behaviours; everything works without them. */
(function () {
  "use strict";

  // Dates are shown in the zone the browser reports.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var cookie = "facteur_tz=" + encodeURIComponent(zone);
    // Compared encoded, as stored: most zone names have a "/" in them.
    if (zone && ("; " + document.cookie + ";").indexOf("; " + cookie + ";") === -1) {
      document.cookie = cookie + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* an old browser: the server's zone is used */ }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-autosubmit]")) {
      target.form.submit();
    }
  });

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-toggle-nav]");
    if (toggle) {
      var open = document.body.classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      return;
    }
    // A click anywhere on a message row opens it, as in every mail client.
    var row = event.target.closest("tr.message-row");
    if (row && !event.target.closest("a, button, input, label")) {
      var link = row.querySelector("td.subject a");
      if (link) {
        if (event.ctrlKey || event.metaKey) {
          window.open(link.href, "_blank", "noopener");
        } else {
          window.location.assign(link.href);
        }
      }
    }
  });
})();
