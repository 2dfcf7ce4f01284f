// The care view: per home, open alerts with acknowledge/resolve and a note, the 24-hour activity timeline,
// and today's routine against the learned normal.
"use strict";

(() => {
  const { el, replace, api, time, dateTime } = placesense;
  let home = null;

  function alertCard(a) {
    const note = el("textarea", { rows: "2", "aria-label": `note for alert ${a.id}`, maxlength: "2000" });
    const act = async (verb) => {
      try {
        await api(`/api/v1/alerts/${encodeURIComponent(a.id)}/${verb}`, { method: "POST", body: JSON.stringify({ note: note.value || null }) });
        await loadAlerts();
      } catch (error) { window.alert(error.message); }
    };
    return el("div", { class: `card ${a.severity}`, "data-alert": a.id },
      el("span", { class: `tag ${a.severity}` }, a.severity), " ",
      a.state === "acknowledged" ? el("span", { class: "tag acknowledged" }, "acknowledged") : null,
      el("p", {}, el("strong", {}, a.message)),
      el("p", { class: "hint" }, `${a.rule.replace(/_/g, " ")} · since ${dateTime(a.opened_at)}`),
      a.history.map((h) => el("p", { class: "hint" },
        `${h.action} by ${h.by} at ${dateTime(h.at)}${h.note && h.note !== a.message ? `: ${h.note}` : ""}`)),
      el("label", {}, "Note (optional)"), note,
      el("div", {},
        a.state === "open" ? el("button", { type: "button", onclick: () => act("ack") }, "Acknowledge") : null,
        el("button", { type: "button", class: "secondary", onclick: () => act("resolve") }, "Resolve")));
  }

  async function loadAlerts() {
    const shown = home;
    try {
      const [open, acked] = await Promise.all([
        api(`/api/v1/alerts?subject=${shown}&state=open`), api(`/api/v1/alerts?subject=${shown}&state=acknowledged`),
      ]);
      if (shown !== home) return; // another home was chosen meanwhile: its own load draws the list
      // A live update redraws the list: keep the notes being typed, and the cursor in the one being typed.
      const notes = new Map([...document.querySelectorAll("#alerts [data-alert] textarea")]
        .map((t) => [t.closest("[data-alert]").dataset.alert, t.value]));
      const focused = document.activeElement && document.activeElement.closest("#alerts [data-alert]");
      const focusedId = focused && document.activeElement.tagName === "TEXTAREA" ? focused.dataset.alert : null;
      const all = [...open.alerts, ...acked.alerts];
      replace("alerts", all.length ? all.map(alertCard) : el("p", { class: "empty" }, "No open alerts for this home."));
      document.querySelectorAll("#alerts [data-alert] textarea").forEach((t) => {
        const id = t.closest("[data-alert]").dataset.alert;
        if (notes.has(id)) t.value = notes.get(id);
        if (id === focusedId) t.focus();
      });
    } catch (error) { if (shown === home) replace("alerts", el("div", { class: "error-summary" }, error.message)); }
  }

  async function loadTimeline() {
    const shown = home;
    try {
      const activity = await api(`/api/v1/homes/${shown}/activity?hours=24`);
      if (shown !== home) return;
      const end = new Date(activity.end).getTime();
      const hours = Array.from({ length: 24 }, (_, i) => new Date(end - (24 - i) * 3600_000));
      const rooms = [...new Set(activity.hours.map((h) => h.room))].sort();
      const cells = new Map(activity.hours.map((h) => [`${h.room}|${new Date(h.hour).getTime()}`, h]));
      const level = (h) => {
        if (!h) return "";
        const n = ["motion", "door_open", "occupied", "help_pressed"].reduce((s, k) => s + (h.events[k] || 0), 0);
        return n === 0 ? "" : n < 3 ? "a1" : n < 10 ? "a2" : "a3";
      };
      replace("timeline", rooms.length ? el("table", { class: "timeline" },
        el("thead", {}, el("tr", {}, el("th", {}, "Room"), hours.map((h, i) => el("th", {}, i % 3 === 0 ? time(h.toISOString()) : "")))),
        el("tbody", {}, rooms.map((room) => el("tr", {}, el("th", {}, room.replace(/_/g, " ")),
          hours.map((h) => {
            const cell = cells.get(`${room}|${h.getTime()}`);
            return el("td", { class: `cell ${level(cell)}`, title: `${room} ${time(h.toISOString())}` });
          })))))
        : el("p", { class: "empty" }, "No activity recorded in the last 24 hours."));
    } catch (error) { if (shown === home) replace("timeline", el("div", { class: "error-summary" }, error.message)); }
  }

  async function loadRoutine() {
    const shown = home;
    try {
      const routine = await api(`/api/v1/homes/${shown}/routine`);
      if (shown !== home) return;
      replace("routine", el("table", {}, el("tbody", {}, Object.entries(routine.routine).map(([k, v]) =>
        el("tr", {}, el("th", {}, k.replace(/_/g, " ")), el("td", {}, typeof v === "object" ? JSON.stringify(v) : String(v)))))));
    } catch (error) { if (shown === home) replace("routine", el("p", { class: "empty" }, error.message)); }
  }

  function show() {
    home = document.getElementById("home").value;
    loadAlerts(); loadTimeline(); loadRoutine();
  }

  async function start() {
    if (!placesense.token()) { placesense.askForToken(); return; }
    placesense.monitoring();
    try {
      const homes = await api("/api/v1/homes");
      const select = document.getElementById("home");
      select.replaceChildren(...homes.homes.map((h) => el("option", { value: h.id }, h.name ? `${h.name} (${h.id})` : h.id)));
      select.addEventListener("change", show);
      if (homes.homes.length) show();
      placesense.stream((alert) => { if (alert.subject === home) loadAlerts(); }, loadAlerts);
    } catch (error) { replace("alerts", el("div", { class: "error-summary" }, error.message)); }
  }

  start();
})();
