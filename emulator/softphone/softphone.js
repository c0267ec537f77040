// Softphone for the local Twilio emulator: talks to the phones' HTTP API (/phones/...) by polling.
"use strict";

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  return response.json();
}

function describe(entry) {
  switch (entry.kind) {
    case "say": return `🗣 ${entry.text}`;
    case "play": return entry.url ? `♪ ${entry.url}` : `♪ tones ${entry.digits}`;
    case "pause": return `… pause ${entry.seconds}s`;
    case "voice": return `${entry.source}: ${entry.text}`;
    case "beep": return "🔔 beep";
    case "ringing": return "☎ ringing…";
    case "hold": return "♪ on hold";
    case "unhold": return "back from hold";
    case "tone": return `tone: ${entry.text}`;
    default: return entry.kind;
  }
}

function speak(entry) {
  if (!("speechSynthesis" in window) || !entry.text) return;
  try {
    const utterance = new SpeechSynthesisUtterance(entry.text);
    if (entry.language) utterance.lang = entry.language;
    window.speechSynthesis.speak(utterance);
  } catch (error) {
    console.warn("speech synthesis failed", error);
  }
}

function play(entry) {
  if (!entry.url) return;
  try {
    const audio = new Audio(entry.url);
    audio.play().catch(() => {});
  } catch (error) {
    console.warn("audio failed", error);
  }
}

// One call shown in a panel: its log, status, and the actions on it.
class CallView {
  constructor(prefix) {
    this.prefix = prefix;
    this.sid = null;
    this.seen = 0;
    this.timer = null;
    this.box = document.getElementById(`${prefix}-call`);
    this.log = document.getElementById(`${prefix}-log`);
    this.status = document.getElementById(`${prefix}-status`);
  }

  attach(state) {
    this.sid = state.sid;
    this.seen = 0;
    this.log.textContent = "";
    this.box.hidden = false;
    this.show(state);
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(), 500);
  }

  show(state) {
    if (!state || state.sid !== this.sid) return;
    const start = state.heard_count - state.heard.length;
    state.heard.forEach((entry, offset) => {
      const index = start + offset;
      if (index < this.seen) return;
      this.seen = index + 1;
      const item = document.createElement("li");
      item.className = entry.kind;
      item.textContent = describe(entry);
      this.log.appendChild(item);
      if (entry.kind === "say" || entry.kind === "voice") speak(entry);
      if (entry.kind === "play") play(entry);
    });
    this.status.textContent = `${state.status} (${state.activity})`;
    if (state.ended) clearInterval(this.timer);
  }

  async refresh() {
    if (!this.sid) return;
    this.show(await api("GET", `/phones/calls/${this.sid}?since=${this.seen}`));
  }

  async act(action, body) {
    if (!this.sid) return;
    this.show(await api("POST", `/phones/calls/${this.sid}/${action}`, body || {}));
  }
}

function keypad(containerId, view) {
  const container = document.getElementById(containerId);
  for (const key of KEYS) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = key;
    button.dataset.key = key;
    button.addEventListener("click", () => view.act("press", { digits: key }));
    container.appendChild(button);
  }
}

function sayForm(formId, inputId, view) {
  document.getElementById(formId).addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById(inputId);
    const text = input.value.trim();
    if (text) view.act("say", { text });
    input.value = "";
  });
}

async function loadNumbers() {
  const numbers = await api("GET", "/phones/numbers");
  for (const id of ["to", "msg-to"]) {
    const select = document.getElementById(id);
    for (const number of numbers) {
      const option = document.createElement("option");
      option.value = number.phone_number;
      option.textContent = number.phone_number;
      select.appendChild(option);
    }
  }
}

function setUpCaller() {
  const view = new CallView("caller");
  keypad("keypad", view);
  sayForm("say-form", "say-text", view);
  document.getElementById("dial-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const state = await api("POST", "/phones/dial", {
      from: document.getElementById("from").value.trim(),
      to: document.getElementById("to").value,
    });
    if (state.error) {
      alert(state.error);
      return;
    }
    view.attach(state);
  });
  document.getElementById("wait").addEventListener("click", () => view.act("wait", { seconds: 5 }));
  document.getElementById("hangup").addEventListener("click", () => view.act("hangup"));
}

