// placesense pages: the token, API calls and safe DOM building shared by /display, /street and /care.
// The token comes from the URL fragment (#token=..., never sent to the server) or a form, and is kept in this
// browser's localStorage so a wall screen survives a reboot. Anyone with access to the browser can read it:
// give wall screens a display token, which is read-only and pseudonymous.
"use strict";

const placesense = (() => {
  const KEY = "placesense.token";

  function token() {
    const match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
    if (match) {
      localStorage.setItem(KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return localStorage.getItem(KEY);
  }

  function forget() { localStorage.removeItem(KEY); }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function replace(id, ...children) {
    const target = document.getElementById(id);
    target.replaceChildren(...children.flat());
  }

  async function api(path, options = {}) {
    let resp;
    try {
      resp = await fetch(path, {
        ...options,
        headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json", ...(options.headers || {}) },
      });
    } catch (_) {
      const error = new Error("Cannot reach placesense. Check the network; this page tries again by itself.");
      error.status = 0;
      throw error;
    }
    if (resp.status === 401) { forget(); askForToken("That token was not accepted. Enter a valid token."); }
    if (!resp.ok) {
      let detail = resp.statusText;
      try { detail = (await resp.json()).detail || detail; } catch (_) { /* not JSON */ }
      // A server-side outage is not the reader's to debug: say what it means for them, not the socket error.
      if (resp.status === 503 || resp.status >= 500) {
        detail = "Not available just now: placesense is catching up or cannot reach its data. "
          + "Alerts still arrive; this page tries again by itself.";
      }
      const error = new Error(detail);
      error.status = resp.status;
      throw error;
    }
    return resp.json();
  }

  function askForToken(message) {
    const input = el("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false",
      "aria-describedby": "token-hint" });
    const form = el("form", {
      onsubmit: (event) => {
        event.preventDefault();
        localStorage.setItem(KEY, input.value.trim());
        window.location.reload();
      },
    },
    el("label", { for: "token" }, "API token"),
    el("p", { class: "hint", id: "token-hint" }, message || "Enter the token you were given. It is kept in this browser only."),
    input, el("div", {}, el("button", { type: "submit" }, "Continue")));
    document.querySelector("main").replaceChildren(form);
  }

  function time(iso) {
    if (!iso) return "never";
    return new Date(iso).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  }

  function dateTime(iso) {
    if (!iso) return "never";
    return new Date(iso).toLocaleString("en-GB", { weekday: "short", hour: "2-digit", minute: "2-digit" });
  }

  function slug(text) { return String(text || "").toLowerCase().replace(/\s+/g, "-"); }

  function status(text) {
    const node = document.getElementById("status");
    if (node) node.textContent = text;
  }

  function stream(onAlert, onResync) {
    const source = new EventSource(`/api/v1/alerts/stream?access_token=${encodeURIComponent(token())}`);
    source.addEventListener("alert", (event) => {
      const alert = JSON.parse(event.data);
      if (alert.audience === "ops" && monitoringTimer) checkMonitoring();
      onAlert(alert);
    });
    source.addEventListener("resync", () => onResync());
    source.addEventListener("open", () => status(`Live · connected ${time(new Date().toISOString())}`));
    source.addEventListener("error", () => status("Reconnecting to the live feed…"));
    return source;
  }

  // The monitoring banner: whether placesense can see, from /api/v1/status, on every page. Checked every 15 s and
  // whenever an operations alert changes; a page that cannot reach placesense says that instead.
  let monitoringTimer = null;
  let unreachableSince = null;
  const listeners = [];

  function banner() {
    let node = document.getElementById("monitoring");
    if (!node) {
      node = el("div", { id: "monitoring", class: "monitoring", role: "alert", hidden: "hidden" });
      document.body.insertBefore(node, document.querySelector("main"));
    }
    return node;
  }

  async function checkMonitoring() {
    const node = banner();
    let state;
    try {
      state = await api("/api/v1/status");
      unreachableSince = null;
    } catch (error) {
      if (error.status !== 0) return; // a token problem is shown by the page itself
      unreachableSince = unreachableSince || new Date().toISOString();
      state = { ok: false, since: unreachableSince, reasons: [error.message], homes: [] };
    }
    listeners.forEach((listener) => listener(state));
    if (state.ok) { node.hidden = true; node.replaceChildren(); return; }
    const lines = [...state.reasons, ...state.homes.map((h) => h.reason)];
    node.replaceChildren(
      el("strong", {}, `Monitoring degraded since ${time(state.since)}`),
      el("ul", {}, lines.map((line) => el("li", {}, line))),
      state.homes_unmonitored && !state.homes.length
        ? el("p", {}, `${state.homes_unmonitored} home(s) have no sensor reporting.`) : null);
    node.hidden = false;
  }

  function monitoring(onChange) {
    if (onChange) listeners.push(onChange);
    if (!monitoringTimer) {
      checkMonitoring();
      monitoringTimer = setInterval(checkMonitoring, 15_000);
    }
  }

  return {
    token, forget, el, replace, api, askForToken, time, dateTime, slug, status, stream, monitoring, checkMonitoring,
  };
})();
