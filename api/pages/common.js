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
    const resp = await fetch(path, {
      ...options,
      headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json", ...(options.headers || {}) },
    });
    if (resp.status === 401) { forget(); askForToken("That token was not accepted. Enter a valid token."); }
    if (!resp.ok) {
      let detail = resp.statusText;
      try { detail = (await resp.json()).detail || detail; } catch (_) { /* not JSON */ }
      const error = new Error(detail);
      error.status = resp.status;
      throw error;
    }
    return resp.json();
  }

  function askForToken(message) {
    const input = el("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false" });
    const form = el("form", {
      onsubmit: (event) => {
        event.preventDefault();
        localStorage.setItem(KEY, input.value.trim());
        window.location.reload();
      },
    },
    el("label", { for: "token" }, "API token"),
    el("p", { class: "hint" }, message || "Enter the token you were given. It is kept in this browser only."),
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
    source.addEventListener("alert", (event) => onAlert(JSON.parse(event.data)));
    source.addEventListener("resync", () => onResync());
    source.addEventListener("open", () => status(`Live · connected ${time(new Date().toISOString())}`));
    source.addEventListener("error", () => status("Reconnecting to the live feed…"));
    return source;
  }

  return { token, forget, el, replace, api, askForToken, time, dateTime, slug, status, stream };
})();