function setUpHandler() {
  const view = new CallView("handler");
  keypad("handler-keypad", view);
  sayForm("handler-say-form", "handler-say-text", view);
  const list = document.getElementById("ringing");
  // The calls ringing now, by SID: a poll updates the list in place, so a call still ringing
  // keeps its <li> and buttons (a click on Answer is never lost to a rebuilt list).
  const rows = new Map();
  const handled = new Set(); // answered or rejected here: a poll already under way may list it
  let timer = null;
  let watched = null;

  function forget(sid, done = false) {
    if (done) handled.add(sid);
    const row = rows.get(sid);
    if (row) row.remove();
    rows.delete(sid);
  }

  function clear() {
    for (const sid of [...rows.keys()]) forget(sid);
  }

  function row(call) {
    const item = document.createElement("li");
    item.dataset.sid = call.sid;
    item.textContent = `☎ ${call.from} is calling `;
    const answer = document.createElement("button");
    answer.type = "button";
    answer.textContent = "Answer";
    answer.className = "answer";
    answer.addEventListener("click", async () => {
      forget(call.sid, true);
      view.attach(await api("POST", `/phones/calls/${call.sid}/answer`));
    });
    const reject = document.createElement("button");
    reject.type = "button";
    reject.textContent = "Reject";
    reject.className = "reject";
    reject.addEventListener("click", async () => {
      forget(call.sid, true);
      await api("POST", `/phones/calls/${call.sid}/reject`);
    });
    item.append(answer, " ", reject);
    return item;
  }

  async function poll(address) {
    const calls = await api("GET", `/phones/${encodeURIComponent(address)}/ringing`);
    if (address !== watched) return; // an answer for a phone no longer watched
    const ringing = new Set(calls.map((call) => call.sid));
    for (const sid of [...rows.keys()]) {
      if (!ringing.has(sid)) forget(sid);
    }
    for (const call of calls) {
      if (rows.has(call.sid) || handled.has(call.sid)) continue;
      const item = row(call);
      rows.set(call.sid, item);
      list.appendChild(item);
    }
  }

  document.getElementById("watch-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const address = document.getElementById("handler-address").value.trim();
    clearInterval(timer);
    if (address !== watched) clear();
    watched = address;
    poll(address);
    timer = setInterval(() => poll(address), 700);
  });
  document.getElementById("handler-hangup").addEventListener("click", () => view.act("hangup"));
}

function setUpMessaging() {
  const channel = document.getElementById("msg-channel");
  const from = document.getElementById("msg-from");
  const name = document.getElementById("msg-name");
  const toLabel = document.getElementById("msg-to-label");
  const log = document.getElementById("msg-log");
  const error = document.getElementById("msg-error");
  let shown = "";

  function who() {
    return { channel: channel.value, from: from.value.trim(), name: name.value.trim() };
  }

  function show(answer) {
    if (answer.error) {
      error.textContent = answer.error;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    const key = JSON.stringify(answer.messages);
    if (key === shown) return; // unchanged: keep the elements (and a button under the pointer)
    shown = key;
    log.replaceChildren();
    for (const message of answer.messages) {
      const item = document.createElement("li");
      item.className = message.mine ? "mine" : "hotline";
      item.textContent = message.text;
      for (const row of message.buttons) {
        const line = document.createElement("div");
        for (const button of row) {
          const press = document.createElement("button");
          press.type = "button";
          press.className = "press";
          press.textContent = button.text;
          press.addEventListener("click", async () => {
            show(await api("POST", "/phones/messaging/press", { ...who(), data: button.callback_data }));
          });
          line.appendChild(press);
        }
        item.appendChild(line);
      }
      log.appendChild(item);
    }
    log.scrollTop = log.scrollHeight;
  }

  async function refresh() {
    if (!from.value.trim()) return;
    const query = new URLSearchParams(who());
    show(await api("GET", "/phones/messaging/conversation?" + query.toString()));
  }

  channel.addEventListener("change", () => {
    toLabel.hidden = channel.value === "telegram";
    if (channel.value === "telegram" && from.value.startsWith("+")) from.value = "100200300";
    if (channel.value !== "telegram" && !from.value.startsWith("+")) from.value = "+12025550187";
    shown = "";
    refresh();
  });
  document.getElementById("msg-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("msg-text");
    const text = input.value.trim();
    if (!text) return;
    const to = document.getElementById("msg-to").value;
    show(await api("POST", "/phones/messaging/send", { ...who(), to, text }));
    input.value = "";
  });
  setInterval(refresh, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  loadNumbers();
  setUpCaller();
  setUpHandler();
  setUpMessaging();
});
