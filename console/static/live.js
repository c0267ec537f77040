/* Live panels for the console, loaded as a file (the CSP allows no inline script).
   - [data-live-url]: refreshed every data-live-every seconds (default 5) from that URL, which
     answers an HTML fragment; the page works without this (a manual refresh link).
   - [data-countdown]: whole seconds left, counted down once a second. */
(function () {
  "use strict";
  function refresh(panel) {
    var url = panel.getAttribute("data-live-url");
    fetch(url, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (response) {
        if (response.redirected || !response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) { panel.innerHTML = html; startCountdowns(panel); })
      .catch(function () { panel.classList.add("stale"); });
  }
  function startCountdowns(root) {
    root.querySelectorAll("[data-countdown]").forEach(function (el) {
      if (el.dataset.counting) { return; }
      el.dataset.counting = "1";
      var left = parseInt(el.getAttribute("data-countdown"), 10) || 0;
      var timer = setInterval(function () {
        left = Math.max(0, left - 1);
        el.textContent = String(left);
        if (left === 0) { clearInterval(timer); }
      }, 1000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-url]").forEach(function (panel) {
      var every = parseInt(panel.getAttribute("data-live-every"), 10) || 5;
      setInterval(function () { refresh(panel); }, every * 1000);
    });
    startCountdowns(document);
  });
})();
