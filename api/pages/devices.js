// The device page, for admins: what needs attention (offline, never heard from, low battery), every device with
// its place, battery, last message and radio signal, the devices that published without being registered, and a
// form that registers one and shows its new broker password once. Reads /api/v1/devices?signal=true and
// /api/v1/devices/discovered; registers with POST /api/v1/devices. Other roles are told the page is not theirs.
// Words are in the page's language (placesense.t, api/pages/i18n/cy.json), each sentence one whole template.
"use strict";

(() => {
  const { el, replace, api, dateTime, t } = placesense;
  const LOW_BATTERY_PCT = 20;
  const HOME_KINDS = ["motion", "front_door", "fridge_door", "door", "bed", "chair", "kettle", "plug", "climate",
    "help_button", "contact", "flush"];
  const ROOMS = ["bedroom", "bathroom", "kitchen", "living_room", "hallway", "other"];
  const DOMAINS = { home: t("Home (care)"), soil: t("Flowerbed soil sensor"), air: t("Air quality sensor") };
  const NOT_ADMIN = t("This page is for administrators. Your sign-in cannot see or register devices: "
    + "ask your placesense administrator if you need it.");
  let devices = [];
  let discovered = [];
  const subjects = { home: [], soil: [], air: [] };

  // A code such as "living_room" or "help_button" in words, in the page's language ("ystafell fyw").
  const words = (text) => t(String(text || "").replace(/_/g, " "));

  function ago(iso) {
    if (!iso) return t("never");
    const minutes = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60_000));
    if (minutes < 2) return t("just now");
    if (minutes < 90) return t("{minutes} min ago", { minutes });
    const hours = Math.round(minutes / 60);
    return hours < 48 ? t("{hours} hours ago", { hours }) : t("{days} days ago", { days: Math.round(hours / 24) });
  }

  function place(d) {
    const name = d.subject_name ? `${d.subject_name} (${d.subject})` : d.subject;
    return d.room ? `${name}, ${words(d.room)}` : name;
  }

  // When a device last sent something: "12 min ago (Sat 08:09)", or "never".
  const lastMessage = (d) => (d.last_seen
    ? t("{ago} ({time})", { ago: ago(d.last_seen), time: dateTime(d.last_seen) }) : t("never"));

  // LoRaWAN RSSI at the gateway below about -115 dBm, or Zigbee link quality below about 50, is a weak link.
  function signal(d) {
    const parts = [];
    if (d.rssi_dbm !== null && d.rssi_dbm !== undefined) {
      parts.push(`${Math.round(d.rssi_dbm)} dBm`);
      if (d.snr_db !== null && d.snr_db !== undefined) parts.push(`SNR ${d.snr_db} dB`);
      if (d.rssi_dbm < -115) parts.push(t("weak"));
    }
    if (d.link_quality !== null && d.link_quality !== undefined) {
      parts.push(t("link quality {quality} of 255", { quality: Math.round(d.link_quality) }));
      if (d.link_quality < 50) parts.push(t("weak"));
    }
    return parts.length ? parts.join(", ") : t("not reported");
  }

  function battery(d) {
    if (d.battery_pct === null || d.battery_pct === undefined) return t("not reported");
    const percent = Math.round(d.battery_pct);
    return d.battery_pct < LOW_BATTERY_PCT ? t("{percent} % (low)", { percent }) : `${percent} %`;
  }

  // A device without a status topic (most bridged ones) is judged by its last message: some, such as door
  // contacts, are quiet for hours when nothing happens, so "quiet" is a hint, not an alarm.
  const QUIET_AFTER_MS = 2 * 3600_000;
  function state(d) {
    if (d.online === false) return el("span", { class: "tag offline" }, t("offline"));
    if (d.online === true) return el("span", { class: "tag online" }, t("online"));
    if (!d.last_seen) return el("span", { class: "tag info" }, t("never heard"));
    return Date.now() - new Date(d.last_seen).getTime() < QUIET_AFTER_MS
      ? el("span", { class: "tag online" }, t("reporting")) : el("span", { class: "tag info" }, t("quiet"));
  }

  // --- what needs attention --------------------------------------------------------------------------------

  function attentionItem(d, why) {
    return el("li", { class: `card ${why === "offline" ? "critical" : "warning"}`, "data-attention": d.id, "data-why": why },
      state(d), " ", el("strong", {}, d.id), ` · ${words(d.kind)} · ${place(d)}`,
      el("p", { class: "hint" }, why === "low battery"
        ? t("Battery {battery} · last message {ago}", { battery: battery(d), ago: ago(d.last_seen) })
        : t(d.last_seen ? "Last message {when} · battery {battery}" : "Last message never · battery {battery}",
          { when: lastMessage(d), battery: battery(d) })));
  }

  function showAttention() {
    const offline = devices.filter((d) => d.online === false);
    const silent = devices.filter((d) => d.online !== false && !d.last_seen);
    const low = devices.filter((d) => d.online !== false && d.last_seen
      && d.battery_pct !== null && d.battery_pct < LOW_BATTERY_PCT);
    const groups = [
      ["offline", offline, t("Offline ({count})", { count: offline.length })],
      ["never heard", silent, t("Never heard from ({count})", { count: silent.length })],
      ["low battery", low, t("Battery below {percent} % ({count})", { percent: LOW_BATTERY_PCT, count: low.length })],
    ].filter(([, list]) => list.length);
    replace("attention", groups.length ? groups.map(([why, list, title]) => el("div", { "data-group": why },
      el("h3", {}, title), el("ul", { class: "overview" }, list.map((d) => attentionItem(d, why)))))
      : el("p", { class: "empty" }, t("Every device is online, reporting and has battery.")));
  }

  function showDevices() {
    replace("devices", devices.length ? el("table", {},
      el("caption", { class: "hint" }, t("{count} registered devices, offline first", { count: devices.length })),
      el("thead", {}, el("tr", {}, [t("Device"), t("Kind"), t("Place"), t("State"), t("Battery"), t("Last message"),
        t("Signal")].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, [...devices].sort((a, b) => rank(a) - rank(b) || a.id.localeCompare(b.id)).map((d) =>
        el("tr", { "data-device": d.id },
          el("th", { scope: "row" }, d.id), el("td", {}, words(d.kind)), el("td", {}, place(d)), el("td", {}, state(d)),
          el("td", {}, battery(d)), el("td", {}, lastMessage(d)),
          el("td", {}, signal(d))))))
      : el("p", { class: "empty" }, t("No devices are registered yet.")));
  }

  const rank = (d) => (d.online === false ? 0 : d.last_seen ? 2 : 1);

  // --- discovered devices and the registration form ----------------------------------------------------------

  function domainOf(topic) {
    const match = /placesense\/v1\/(home|soil|air)\//.exec(topic);
    return match ? match[1] : null;
  }

  function showDiscovered() {
    replace("discovered", discovered.length ? el("ul", { class: "overview" }, discovered.map((d) => {
      const canRegister = d.format === "canonical" && domainOf(d.topic);
      return el("li", { class: "card", "data-discovered": d.source_id },
        el("strong", {}, d.source_id),
        t(" · {count} message(s) · last {ago}", { count: d.messages, ago: ago(d.last_seen) }),
        el("p", { class: "hint" }, t("Topic {topic}", { topic: d.topic })),
        canRegister ? el("button", { type: "button", class: "secondary", onclick: () => prefill(d) },
          t("Register {id}", { id: d.source_id }))
          : el("p", { class: "hint" }, t("A {format} device: add it to the registry file with its source id.",
            { format: d.format })));
    })) : el("p", { class: "empty" }, t("No unregistered device has sent anything.")));
  }

  function field(id, label, control, hint) {
    return el("div", {}, el("label", { for: id }, label), hint ? el("p", { class: "hint", id: `${id}-hint` }, hint) : null,
      control);
  }

  function options(list, chosen) {
    return list.map(([value, text]) => el("option", { value, selected: value === chosen ? "selected" : null }, text));
  }

  function registerForm() {
    const canonical = discovered.filter((d) => d.format === "canonical" && domainOf(d.topic));
    if (!canonical.length) {
      replace("register", el("p", { class: "empty" },
        t("Nothing to register: a device appears under \u201cDiscovered\u201d once it has published on its own topic.")));
      return;
    }
    const id = el("select", { id: "reg-id", name: "id" }, options(canonical.map((d) => [d.source_id, d.source_id])));
    const domain = el("select", { id: "reg-domain", name: "domain" }, options(Object.entries(DOMAINS)));
    const subject = el("select", { id: "reg-subject", name: "subject" });
    const kind = el("select", { id: "reg-kind", name: "kind" }, options(HOME_KINDS.map((k) => [k, words(k)])));
    const room = el("select", { id: "reg-room", name: "room" }, options(ROOMS.map((r) => [r, words(r)])));
    const model = el("input", { id: "reg-model", name: "model", type: "text", autocomplete: "off", spellcheck: "false" });
    const problem = el("p", { class: "field-error", id: "reg-error", role: "alert" });
    const homeOnly = el("div", {}, field("reg-kind", t("Kind"), kind), field("reg-room", t("Room"), room));

    const fillSubjects = () => {
      subject.replaceChildren(...options(subjects[domain.value].map((s) => [s.id, s.name ? `${s.name} (${s.id})` : s.id])));
      homeOnly.hidden = domain.value !== "home";
    };
    const followId = () => {
      const found = canonical.find((d) => d.source_id === id.value);
      if (found) domain.value = domainOf(found.topic);
      fillSubjects();
    };
    id.addEventListener("change", followId);
    domain.addEventListener("change", fillSubjects);

    const form = el("form", { id: "register-form", novalidate: "novalidate", onsubmit: async (event) => {
      event.preventDefault();
      problem.textContent = "";
      const body = { id: id.value, domain: domain.value, subject: subject.value,
        kind: domain.value === "home" ? kind.value : domain.value,
        room: domain.value === "home" ? room.value : null, model: model.value.trim() || null };
      if (!body.subject) { problem.textContent = t("Choose what the device belongs to."); subject.focus(); return; }
      try {
        const done = await api("/api/v1/devices", { method: "POST", body: JSON.stringify(body) });
        await load();
        showRegistered(done);
      } catch (error) { problem.textContent = error.status === 403 ? NOT_ADMIN : error.message; }
    } },
    field("reg-id", t("Device"), id, t("Only devices that have published can be registered.")),
    field("reg-domain", t("Type"), domain),
    field("reg-subject", t("Belongs to"), subject, t("The home, flowerbed or air site it is fitted in.")),
    homeOnly,
    field("reg-model", t("Model (optional)"), model, t("The vendor's model, as written on the device.")),
    problem,
    el("button", { type: "submit" }, t("Register device")));
    replace("register", form);
    followId();
  }

  function prefill(d) {
    const id = document.getElementById("reg-id");
    id.value = d.source_id;
    id.dispatchEvent(new Event("change"));
    id.focus();
  }

  // The broker password exists in the answer only: the page shows it once, says so, and never stores it.
  function showRegistered(done) {
    const account = done.broker;
    const notes = [
      done.evaluation_watching ? t("The alert rules watch it now.") : t("The alert rules start watching it when they restart."),
    ];
    if (account && !done.broker_reloaded) notes.push(t("The broker was not told about the new account: reload mosquitto."));
    const panel = el("div", { class: "card warning", id: "registered", tabindex: "-1", role: "region",
      "aria-labelledby": "registered-heading" },
      el("h3", { id: "registered-heading" }, t("Registered {id}", { id: done.id })),
      account ? [
        el("p", {}, el("strong", {}, t("Copy this broker password into the device now. It is shown only this once: "
          + "placesense cannot show it again, and leaving this page loses it."))),
        el("dl", { class: "account" },
          el("dt", {}, t("Username")), el("dd", {}, el("code", { "data-account": "username" }, account.username)),
          el("dt", {}, t("Client id")), el("dd", {}, el("code", { "data-account": "client_id" }, account.client_id)),
          el("dt", {}, t("Password")), el("dd", {}, el("code", { "data-account": "password" }, account.password))),
      ] : el("p", {}, t("No broker account was made: placesense has no broker folder configured "
        + "(PLACESENSE_BROKER_DIR).")),
      el("p", {}, notes.join(" ")));
    // Its own slot: the lists' refresh redraws the form, never this panel.
    replace("registered-slot", panel);
    panel.focus();
  }

  // --- loading ------------------------------------------------------------------------------------------------

  async function load() {
    const [list, found] = await Promise.all([api("/api/v1/devices?signal=true"), api("/api/v1/devices/discovered")]);
    devices = list.devices;
    discovered = found;
    showAttention();
    showDevices();
    showDiscovered();
    registerForm();
    placesense.status(t("Updated {time}", { time: placesense.time(new Date().toISOString()) }));
  }

  async function loadSubjects() {
    const [homes, beds, sites] = await Promise.all([
      api("/api/v1/homes"), api("/api/v1/flowerbeds"), api("/api/v1/air/sites")]);
    subjects.home = homes.homes.map((h) => ({ id: h.id, name: h.name }));
    subjects.soil = beds.beds.map((b) => ({ id: b.bed_id, name: b.name }));
    subjects.air = sites.sites.map((s) => ({ id: s.site_id, name: s.name }));
  }

  async function start() {
    if (!placesense.token()) { placesense.askForToken(); return; }
    placesense.monitoring();
    try {
      await api("/api/v1/devices/discovered"); // admins only: anyone else is told so, not shown a broken page
      await loadSubjects();
      await load();
      // Refresh the lists; the form is left alone while someone is filling it in.
      setInterval(async () => {
        if (document.activeElement && document.activeElement.closest("#register")) return;
        try { await load(); } catch (error) { placesense.status(error.message); }
      }, 60_000);
    } catch (error) {
      const message = error.status === 403 ? NOT_ADMIN : error.message;
      document.querySelector("main").replaceChildren(el("div", { class: "error-summary", role: "alert" }, message));
    }
  }

  start();
})();
