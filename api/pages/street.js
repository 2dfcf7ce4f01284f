// The street view, for a phone in a park: beds to water in walking order, broken sensors, air sites.
"use strict";

(() => {
  const { el, replace, api, time, slug } = placesense;

  function mapLink(lat, lon) {
    return el("a", { href: `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=19/${lat}/${lon}` }, "map");
  }

  async function load() {
    try {
      const watering = await api("/api/v1/flowerbeds/watering");
      const byId = new Map(watering.beds.map((b) => [b.bed_id, b]));
      const walk = watering.walking_order.map((id) => byId.get(id));
      replace("beds", walk.length ? walk.map((b) => el("li", { class: `card ${b.status}`, "data-bed": b.bed_id },
        el("span", { class: `tag ${b.status}` }, b.status === "now" ? "water now" : "soon"), " ",
        el("strong", {}, b.name),
        el("div", {}, `${b.moisture_pct.toFixed(0)} % moisture (needs water below ${b.dry_below_pct.toFixed(0)} %)`),
        b.status === "soon" ? el("div", {}, `dry in about ${b.hours_to_threshold.toFixed(0)} h`) : null,
        el("div", { class: "hint" }, `last reading ${time(b.last_reading)} · `, mapLink(b.lat, b.lon))))
        : el("p", { class: "empty" }, "No bed needs water today."));
      placesense.status(`${watering.beds.length} beds · walk ${(watering.walking_distance_m / 1000).toFixed(1)} km`);
    } catch (error) { replace("beds", el("div", { class: "error-summary" }, error.message)); }

    try {
      const [alerts, offline] = await Promise.all([
        api("/api/v1/alerts?audience=street&state=open"), api("/api/v1/devices?online=false"),
      ]);
      const faults = alerts.alerts.filter((a) => /fault|offline|battery|stuck|sensor/.test(a.rule));
      const items = [
        ...faults.map((a) => el("div", { class: `card ${a.severity}` }, el("strong", {}, a.subject), " · ", a.message)),
        ...offline.devices.filter((d) => d.domain !== "home").map((d) => el("div", { class: "card warning" },
          el("strong", {}, d.subject_name || d.subject), ` · ${d.kind} sensor offline since ${time(d.last_seen)}`)),
      ];
      replace("broken", items.length ? items : el("p", { class: "empty" },
        seeing ? "All sensors reporting." : "Not known while monitoring is degraded."));
    } catch (error) { replace("broken", el("div", { class: "error-summary" }, error.message)); }

    try {
      const air = await api("/api/v1/air/sites");
      replace("air", air.sites.map((s) => el("div", { class: "card" },
        el("span", { class: `tag ${slug(s.band)}` }, s.band ? `${s.index} ${s.band}` : "no data"), " ",
        el("strong", {}, s.name))));
    } catch (error) { replace("air", el("div", { class: "error-summary" }, error.message)); }
  }

  let seeing = true;
  if (!placesense.token()) placesense.askForToken();
  else {
    placesense.monitoring((state) => { seeing = state.ok; });
    load();
    setInterval(load, 120_000);
  }
})();
