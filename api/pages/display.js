// The operations-room wall: open alerts by audience and severity, watering, air bands, devices offline.
// Alerts update live from the event stream; the rest refreshes every minute.
"use strict";

(() => {
  const { el, replace, api, time, slug } = placesense;
  const alerts = new Map();
  const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };
  const AUDIENCES = { care: "Care", street: "Street", ops: "Operations" };

  function renderAlerts() {
    const open = [...alerts.values()].filter((a) => a.state !== "resolved");
    const counts = { critical: 0, warning: 0, info: 0 };
    open.forEach((a) => { counts[a.severity] += 1; });
    replace("alert-counts", Object.entries(counts).map(([severity, n]) =>
      el("div", { class: `count ${severity}` }, el("b", {}, n), severity)));
    const sections = Object.entries(AUDIENCES).map(([audience, label]) => {
      const mine = open.filter((a) => a.audience === audience)
        .sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || b.opened_at.localeCompare(a.opened_at));
      if (!mine.length) return null;
      return el("div", {}, el("h3", {}, `${label} (${mine.length})`), mine.map((a) =>
        el("div", { class: `card ${a.severity}`, "data-alert": a.id },
          el("span", { class: `tag ${a.severity}` }, a.severity), " ",
          a.state === "acknowledged" ? el("span", { class: "tag acknowledged" }, "acknowledged") : null, " ",
          el("strong", {}, a.subject), " · ", a.rule.replace(/_/g, " "),
          el("div", {}, a.message), el("div", { class: "hint" }, `since ${time(a.opened_at)}`))));
    });
    replace("alerts", open.length ? sections : el("p", { class: "empty" }, "No open alerts."));
  }

  async function loadAlerts() {
    const [open, acked] = await Promise.all([
      api("/api/v1/alerts?state=open&limit=500"), api("/api/v1/alerts?state=acknowledged&limit=500"),
    ]);
    alerts.clear();
    [...open.alerts, ...acked.alerts].forEach((a) => alerts.set(a.id, a));
    renderAlerts();
  }

  async function loadSide() {
    const failures = [];
    try {
      const watering = await api("/api/v1/flowerbeds/watering");
      const now = watering.beds.filter((b) => b.status === "now").length;
      replace("watering", el("p", {}, el("b", {}, now), " beds need water now, ",
        el("b", {}, watering.beds.length - now), " within a day"));
    } catch (error) { failures.push(`watering: ${error.message}`); replace("watering", el("p", { class: "empty" }, "Not available")); }
    try {
      const air = await api("/api/v1/air/sites");
      replace("air", air.sites.map((s) => el("div", {},
        el("span", { class: `tag ${slug(s.band)}` }, s.band ? `${s.index} ${s.band}` : "no data"), " ", s.name)));
    } catch (error) { failures.push(`air: ${error.message}`); replace("air", el("p", { class: "empty" }, "Not available")); }
    try {
      const devices = await api("/api/v1/devices?online=false");
      replace("offline", devices.devices.length
        ? devices.devices.map((d) => el("div", {}, el("span", { class: "tag offline" }, "offline"), " ",
          d.domain === "home" ? `a device in ${d.subject}` : `${d.kind} at ${d.subject_name || d.subject}`,
          el("span", { class: "hint" }, ` · last seen ${time(d.last_seen)}`)))
        : el("p", { class: "empty" }, seeing ? "All devices reporting." : "Not known while monitoring is degraded."));
    } catch (error) { failures.push(`devices: ${error.message}`); }
    return failures;
  }

  let seeing = true;

  async function start() {
    if (!placesense.token()) { placesense.askForToken(); return; }
    placesense.monitoring((state) => { seeing = state.ok; });
    try { await loadAlerts(); } catch (error) { replace("alerts", el("div", { class: "error-summary" }, error.message)); }
    await loadSide();
    placesense.stream((alert) => { alerts.set(alert.id, alert); renderAlerts(); }, loadAlerts);
    setInterval(loadSide, 60_000);
  }

  start();
})();
