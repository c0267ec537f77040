/* Live panels for the console, loaded as a file (the CSP allows no inline script).

   [data-live-url]: the panel is replaced every data-live-every seconds (default 5) by the HTML
   fragment that URL answers. Left alone while it holds unsaved input (a field changed, or the
   focus in it), so a half-typed note or reason is never wiped. Updates pause while the tab is
   hidden and after data-live-idle seconds (default 900) without a key, click, touch or mouse
   move, so an unattended console still reaches the staff idle timeout; any input resumes them.
   [data-live-paused] / [data-live-failed] elements are shown while paused / failing.
   [data-countdown]: whole seconds left, counted down once a second; at 0 the panel refreshes.
   Without script every page works: it has a refresh link. */
(function () {
  "use strict";
  var lastInput = Date.now();
  var panels = [];

  function show(selector, visible) {
    document.querySelectorAll(selector).forEach(function (el) { el.hidden = !visible; });
  }

  function dirty(panel) {
    var active = document.activeElement;
    if (active && active !== document.body && panel.contains(active) &&
        /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) { return true; }
    var fields = panel.querySelectorAll("input, textarea, select");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.tagName === "SELECT") {
        for (var j = 0; j < f.options.length; j++) {
          if (f.options[j].selected !== f.options[j].defaultSelected) { return true; }
        }
      } else if (f.type === "checkbox" || f.type === "radio") {
        if (f.checked !== f.defaultChecked) { return true; }
      } else if (f.type !== "hidden" && f.value !== f.defaultValue) {
        return true;
      }
    }
    return false;
  }

  function refresh(panel) {
    if (panel.busy || dirty(panel)) { return; }
    panel.busy = true;
    fetch(panel.getAttribute("data-live-url"),
          {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (response) {
        // a redirect is the login page: the session ended
        if (response.redirected || !response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (!dirty(panel)) { panel.innerHTML = html; startCountdowns(panel); }
        panel.classList.remove("stale");
        show("[data-live-failed]", false);
      })
      .catch(function () {
        panel.classList.add("stale");
        show("[data-live-failed]", true);
      })
      .then(function () { panel.busy = false; });
  }

  function idle(panel) {
    var limit = (parseInt(panel.getAttribute("data-live-idle"), 10) || 900) * 1000;
    return Date.now() - lastInput > limit;
  }

  function tick(panel) {
    var paused = document.hidden || idle(panel);
    show("[data-live-paused]", paused && !document.hidden);
    if (!paused) { refresh(panel); }
  }

  function startCountdowns(root) {
    root.querySelectorAll("[data-countdown]").forEach(function (el) {
      if (el.dataset.counting) { return; }
      el.dataset.counting = "1";
      var left = parseInt(el.getAttribute("data-countdown"), 10) || 0;
      if (left <= 0) { return; }
      var timer = setInterval(function () {
        left = Math.max(0, left - 1);
        el.textContent = String(left);
        if (left === 0) {
          clearInterval(timer);
          var panel = el.closest("[data-live-url]");
          if (panel) { setTimeout(function () { refresh(panel); }, 1000); }
        }
      }, 1000);
    });
  }

  function woke() {
    var wasIdle = panels.some(idle);
    lastInput = Date.now();
    if (wasIdle) { panels.forEach(tick); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    panels = Array.prototype.slice.call(document.querySelectorAll("[data-live-url]"));
    panels.forEach(function (panel) {
      var every = parseInt(panel.getAttribute("data-live-every"), 10) || 5;
      setInterval(function () { tick(panel); }, every * 1000);
    });
    ["keydown", "mousedown", "mousemove", "touchstart", "scroll"].forEach(function (name) {
      document.addEventListener(name, woke, {passive: true});
    });
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { panels.forEach(tick); }
    });
    startCountdowns(document);
  });
})();
