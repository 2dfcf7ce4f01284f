// The street view, for a phone in a park: today's round on a map and as a numbered list in walking order, with
// "Watered" and "Sensor checked" on each bed; broken sensors by bed name and place; air sites.
// The walking order is the API's: the most urgent bed first, then always the nearest bed not yet visited
// (nearest neighbour). The map is Leaflet (served by placesense, api/pages/vendor/) over OpenStreetMap tiles; when
// tiles cannot load (no internet, a locked-down network) the numbered stops stay on a blank map and the list
// gives each bed's coordinates and a map link, which is all a round needs.
// The page reloads when a street alert changes (the live feed) and every 10 minutes in case the feed is down.
"use strict";

(() => {
  const { el, replace, api, time, slug, t, message } = placesense;
  const TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
  const SENSOR_RULE = /offline|battery|fault|sensor/;
  const RULE_WORDS = {
    device_offline: "sensor silent", low_battery: "battery low", sensor_fault: "sensor reads wrongly",
  };
  const NO_STREET = t("This sign-in cannot see street beds. Ask your administrator for a street token.");

  let canAct = true;
  let seeing = true;
  let map = null;
  let stops = null;
  let tilesFailed = false;
  let loading = null;
  let again = false;

  function coords(lat, lon) { return `${Number(lat).toFixed(5)}, ${Number(lon).toFixed(5)}`; }

  function mapLink(lat, lon, name) {
    return el("a", { href: `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=19/${lat}/${lon}`,
      "aria-label": t("Open {name} on a map", { name }) }, "open map");
  }

  function mapNote(text) { document.getElementById("map-note").textContent = t(text); }

  function startMap() {
    if (!window.L) {
      document.getElementById("map").hidden = true;
      mapNote("The map could not load: use the numbered list below.");
      return;
    }
    map = L.map("map", { scrollWheelZoom: false, zoomSnap: 0.5 });
    const offlineNote = "Map tiles cannot load (no internet here?): the numbered stops are still on the map, and "
      + "the list below gives each bed's coordinates.";
    if (navigator.onLine === false) {
      tilesFailed = true;
      mapNote(offlineNote);
    } else {
      // OpenStreetMap's tile policy asks browsers to send a Referer; the page's own policy sends none, so the
      // tiles alone send this site's origin (never a path: the token never sits in one anyway).
      const tiles = L.tileLayer(TILES, { maxZoom: 19, attribution: "© OpenStreetMap contributors",
        referrerPolicy: "origin" });
      tiles.on("tileerror", () => { if (!tilesFailed) { tilesFailed = true; mapNote(offlineNote); } });
      tiles.on("tileload", () => { if (tilesFailed) { tilesFailed = false; mapNote(""); } });
      tiles.addTo(map);
    }
    stops = L.layerGroup().addTo(map);
  }

  function drawRound(walk) {
    const box = document.getElementById("map");
    if (!map) return;
    box.hidden = !walk.length;
    stops.clearLayers();
    if (!walk.length) return;
    map.invalidateSize();
    const points = walk.map((b, i) => {
      const icon = L.divIcon({ className: `round-stop ${b.status}`, html: String(i + 1), iconSize: [28, 28] });
      L.marker([b.lat, b.lon], { icon, title: `${i + 1}. ${b.name}`, alt: `${i + 1}. ${b.name}` })
        .bindPopup(`${i + 1}. ${b.name}`.replace(/[<>&]/g, "")).addTo(stops);
      return [b.lat, b.lon];
    });
    if (points.length > 1) L.polyline(points, { color: "#1d70b8", weight: 3, dashArray: "6 6" }).addTo(stops);
    map.fitBounds(points, { padding: [30, 30], maxZoom: 18 });
  }

  function lastDone(actions, bedId, action) {
    const found = actions.find((a) => a.bed_id === bedId && a.action === action);
    if (!found) return null;
    const what = action === "watered" ? "Watered at {time} by {by}" : "Sensor checked at {time} by {by}";
    return el("div", { class: "checked" }, t(what, { time: time(found.at), by: found.by }),
      found.note ? ` — ${found.note}` : "");
  }

  function focusDone() {
    const done = document.getElementById("done");
    done.tabIndex = -1;
    done.focus();
  }

  async function act(bed, action, button) {
    button.disabled = true;
    const path = action === "watered" ? "watered" : "sensor-checked";
    try {
      const done = await api(`/api/v1/flowerbeds/${encodeURIComponent(bed.bed_id)}/${path}`,
        { method: "POST", body: "{}" });
      const what = action === "watered" ? "{bed} marked watered at {time}." : "{bed} sensor marked checked at {time}.";
      replace("done", t(what, { bed: bed.name, time: time(done.at) }));
      focusDone(); // the redraw removes the pressed button: the focus goes to what happened, not the page's top
      load();
    } catch (error) {
      button.disabled = false;
      replace("done", el("div", { class: "error-summary" }, error.status === 403 ? NO_STREET : error.message));
      focusDone();
    }
  }

  function actions(bed, broken) {
    if (!canAct) return null;
    return el("div", { class: "actions" },
      broken ? null : el("button", { type: "button", class: "watered", "aria-label": t("Watered: {bed}", { bed: bed.name }),
        onclick: (event) => act(bed, "watered", event.currentTarget) }, "Watered"),
      el("button", { type: "button", class: "secondary sensor-checked", "aria-label": t("Sensor checked: {bed}", { bed: bed.name }),
        onclick: (event) => act(bed, "sensor_checked", event.currentTarget) }, "Sensor checked"));
  }

  function bedCard(b, i, done, faulty) {
    return el("li", { class: `card ${b.status}`, "data-bed": b.bed_id },
      el("span", { class: "stop-number" }, `${i + 1}.`), " ",
      el("span", { class: `tag ${b.status}` }, b.status === "now" ? "water now" : "soon"), " ",
      el("strong", {}, b.name),
      el("div", {}, t("{moisture} % moisture (needs water below {threshold} %)",
        { moisture: b.moisture_pct.toFixed(0), threshold: b.dry_below_pct.toFixed(0) })),
      b.status === "soon" ? el("div", {}, t("dry in about {hours} h", { hours: b.hours_to_threshold.toFixed(0) })) : null,
      faulty ? el("div", { class: "error-summary" }, "Its sensor may be wrong (see below): check the soil by hand.")
        : null,
      el("div", { class: "hint" }, t("last reading {time}", { time: time(b.last_reading) })),
      el("div", {}, el("span", { class: "coords" }, coords(b.lat, b.lon)), " · ", mapLink(b.lat, b.lon, b.name)),
      lastDone(done, b.bed_id, "sensor_checked"),
      actions(b, false));
  }

  function brokenCards(alerts, offline, places, walk, done) {
    const bySubject = new Map();
    const add = (subject, line) => {
      if (!bySubject.has(subject)) bySubject.set(subject, []);
      bySubject.get(subject).push(line);
    };
    for (const a of alerts.filter((x) => SENSOR_RULE.test(x.rule))) {
      const words = RULE_WORDS[a.rule] || a.rule.replace(/^sensor_anomaly_?/, "unusual readings: ").replace(/_/g, " ");
      add(a.subject, el("li", {}, t("{what} since {time}", { what: t(words), time: time(a.opened_at) }),
        a.state === "acknowledged" ? " (being dealt with)" : "",
        el("details", {}, el("summary", {}, "What it said then"),
          t("At {time}: {message}", { time: time(a.opened_at), message: message(a) }))));
    }
    for (const d of offline.filter((x) => x.domain !== "home")) {
      add(d.subject, el("li", {}, t("{kind} sensor offline since {time}", { kind: t(d.kind), time: time(d.last_seen) })));
    }
    const stop = new Map(walk.map((b, i) => [b.bed_id, i + 1]));
    return [...bySubject.entries()].map(([subject, lines]) => {
      const place = places.get(subject) || { name: subject, lat: null, lon: null, bed: false };
      const where = place.lat === null ? null
        : el("div", {}, el("span", { class: "coords" }, coords(place.lat, place.lon)), " · ",
          mapLink(place.lat, place.lon, place.name));
      return el("div", { class: "card warning", "data-subject": subject },
        el("strong", {}, place.name), stop.has(subject) ? t(" · stop {stop} of today's round", { stop: stop.get(subject) }) : "",
        el("ul", {}, lines), where,
        place.bed ? lastDone(done, subject, "sensor_checked") : null,
        place.bed ? actions({ bed_id: subject, name: place.name }, true) : null);
    });
  }

  async function optional(path) {
    try { return await api(path); } catch (error) { if (error.status === 403) return null; throw error; }
  }

  async function refresh() {
    let watering;
    try {
      watering = await api("/api/v1/flowerbeds/watering");
    } catch (error) {
      const message = error.status === 403 ? NO_STREET : error.message;
      replace("beds", el("li", { class: "error-summary" }, message)); // #beds is a list: only items inside
      replace("broken", error.status === 403 ? el("p", { class: "empty" }, "Not shown for this sign-in.")
        : el("div", { class: "error-summary" }, error.message));
      drawRound([]);
      return error.status !== 403;
    }
    const [actionsSeen, beds, air, alerts, offline] = await Promise.all([
      optional("/api/v1/flowerbeds/actions"), api("/api/v1/flowerbeds"), api("/api/v1/air/sites"),
      api("/api/v1/alerts?audience=street&state=active"), api("/api/v1/devices?online=false"),
    ]);
    canAct = actionsSeen !== null;
    const done = actionsSeen ? actionsSeen.actions : [];
    const byId = new Map(watering.beds.map((b) => [b.bed_id, b]));
    const walk = watering.walking_order.map((id) => byId.get(id));
    const places = new Map([
      ...beds.beds.map((b) => [b.bed_id, { name: b.name, lat: b.lat, lon: b.lon, bed: true }]),
      ...air.sites.map((s) => [s.site_id, { name: s.name, lat: s.lat, lon: s.lon, bed: false }]),
    ]);
    const broken = brokenCards(alerts.alerts, offline.devices, places, walk, done);
    const faulty = new Set(broken.map((card) => card.dataset.subject));

    replace("beds", walk.length ? walk.map((b, i) => bedCard(b, i, done, faulty.has(b.bed_id)))
      : el("li", { class: "empty" }, "No bed needs water today."));
    drawRound(walk);
    const watered = done.filter((a) => a.action === "watered");
    replace("watered-today", watered.length ? el("details", {},
      el("summary", {}, t("Watered in the last day: {count} {beds}",
        { count: watered.length, beds: t(watered.length === 1 ? "bed" : "beds") })),
      el("ul", {}, watered.map((a) => el("li", { "data-bed": a.bed_id },
        t("{bed} at {time} by {by}", { bed: (places.get(a.bed_id) || { name: a.bed_id }).name, time: time(a.at), by: a.by }),
        a.note ? ` — ${a.note}` : "")))) : []);
    document.getElementById("round-summary").textContent = walk.length
      ? t("{count} {beds} · walk {km} km", { count: walk.length, beds: t(walk.length === 1 ? "bed" : "beds"),
        km: (watering.walking_distance_m / 1000).toFixed(1) })
      : "";
    replace("broken", broken.length ? broken : el("p", { class: "empty" },
      seeing ? "All sensors reporting." : "Not known while monitoring is degraded."));
    replace("air", air.sites.map((s) => el("div", { class: "card" },
      el("span", { class: `tag ${slug(s.band)}` }, s.band ? `${s.index} ${t(s.band)}` : "no data"), " ",
      el("strong", {}, s.name))));
    return true;
  }

  // One refresh at a time; a change that arrives during one asks for another after it.
  async function load() {
    if (loading) { again = true; return; }
    loading = (async () => {
      do {
        again = false;
        try {
          if (await refresh()) {
            document.getElementById("updated").textContent = new Date().toLocaleTimeString(placesense.locale);
          }
        } catch (error) {
          replace("broken", el("div", { class: "error-summary" }, error.message));
        }
      } while (again);
    })();
    await loading;
    loading = null;
  }

  if (!placesense.token()) placesense.askForToken();
  else {
    startMap();
    placesense.monitoring((state) => { seeing = state.ok; });
    load();
    placesense.stream((alert) => { if (alert.audience === "street") load(); }, () => load());
    window.addEventListener("online", () => load());
    setInterval(load, 600_000);
  }
})();
