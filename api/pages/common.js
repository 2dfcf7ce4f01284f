// placesense pages: the token, API calls and safe DOM building shared by /display, /street and /care.
// The token comes from the URL fragment (#token=..., never sent to the server) or a form, and is kept in this
// browser's localStorage so a wall screen survives a reboot. Anyone with access to the browser can read it:
// give wall screens a display token, which is read-only and pseudonymous.
// Language: English or Welsh (Cymraeg), per person: "?lang=cy" or the switch link in the header (kept in this
// browser), else the language set for the token or sign-in (GET /api/v1/me), else the browser's own languages.
// Page words are looked up by their English text in the Welsh dictionary (api/pages/i18n/cy.json, served as
// /pages/texts.js); an alert's message comes from the API already in each language (its "texts").
"use strict";

const placesense = (() => {
  const KEY = "placesense.token";
  const LANG_KEY = "placesense.lang";
  const ACCOUNT_LANG_KEY = "placesense.lang.account";
  const LANGS = ["en", "cy"];

  function chooseLang() {
    const asked = new URLSearchParams(window.location.search).get("lang");
    if (LANGS.includes(asked)) localStorage.setItem(LANG_KEY, asked);
    const chosen = localStorage.getItem(LANG_KEY) || localStorage.getItem(ACCOUNT_LANG_KEY);
    if (LANGS.includes(chosen)) return chosen;
    return (navigator.languages || [navigator.language]).some((l) => /^cy\b/i.test(l || "")) ? "cy" : "en";
  }

  const lang = chooseLang();
  // Times are numbers on the 24-hour clock in both languages ("en-GB" formats them); Chromium's own Welsh dates
  // are not reliable (its trimmed locale data falls back to American English), so Welsh day names are our own.
  const locale = "en-GB";
  const WELSH_DAYS = ["Sul", "Llun", "Maw", "Mer", "Iau", "Gwe", "Sad"];
  const WELSH_MONTHS = ["Ion", "Chwef", "Maw", "Ebr", "Mai", "Meh", "Gorff", "Awst", "Medi", "Hyd", "Tach", "Rhag"];
  const dictionary = (window.PLACESENSE_TEXTS || {})[lang] || {};

  // The page's words in its language: ``english`` is the key; {name} placeholders are filled from ``params``.
  // Spaces around the key are kept, so " · since {time}" and "since {time}" are the same entry.
  function t(english, params) {
    const text = String(english);
    const key = text.trim();
    let words = Object.prototype.hasOwnProperty.call(dictionary, key)
      ? text.slice(0, text.indexOf(key)) + dictionary[key] + text.slice(text.indexOf(key) + key.length) : text;
    if (params) words = words.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
    return words;
  }

  // The word for a value the API gives as a code (an alert history action, say): the dictionary's "kind:value",
  // else the code itself, as the English pages always showed it.
  function word(kind, value) {
    const key = `${kind}:${value}`;
    return Object.prototype.hasOwnProperty.call(dictionary, key) ? dictionary[key] : String(value);
  }

  // An alert's message in the page's language, when the API has it in that language.
  function message(alert) { return (alert.texts && alert.texts[lang]) || alert.message; }

  // The words already in the page's HTML: text, the title and the attributes people hear or see.
  function translatePage() {
    document.documentElement.lang = lang === "cy" ? "cy" : "en-GB";
    document.title = t(document.title);
    if (lang === "en") return;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const nodes = [];
    while (walker.nextNode()) nodes.push(walker.currentNode);
    nodes.forEach((node) => {
      const flat = node.data.replace(/\s+/g, " ");
      if (flat.trim() && Object.prototype.hasOwnProperty.call(dictionary, flat.trim())) node.data = t(flat);
    });
    document.querySelectorAll("[aria-label], [title], [placeholder], [alt]").forEach((node) => {
      ["aria-label", "title", "placeholder", "alt"].forEach((name) => {
        if (node.hasAttribute(name)) node.setAttribute(name, t(node.getAttribute(name)));
      });
    });
  }

  // A link to the other language, in that language (and marked as such for screen readers).
  function languageSwitch() {
    const bar = document.querySelector("header.bar");
    if (!bar) return;
    const other = lang === "cy" ? "en" : "cy";
    bar.append(el("a", { href: `?lang=${other}`, lang: other === "cy" ? "cy" : "en-GB", hreflang: other,
      class: "lang-switch", id: "lang-switch" }, other === "cy" ? "Cymraeg" : "English"));
  }

  // The language set for this token or sign-in, when the person has not chosen one in this browser.
  async function accountLanguage() {
    if (localStorage.getItem(LANG_KEY) || !token()) return;
    try {
      const me = await api("/api/v1/me");
      const before = localStorage.getItem(ACCOUNT_LANG_KEY);
      if (LANGS.includes(me.lang)) localStorage.setItem(ACCOUNT_LANG_KEY, me.lang);
      else localStorage.removeItem(ACCOUNT_LANG_KEY);
      if (chooseLang() !== lang && before !== localStorage.getItem(ACCOUNT_LANG_KEY)) window.location.reload();
    } catch (_) { /* an older server or no network: the browser's language stands */ }
  }

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
      node.append(child instanceof Node ? child : document.createTextNode(typeof child === "string" ? t(child) : String(child)));
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
      const error = new Error(t("Cannot reach placesense. Check the network; this page tries again by itself."));
      error.status = 0;
      throw error;
    }
    if (resp.status === 401) { forget(); askForToken(t("That token was not accepted. Enter a valid token.")); }
    if (!resp.ok) {
      let detail = resp.statusText;
      try { detail = (await resp.json()).detail || detail; } catch (_) { /* not JSON */ }
      // A server-side outage is not the reader's to debug: say what it means for them, not the socket error.
      if (resp.status === 503 || resp.status >= 500) {
        detail = t("Not available just now: placesense is catching up or cannot reach its data. "
          + "Alerts still arrive; this page tries again by itself.");
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
    if (!iso) return t("never");
    return new Date(iso).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  }

  function dateTime(iso) {
    if (!iso) return t("never");
    if (lang === "cy") return `${WELSH_DAYS[new Date(iso).getDay()]} ${time(iso)}`;
    return new Date(iso).toLocaleString(locale, { weekday: "short", hour: "2-digit", minute: "2-digit" });
  }

  // A day as "Sat 5 Dec" / "Sad 5 Rhag"; ``when`` is an ISO time or milliseconds.
  function date(when) {
    if (when === null || when === undefined) return t("never");
    const d = new Date(when);
    if (lang === "cy") return `${WELSH_DAYS[d.getDay()]} ${d.getDate()} ${WELSH_MONTHS[d.getMonth()]}`;
    return d.toLocaleDateString(locale, { weekday: "short", day: "numeric", month: "short" });
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
    source.addEventListener("open", () => status(t("Live · connected {time}", { time: time(new Date().toISOString()) })));
    source.addEventListener("error", () => status(t("Reconnecting to the live feed…")));
    return source;
  }

  // The monitoring banner: whether placesense can see, from /api/v1/status, on every page. Checked every 15 s
  // (`?status_s=` in the address sets another interval, 1–600 s) and whenever an operations alert changes; a page
  // that cannot reach placesense says that instead.
  const ASKED_STATUS_S = Number(new URLSearchParams(window.location.search).get("status_s"));
  const STATUS_S = Number.isInteger(ASKED_STATUS_S) && ASKED_STATUS_S >= 1 && ASKED_STATUS_S <= 600 ? ASKED_STATUS_S : 15;
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
      el("strong", {}, t("Monitoring degraded since {time}", { time: time(state.since) })),
      el("ul", {}, lines.map((line) => el("li", {}, line))),
      state.homes_unmonitored && !state.homes.length
        ? el("p", {}, t("{count} home(s) have no sensor reporting.", { count: state.homes_unmonitored })) : null);
    node.hidden = false;
  }

  function monitoring(onChange) {
    if (onChange) listeners.push(onChange);
    if (!monitoringTimer) {
      checkMonitoring();
      monitoringTimer = setInterval(checkMonitoring, STATUS_S * 1000);
    }
  }

  translatePage();
  languageSwitch();
  accountLanguage();

  return {
    token, forget, el, replace, api, askForToken, time, dateTime, date, slug, status, stream, monitoring,
    checkMonitoring, lang, locale, t, word, message,
  };
})();
