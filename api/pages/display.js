// The operations-room wall: open alerts of every audience in one list, most serious first, watering, air bands,
// devices offline. Alerts update live from the event stream; the rest refreshes every minute. The wall never
// scrolls: what does not fit is shown a page at a time, turning every 10 s (`?page_s=` in the address sets
// another interval, 1–600 s), with "+N more" saying what is hidden.
// Someone reading at the wall (or with a keyboard on a desk screen) can pause the paging (WCAG 2.2.2).
"use strict";

(() => {
  const { el, replace, api, time, slug, t, message } = placesense;
  const alerts = new Map();
  const names = new Map(); // bed and air-site ids to their names (homes stay pseudonymous on the wall)
  const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };
  const AUDIENCES = { care: "Care", street: "Street", ops: "Operations" };
  const ASKED_PAGE_S = Number(new URLSearchParams(window.location.search).get("page_s"));
  const PAGE_S = Number.isInteger(ASKED_PAGE_S) && ASKED_PAGE_S >= 1 && ASKED_PAGE_S <= 600 ? ASKED_PAGE_S : 10;
  const UNITS = /_(pct|c|ugm3|ppm|ppb|v|mv|dbm|db|lux|hpa|kpa|s|min|h)$/;
  let offset = 0;
  let seeing = true;
  let paused = false;

  // "sensor_anomaly_soil_moisture_pct_vs_neighbours" -> "Soil moisture reading unusual (unlike its neighbours)".
  function ruleLabel(rule) {
    const anomaly = /^sensor_anomaly_(.+?)(_vs_neighbours)?$/.exec(rule);
    if (anomaly) {
      const metric = anomaly[1].replace(UNITS, "").replace(/_/g, " ");
      return t(anomaly[2] ? "{metric} reading unusual (unlike its neighbours)" : "{metric} reading unusual",
        { metric: `${metric.charAt(0).toUpperCase()}${metric.slice(1)}` });
    }
    const words = rule.replace(/^routine_/, "routine: ").replace(/_/g, " ");
    return t(words.charAt(0).toUpperCase() + words.slice(1));
  }

  const place = (subject) => names.get(subject) || subject;

  function updated() {
    replace("updated", t("updated {time} ·", { time: time(new Date().toISOString()) }));
  }

  // Show items from ``start`` in ``box`` until the next would not fit; return how many were shown.
  function fit(box, items, start, more) {
    box.replaceChildren();
    const limit = box.getBoundingClientRect().bottom;
    const moreLine = el("p", { class: "more" });
    let shown = 0;
    for (let i = start; i < items.length; i += 1) {
      box.append(items[i]);
      if (items[i].getBoundingClientRect().bottom > limit && shown > 0) { items[i].remove(); break; }
      shown += 1;
    }
    const hidden = items.length - shown;
    if (hidden > 0) {
      moreLine.textContent = more(hidden, start, shown);
      box.append(moreLine);
      while (shown > 1 && moreLine.getBoundingClientRect().bottom > limit) {
        box.children[shown - 1].remove();
        shown -= 1;
        moreLine.textContent = more(items.length - shown, start, shown);
      }
    }
    return shown;
  }

  function renderAlerts() {
    const open = [...alerts.values()].filter((a) => a.state !== "resolved")
      .sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || b.opened_at.localeCompare(a.opened_at));
    const counts = { critical: 0, warning: 0, info: 0 };
    open.forEach((a) => { counts[a.severity] += 1; });
    replace("alert-counts", Object.entries(counts).map(([severity, n]) =>
      el("div", { class: `count ${severity}` }, el("b", {}, n), severity)));
    if (!open.length) { replace("alerts", el("p", { class: "empty" }, "No open alerts.")); return; }
    if (offset >= open.length) offset = 0;
    const cards = open.map((a) =>
      el("div", { class: `card ${a.severity}`, "data-alert": a.id, "data-audience": a.audience },
        el("span", { class: `tag ${a.severity}` }, a.severity), " ",
        el("span", { class: "tag audience" }, AUDIENCES[a.audience] || a.audience), " ",
        a.state === "acknowledged" ? el("span", { class: "tag acknowledged" }, "acknowledged") : null, " ",
        el("strong", {}, place(a.subject)), " · ", ruleLabel(a.rule),
        el("span", { class: "hint" }, t(" · since {time}", { time: time(a.opened_at) })), el("div", {}, message(a))));
    const box = document.getElementById("alerts");
    const shown = fit(box, cards, offset, (hidden, start, n) => paused
      ? t("+{hidden} more · showing {first}–{last} of {total}, paging paused",
        { hidden, first: start + 1, last: start + n, total: cards.length })
      : t("+{hidden} more · showing {first}–{last} of {total}, next page in {seconds} s",
        { hidden, first: start + 1, last: start + n, total: cards.length, seconds: PAGE_S }));
    box.dataset.shown = String(shown);
    box.dataset.total = String(cards.length);
  }

  function togglePaging() {
    paused = !paused;
    const button = document.getElementById("pause");
    button.setAttribute("aria-pressed", String(paused));
    button.textContent = paused ? t("Resume paging") : t("Pause paging");
    renderAlerts();
  }

  function turnPage() {
    if (paused) return;
    const box = document.getElementById("alerts");
    const shown = Number(box.dataset.shown || 0);
    const total = Number(box.dataset.total || 0);
    if (shown >= total) { offset = 0; return; }
    offset = offset + shown >= total ? 0 : offset + shown;
    renderAlerts();
  }

  async function loadAlerts() {
    const [open, acked] = await Promise.all([
      api("/api/v1/alerts?state=open&limit=500"), api("/api/v1/alerts?state=acknowledged&limit=500"),
    ]);
    alerts.clear();
    [...open.alerts, ...acked.alerts].forEach((a) => alerts.set(a.id, a));
    renderAlerts();
    updated();
  }

  async function loadNames() {
    try {
      const devices = await api("/api/v1/devices");
      devices.devices.forEach((d) => { if (d.domain !== "home" && d.subject_name) names.set(d.subject, d.subject_name); });
    } catch (_) { /* ids stay */ }
  }

  async function loadSide() {
    const failures = [];
    try {
      const watering = await api("/api/v1/flowerbeds/watering");
      const now = watering.beds.filter((b) => b.status === "now").length;
      const soon = watering.beds.length - now;
      replace("watering", el("p", {}, el("b", {}, now), " ",
        t(now === 1 ? "bed needs water now," : "beds need water now,"), " ", el("b", {}, soon), " ", t("within a day")));
    } catch (error) { failures.push(`watering: ${error.message}`); replace("watering", el("p", { class: "empty" }, t("Not available"))); }
    try {
      const air = await api("/api/v1/air/sites");
      replace("air", air.sites.map((s) => el("div", {},
        el("span", { class: `tag ${slug(s.band)}` }, s.band ? [s.index, t(s.band)].filter((x) => x !== null).join(" ") : "no data"),
        " ", s.name)));
    } catch (error) { failures.push(`air: ${error.message}`); replace("air", el("p", { class: "empty" }, "Not available")); }
    try {
      const devices = await api("/api/v1/devices?online=false");
      const rows = devices.devices.map((d) => el("div", {}, el("span", { class: "tag offline" }, "offline"), " ",
        d.domain === "home" ? t("a device in {home}", { home: d.subject })
          : t("{kind} at {place}", { kind: t(d.kind.replace(/_/g, " ")), place: d.subject_name || d.subject }),
        el("span", { class: "hint" }, t(" · last seen {time}", { time: time(d.last_seen) }))));
      if (rows.length) fit(document.getElementById("offline"), rows, 0, (hidden) => t("+{hidden} more offline", { hidden }));
      else replace("offline", el("p", { class: "empty" }, seeing ? "All devices reporting." : "Not known while monitoring is degraded."));
    } catch (error) { failures.push(`devices: ${error.message}`); }
    updated();
    return failures;
  }

  function tick() {
    document.getElementById("clock").textContent = new Date().toLocaleTimeString(placesense.locale, { hour: "2-digit", minute: "2-digit" });
  }

  async function start() {
    tick();
    setInterval(tick, 1000);
    if (!placesense.token()) { placesense.askForToken(); return; }
    placesense.monitoring((state) => { seeing = state.ok; });
    await loadNames();
    try { await loadAlerts(); } catch (error) { replace("alerts", el("div", { class: "error-summary" }, error.message)); }
    await loadSide();
    placesense.stream((alert) => { alerts.set(alert.id, alert); renderAlerts(); updated(); }, loadAlerts);
    setInterval(loadSide, 60_000);
    setInterval(turnPage, PAGE_S * 1000);
    const pause = document.getElementById("pause");
    pause.textContent = t("Pause paging");
    pause.hidden = false;
    pause.addEventListener("click", togglePaging);
    window.addEventListener("resize", () => { renderAlerts(); loadSide(); });
  }

  start();
})();
