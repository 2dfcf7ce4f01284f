// The care view: every home's open alerts at a glance (most serious, then longest open, first), then per home its
// open alerts with acknowledge/resolve and a note, the recently resolved ones (handover), the 24-hour activity
// timeline, and today's routine against the learned normal as sentences.
"use strict";

(() => {
  const { el, replace, api, time, dateTime, t, word, message } = placesense;
  const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };
  let home = null;
  let homes = [];
  const seenCritical = new Set();

  const homeName = (id) => { const h = homes.find((x) => x.id === id); return h && h.name ? h.name : id; };
  const ruleLabel = (rule) => { const s = rule.replace(/_/g, " "); return t(s.charAt(0).toUpperCase() + s.slice(1)); };
  const happened = (h, a) => t("{action} by {by} at {at}", { action: word("action", h.action), by: h.by, at: dateTime(h.at) })
    + (h.note && h.note !== a.message ? `: ${h.note}` : "");

  function openFor(iso) {
    const minutes = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60_000));
    if (minutes < 60) return t("{minutes} min", { minutes });
    const hours = Math.floor(minutes / 60);
    return hours < 48 ? t("{hours} h {minutes} min", { hours, minutes: minutes % 60 })
      : t("{days} days", { days: Math.floor(hours / 24) });
  }

  const bySeverityThenAge = (a, b) =>
    SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || a.opened_at.localeCompare(b.opened_at);

  async function activeAlerts(subject) {
    const query = subject ? `&subject=${subject}` : "";
    const [open, acked] = await Promise.all([
      api(`/api/v1/alerts?state=open&limit=500${query}`), api(`/api/v1/alerts?state=acknowledged&limit=500${query}`),
    ]);
    return [...open.alerts, ...acked.alerts];
  }

  // --- every home at once ---------------------------------------------------------------------------------

  async function loadOverview() {
    try {
      const all = (await activeAlerts(null)).filter((a) => homes.some((h) => h.id === a.subject)).sort(bySeverityThenAge);
      replace("overview", all.length ? el("ul", { class: "overview" }, all.map((a) =>
        el("li", { class: `card ${a.severity}`, "data-overview": a.id, "data-home": a.subject },
          el("span", { class: `tag ${a.severity}` }, a.severity), " ",
          a.state === "acknowledged" ? el("span", { class: "tag acknowledged" }, "acknowledged") : null, " ",
          el("strong", {}, homeName(a.subject)), ` · ${message(a)} · ${t("open {time}", { time: openFor(a.opened_at) })} `,
          a.subject === home ? el("span", { class: "hint" }, "(shown below)")
            : el("button", { type: "button", class: "secondary", onclick: () => choose(a.subject) },
              t("Show {home}", { home: homeName(a.subject) })))))
        : el("p", { class: "empty" }, "No open alerts in any of your homes."));
      markPicker(all);
    } catch (error) { replace("overview", el("div", { class: "error-summary" }, error.message)); }
  }

  // The home picker says which homes have open alerts, so a critical one elsewhere is seen from the picker too.
  function markPicker(all) {
    document.querySelectorAll("#home option").forEach((option) => {
      const mine = all.filter((a) => a.subject === option.value);
      const worst = mine.length ? mine.sort(bySeverityThenAge)[0].severity : null;
      const base = homeName(option.value) === option.value ? option.value : `${homeName(option.value)} (${option.value})`;
      option.textContent = worst ? `${worst === "critical" ? "⚠ " : ""}${t("{home} — {count} open, {severity}",
        { home: base, count: mine.length, severity: t(worst) })}` : base;
      option.dataset.severity = worst || "";
    });
  }

  function choose(id) {
    const select = document.getElementById("home");
    select.value = id;
    show();
    select.focus();
  }

  // --- a new critical alert: a browser notification and a short tone, if the carer turned them on ----------

  function tone() {
    try {
      const ctx = new AudioContext();
      const osc = ctx.createOscillator();
      osc.frequency.value = 880;
      osc.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.4);
    } catch (_) { /* no audio on this device */ }
  }

  function tellAboutCritical(alert) {
    if (alert.severity !== "critical" || alert.state !== "open" || seenCritical.has(alert.id)) return;
    seenCritical.add(alert.id);
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    new Notification(t("Critical: {home}", { home: homeName(alert.subject) }), { body: message(alert), tag: `alert-${alert.id}` });
    tone();
  }

  function offerNotifications() {
    const button = document.getElementById("notify");
    if (!("Notification" in window) || Notification.permission !== "default") return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      await Notification.requestPermission();
      button.hidden = true;
    });
  }

  // --- the selected home ------------------------------------------------------------------------------------

  function alertCard(a) {
    // The box names its problem (read with it by a screen reader, and marked invalid while it stands).
    const note = el("textarea", { rows: "2", id: `note-${a.id}`, maxlength: "2000", "aria-describedby": `problem-${a.id}` });
    const problem = el("p", { class: "field-error", role: "alert", id: `problem-${a.id}` });
    const act = async (verb) => {
      problem.textContent = "";
      note.removeAttribute("aria-invalid");
      const text = note.value.trim();
      if (verb === "resolve" && a.severity === "critical" && !text) {
        problem.textContent = t("Say in the note what was done before resolving a critical alert.");
        note.setAttribute("aria-invalid", "true");
        note.focus();
        return;
      }
      try {
        await api(`/api/v1/alerts/${encodeURIComponent(a.id)}/${verb}`, { method: "POST", body: JSON.stringify({ note: text || null }) });
        note.value = ""; // each action keeps its own note: the next one starts empty
        placesense.status(t(verb === "ack" ? "Acknowledged: {message}" : "Resolved: {message}", { message: message(a) })); // said by screen readers
        await Promise.all([loadAlerts(), loadOverview(), loadHistory()]);
      } catch (error) { problem.textContent = error.message; }
    };
    return el("div", { class: `card ${a.severity}`, "data-alert": a.id },
      el("span", { class: `tag ${a.severity}` }, a.severity), " ",
      a.state === "acknowledged" ? el("span", { class: "tag acknowledged" }, "acknowledged") : null,
      el("p", {}, el("strong", {}, message(a))),
      el("p", { class: "hint" }, t("{rule} · since {since} · open {time}",
        { rule: ruleLabel(a.rule), since: dateTime(a.opened_at), time: openFor(a.opened_at) })),
      a.history.map((h) => el("p", { class: "hint" }, happened(h, a))),
      el("label", { for: `note-${a.id}` },
        a.severity === "critical" ? "Note (needed to resolve)" : "Note (optional)"), note, problem,
      el("div", {},
        a.state === "open" ? el("button", { type: "button", onclick: () => act("ack") }, "Acknowledge") : null,
        el("button", { type: "button", class: "secondary", onclick: () => act("resolve") }, "Resolve")));
  }

  async function loadAlerts() {
    const shown = home;
    try {
      const all = await activeAlerts(shown);
      if (shown !== home) return; // another home was chosen meanwhile: its own load draws the list
      // A live update (or an action's own) redraws the list: keep the notes being typed, and the focus on the
      // same control of the same card (Acknowledge gone: Resolve, next to it), or on the list once the card has
      // gone, so a keyboard or screen reader user keeps their place instead of being thrown back to the top.
      const notes = new Map([...document.querySelectorAll("#alerts [data-alert] textarea")]
        .map((t) => [t.closest("[data-alert]").dataset.alert, t.value]));
      const active = document.activeElement;
      const focused = active && active.closest("#alerts [data-alert]");
      const focusedAt = focused ? [...focused.querySelectorAll("textarea, button")].indexOf(active) : -1;
      all.sort(bySeverityThenAge);
      replace("alerts", all.length ? all.map(alertCard) : el("p", { class: "empty" }, "No open alerts for this home."));
      document.querySelectorAll("#alerts [data-alert] textarea").forEach((t) => {
        const id = t.closest("[data-alert]").dataset.alert;
        if (notes.has(id)) t.value = notes.get(id);
      });
      if (focused) {
        const card = document.querySelector(`#alerts [data-alert="${focused.dataset.alert}"]`);
        const controls = card ? [...card.querySelectorAll("textarea, button")] : [];
        const list = document.getElementById("alerts");
        list.tabIndex = -1;
        (controls.length ? controls[Math.min(Math.max(focusedAt, 0), controls.length - 1)] : list).focus();
      }
    } catch (error) { if (shown === home) replace("alerts", el("div", { class: "error-summary" }, error.message)); }
  }

  // Handover: what was resolved in this home lately, and who did what.
  async function loadHistory() {
    const shown = home;
    const hours = Number(document.getElementById("history-period").value);
    const severity = document.getElementById("history-severity").value;
    try {
      const resolved = await api(`/api/v1/alerts?subject=${shown}&state=resolved&limit=500`);
      if (shown !== home) return;
      const since = Date.now() - hours * 3600_000;
      const recent = resolved.alerts.filter((a) => new Date(a.updated_at).getTime() >= since
        && (!severity || a.severity === severity));
      replace("history", recent.length ? el("ul", { class: "history" }, recent.map((a) =>
        el("li", { class: `card ${a.severity}`, "data-resolved": a.id },
          el("span", { class: `tag ${a.severity}` }, a.severity), " ", el("strong", {}, message(a)),
          el("p", { class: "hint" }, t("{rule} · opened {at}", { rule: ruleLabel(a.rule), at: dateTime(a.opened_at) })),
          a.history.filter((h) => h.action !== "opened" || h.note !== a.message).map((h) => el("p", { class: "hint" },
            happened(h, a))))))
        : el("p", { class: "empty" }, hours === 24 ? "Nothing resolved in this home in the last 24 hours."
          : "Nothing resolved in this home in the last 7 days."));
    } catch (error) { if (shown === home) replace("history", el("div", { class: "error-summary" }, error.message)); }
  }

  const LEVEL_WORDS = { "": "none", a1: "a little", a2: "some", a3: "a lot" };

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
        el("thead", {}, el("tr", {}, el("th", {}, "Room"), hours.map((h, i) => el("th", {},
          el("span", { class: i % 3 === 0 ? null : "visually-hidden" }, time(h.toISOString())))))), // every 3 h shown
        el("tbody", {}, rooms.map((room) => el("tr", {}, el("th", {}, room.replace(/_/g, " ")),
          hours.map((h) => {
            const cell = cells.get(`${room}|${h.getTime()}`);
            const shade = level(cell);
            return el("td", { class: `cell ${shade}`, title: `${t(room.replace(/_/g, " "))} ${time(h.toISOString())}` },
              el("span", { class: "visually-hidden" }, t(LEVEL_WORDS[shade]))); // the shade in words, not colour alone
          })))))
        : el("p", { class: "empty" }, "No activity recorded in the last 24 hours."));
    } catch (error) { if (shown === home) replace("timeline", el("div", { class: "error-summary" }, error.message)); }
  }

  // A text the API gives in several languages ({"en": …, "cy": …}), in the page's language when it has it.
  const inLang = (texts, english) => (texts && texts[placesense.lang]) || english;
  const STATES = { asleep: "In bed now.", out: "Out of the home now.", up: "Up and about now." };

  // The routine as sentences: the detector gives one per feature once it has a usual range to compare with.
  function routineView(routine) {
    const w = routine.warm_up || { days_learned: 0, days_needed: 0, ready: false };
    const lines = [];
    lines.push(w.ready
      ? t("Usual routine learned from {days} days.", { days: w.days_learned })
      : t("Still learning the usual routine: {learned} of {needed} days so far. Routine alerts start after that.",
        { learned: w.days_learned, needed: w.days_needed }));
    if (routine.state) lines.push(t(STATES[routine.state] || ""));
    if (routine.day_started) lines.push(t("Today started at {time}.", { time: routine.day_started }));
    const features = routine.features || [];
    return el("div", { class: "routine" },
      el("p", {}, lines.join(" ")),
      features.length ? el("ul", {}, features.map((f) => el("li", { "data-feature": f.feature },
        f.text ? `${inLang(f.texts, f.text)}.`.replace(/\.\.$/, ".")
          : t("{label}: not enough days yet to say what is usual.", { label: inLang(f.labels, f.label) }))))
        : el("p", { class: "empty" }, "Nothing to compare yet today."));
  }

  async function loadRoutine() {
    const shown = home;
    try {
      const routine = await api(`/api/v1/homes/${shown}/routine`);
      if (shown !== home) return;
      replace("routine", routineView(routine.routine));
      careCharts.routine(routine.routine);
    } catch (error) { if (shown === home) replace("routine", el("p", { class: "empty" }, error.message)); }
  }

  function show() {
    home = document.getElementById("home").value;
    loadAlerts(); loadHistory(); loadTimeline(); loadRoutine(); loadOverview();
    careCharts.temperature(home);
  }

  async function start() {
    if (!placesense.token()) { placesense.askForToken(); return; }
    placesense.monitoring();
    try {
      homes = (await api("/api/v1/homes")).homes;
      const select = document.getElementById("home");
      select.replaceChildren(...homes.map((h) => el("option", { value: h.id }, h.name ? `${h.name} (${h.id})` : h.id)));
      select.addEventListener("change", show);
      document.getElementById("history-period").addEventListener("change", loadHistory);
      document.getElementById("history-severity").addEventListener("change", loadHistory);
      (await activeAlerts(null)).forEach((a) => { if (a.severity === "critical") seenCritical.add(a.id); });
      if (homes.length) show();
      offerNotifications();
      // Every change reaches the overview, whichever home it is about; the selected home's lists follow it.
      placesense.stream((alert) => {
        tellAboutCritical(alert);
        loadOverview();
        if (alert.subject === home) { loadAlerts(); loadHistory(); }
      }, () => { loadOverview(); loadAlerts(); loadHistory(); });
      setInterval(loadOverview, 60_000); // "open for" keeps counting
    } catch (error) { replace("alerts", el("div", { class: "error-summary" }, error.message)); }
  }

  start();
})();
