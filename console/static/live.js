/* Live panels for the console, loaded as a file (the CSP allows no inline script).

   [data-live-url]: the panel is replaced every data-live-every seconds (default 5) by the HTML
   fragment that URL answers. Left alone while it holds unsaved input (a field changed, or the
   focus in it), so a half-typed note or reason is never wiped. Updates pause while the tab is
   hidden (unless the panel has data-live-background: the handler's call offered must ring in a
   tab in the background) and after data-live-idle seconds (default 900) without a key, click,
   touch or mouse move, so an unattended console still reaches the staff idle timeout; any
   input resumes them.
   [data-live-paused] / [data-live-failed] elements are shown while paused / failing.
   [data-countdown]: whole seconds left, counted down once a second (shown as m:ss with
   data-countdown-format="mmss"); at 0 the panel refreshes.
   [data-ring] (a call offered to the handler): while one is on the page it rings every few
   seconds (Web Audio, once the ring sound is turned on with [data-ring-control]'s button and a
   click let the browser play it; the choice is kept in localStorage) and the title alternates
   with its data-ring-title; both stop when it is gone. document.body.dataset.rings counts the
   rings played (the browser test reads it).
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
        if (!dirty(panel)) { panel.innerHTML = html; startCountdowns(panel); ringer.check(); }
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
    // data-live-background: go on in a hidden tab (a call offered must still ring and show)
    var hidden = document.hidden && !panel.hasAttribute("data-live-background");
    var paused = hidden || idle(panel);
    show("[data-live-paused]", paused && !document.hidden);
    if (!paused) { refresh(panel); }
  }

  function startCountdowns(root) {
    root.querySelectorAll("[data-countdown]").forEach(function (el) {
      if (el.dataset.counting) { return; }
      el.dataset.counting = "1";
      var left = parseInt(el.getAttribute("data-countdown"), 10) || 0;
      if (left <= 0) { return; }
      var mmss = el.getAttribute("data-countdown-format") === "mmss";
      var timer = setInterval(function () {
        left = Math.max(0, left - 1);
        el.textContent = mmss ? Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2)
                              : String(left);
        if (left === 0) {
          clearInterval(timer);
          var panel = el.closest("[data-live-url]");
          if (panel) { setTimeout(function () { refresh(panel); }, 1000); }
        }
      }, 1000);
    });
  }

  /* The ring: two short bursts of a phone's two tones, every RING_EVERY ms while offered. */
  var RING_EVERY = 3000;
  var STORED = "hotline.ringSound";
  var ringer = {
    audio: null,
    timer: null,
    titleTimer: null,
    title: null,

    wanted: function () {
      try { return window.localStorage.getItem(STORED) === "on"; } catch (e) { return false; }
    },

    remember: function (on) {
      try { window.localStorage.setItem(STORED, on ? "on" : "off"); } catch (e) { /* private */ }
    },

    // Browsers start audio only from a user gesture: called from clicks and key presses.
    unlock: function () {
      if (!ringer.wanted()) { return; }
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) { return; }
      if (!ringer.audio) { ringer.audio = new Context(); }
      if (ringer.audio.state === "suspended") {
        ringer.audio.resume().then(ringer.show, ringer.show);
      }
      ringer.show();
    },

    playing: function () { return !!ringer.audio && ringer.audio.state === "running"; },

    play: function () {
      if (!ringer.playing()) { return; }
      var ctx = ringer.audio;
      var start = ctx.currentTime + 0.02;
      [0, 0.5].forEach(function (offset) {
        var gain = ctx.createGain();
        gain.gain.setValueAtTime(0.0001, start + offset);
        gain.gain.exponentialRampToValueAtTime(0.25, start + offset + 0.03);
        gain.gain.setValueAtTime(0.25, start + offset + 0.37);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.4);
        gain.connect(ctx.destination);
        [440, 480].forEach(function (hz) {
          var tone = ctx.createOscillator();
          tone.frequency.value = hz;
          tone.connect(gain);
          tone.start(start + offset);
          tone.stop(start + offset + 0.42);
        });
      });
      document.body.dataset.rings = String((parseInt(document.body.dataset.rings, 10) || 0) + 1);
    },

    check: function () {
      var offer = document.querySelector("[data-ring]");
      if (offer && !ringer.timer) {
        ringer.title = document.title;
        var offered = offer.getAttribute("data-ring-title") || "\u260E";
        var flip = false;
        document.title = offered + " \u00B7 " + ringer.title;
        ringer.titleTimer = setInterval(function () {
          flip = !flip;
          document.title = flip ? ringer.title : offered + " \u00B7 " + ringer.title;
        }, 1000);
        ringer.play();
        ringer.timer = setInterval(ringer.play, RING_EVERY);
        document.body.classList.add("ringing");
      } else if (!offer && ringer.timer) {
        clearInterval(ringer.timer);
        clearInterval(ringer.titleTimer);
        ringer.timer = ringer.titleTimer = null;
        document.title = ringer.title;
        document.body.classList.remove("ringing");
      }
    },

    show: function () {
      var box = document.querySelector("[data-ring-control]");
      if (!box) { return; }
      var state = ringer.wanted() ? (ringer.playing() ? "on" : "blocked") : "off";
      box.hidden = false;
      box.setAttribute("data-state", state);
      box.querySelector("#ring-sound-state").textContent = box.getAttribute("data-text-" + state);
      box.querySelector("#ring-sound-on").hidden = state === "on";
      box.querySelector("#ring-sound-off").hidden = state === "off";
    },

    start: function () {
      var box = document.querySelector("[data-ring-control]");
      if (box) {
        box.querySelector("#ring-sound-on").addEventListener("click", function () {
          ringer.remember(true);
          ringer.unlock();
          setTimeout(ringer.play, 200);  // one ring now: the handler hears what to listen for
        });
        box.querySelector("#ring-sound-off").addEventListener("click", function () {
          ringer.remember(false);
          if (ringer.audio) { ringer.audio.suspend().then(ringer.show, ringer.show); }
          ringer.show();
        });
        ["pointerdown", "keydown"].forEach(function (name) {
          document.addEventListener(name, ringer.unlock, {passive: true});
        });
        ringer.unlock();
        ringer.show();
      }
      ringer.check();
    }
  };

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
    ringer.start();
  });
})();
