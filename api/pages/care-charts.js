// The care page's two small charts, drawn with uPlot (vendored, api/pages/vendor/uplot/): getting-up time over the
// last weeks against the usual range, and room temperature over the last 7 days. Each chart is a <figure> whose
// caption says in words what the chart shows, with the numbers as a table under "Show the numbers": the canvas is
// a picture of that text, hidden from screen readers (WCAG 1.1.1). care.js calls careCharts.routine(routine) when
// it has a home's routine and careCharts.temperature(home) when a home is chosen. Words are in the page's language
// (placesense.t, api/pages/i18n/cy.json), each sentence one whole template; days and times from common.js.
"use strict";

const careCharts = (() => {
  const { el, replace, api, t, time, dateTime, date } = placesense;
  const BLUE = "#1d70b8";
  const BAND = "rgba(29, 112, 184, 0.15)";
  const GREY = "#505a5f";
  const DAY_MS = 86_400_000;
  const plots = new Map(); // id -> uPlot, resized with the window

  const clock = (minutes) => {
    const m = Math.round(minutes) % 1440;
    return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
  };
  const day = (ms) => date(ms); // "Sat 5 Dec" / "Sad 5 Rhag"
  const at = (ms) => dateTime(ms); // "Sat 08:09" / "Sad 08:09"
  // Axis labels: a date at midnight, the time of day otherwise.
  const tickLabel = (seconds) => {
    const moment = new Date(seconds * 1000);
    return moment.getHours() === 0 && moment.getMinutes() === 0 ? day(moment.getTime()) : time(moment.getTime());
  };
  const dateTicks = { stroke: GREY, space: 90, values: (u, ticks) => ticks.map(tickLabel) };
  const width = (node) => Math.max(260, Math.min(node.clientWidth || 600, 900));

  function figure(id, caption, table) {
    const plot = el("div", { class: "chart", id: `${id}-plot`, "aria-hidden": "true" });
    return el("figure", { class: "chart-figure", id, "data-chart": id },
      plot,
      el("figcaption", {}, caption),
      table ? el("details", {}, el("summary", {}, t("Show the numbers")), table) : null);
  }

  function draw(id, options, data) {
    if (typeof uPlot !== "function") return; // the library did not load: the caption and table still say it all
    const node = document.getElementById(`${id}-plot`);
    if (plots.has(id)) plots.get(id).destroy();
    plots.set(id, new uPlot({ width: width(node), height: 220, legend: { show: false }, ...options }, data, node));
  }

  window.addEventListener("resize", () => plots.forEach((plot, id) => {
    const node = document.getElementById(`${id}-plot`);
    if (node && node.isConnected) plot.setSize({ width: width(node), height: 220 });
  }));

  function table(headings, rows) {
    return el("table", {},
      el("thead", {}, el("tr", {}, headings.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c, i) => (i === 0 ? el("th", { scope: "row" }, c) : el("td", {}, c)))))));
  }

  // --- getting up over the last weeks -------------------------------------------------------------------------

  // Whole sentences, each its own template, joined by a space.
  function wakeSentence(days, usual) {
    if (!days.length) return t("No full day learned yet: the chart of getting-up times starts after the first one.");
    const times = days.map((d) => d.wake_min);
    const parts = [days.length === 1
      ? t("Got up at {time} on the only day learned so far.", { time: clock(times[0]) })
      : t("Got up between {earliest} and {latest} over the last {days} days learned.",
        { earliest: clock(Math.min(...times)), latest: clock(Math.max(...times)), days: days.length })];
    const weekday = usual.weekday;
    const weekend = usual.weekend;
    if (!weekday && !weekend) {
      parts.push(t("There is no usual range yet: it needs at least 3 days."));
      return parts.join(" ");
    }
    if (weekday && weekend) {
      parts.push(t("Usually up between {low} and {high} on weekdays, {weekend_low} and {weekend_high} at weekends.",
        { low: clock(weekday.low), high: clock(weekday.high), weekend_low: clock(weekend.low),
          weekend_high: clock(weekend.high) }));
    } else if (weekday) {
      parts.push(t("Usually up between {low} and {high} on weekdays.", { low: clock(weekday.low), high: clock(weekday.high) }));
    }
    const outside = days.filter((d) => {
      const range = (d.weekend ? weekend : weekday) || weekday || weekend;
      // compared as the minutes shown, so a day shown as 08:01 is not "outside" a range shown as 08:01–08:17
      return Math.round(d.wake_min) < Math.round(range.low) || Math.round(d.wake_min) > Math.round(range.high);
    });
    const list = outside.slice(-5).map((d) => t("{day} at {time}", { day: day(d.atMs), time: clock(d.wake_min) }));
    parts.push(outside.length
      ? t(outside.length === 1 ? "Outside the usual range on {count} day: {days}."
        : "Outside the usual range on {count} days: {days}.", { count: outside.length, days: list.join(", ") })
      : t("Every day was inside the usual range."));
    return parts.join(" ");
  }

  function routine(today) {
    const target = document.getElementById("wake-chart");
    if (!target) return;
    const usual = today.usual_wake || { weekday: null, weekend: null };
    const days = (today.wake_history || []).map((d) => ({ ...d, atMs: new Date(d.at).getTime() }));
    const rangeOf = (d) => (d.weekend ? usual.weekend : usual.weekday) || usual.weekday || usual.weekend;
    replace("wake-chart", figure("wake", wakeSentence(days, usual), days.length ? table(
      [t("Day"), t("Got up"), t("Usual range")],
      days.map((d) => [day(d.atMs), clock(d.wake_min), rangeOf(d)
        ? t("{low} to {high}", { low: clock(rangeOf(d).low), high: clock(rangeOf(d).high) }) : t("not known yet")]),
    ) : null));
    if (!days.length) return;
    // One point a day at its local midnight, over the last 4 weeks; the band is the usual range for that kind
    // of day.
    const midnight = (ms) => { const d = new Date(ms); d.setHours(0, 0, 0, 0); return d.getTime() / 1000; };
    const xs = days.map((d) => midnight(d.atMs));
    const now = Date.now() / 1000;
    const band = (key) => days.map((d) => (rangeOf(d) ? rangeOf(d)[key] : null));
    const times = days.map((d) => d.wake_min);
    const known = [...times, ...band("low").filter((v) => v !== null), ...band("high").filter((v) => v !== null)];
    draw("wake", {
      scales: { x: { time: true, range: () => [xs[0] - 43_200, now] }, // from the first day learned, not before
        y: { range: () => [Math.min(...known) - 30, Math.max(...known) + 30] } },
      axes: [dateTicks, { stroke: GREY, size: 60, incrs: [15, 30, 60, 120, 180], values: (u, ticks) => ticks.map(clock) }],
      series: [{},
        { label: t("usual earliest"), stroke: "transparent", points: { show: false } },
        { label: t("usual latest"), stroke: "transparent", points: { show: false } },
        { label: t("got up"), stroke: BLUE, width: 2, points: { show: true, size: 8, fill: BLUE } }],
      bands: [{ series: [2, 1], fill: BAND }],
    }, [xs, band("low"), band("high"), times]);
  }

  // --- room temperature over the last 7 days -----------------------------------------------------------------

  function summary(room, points) {
    const values = points.map((p) => p.value);
    const last = points[points.length - 1];
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    return t("{room}: {last} °C at {time}; over the last 7 days between {lowest} °C and {highest} °C, "
      + "on average {mean} °C.", { room, last: last.value.toFixed(1), time: at(last.ms),
      lowest: Math.min(...values).toFixed(1), highest: Math.max(...values).toFixed(1), mean: mean.toFixed(1) });
  }

  function dailyRows(room, points) {
    const byDay = new Map();
    points.forEach((p) => {
      const key = day(p.ms);
      const seen = byDay.get(key) || { low: p.value, high: p.value };
      byDay.set(key, { low: Math.min(seen.low, p.value), high: Math.max(seen.high, p.value) });
    });
    return [...byDay].map(([key, r]) => [t("{day}, {room}", { day: key, room }),
      `${r.low.toFixed(1)} °C`, `${r.high.toFixed(1)} °C`]);
  }

  // A sensor's temperatures since ``start``, oldest first, through every page of the readings API: a sensor that
  // reports each minute has more than one page in a week, and the newest must not be the part left out.
  async function week(device, start) {
    const points = [];
    let cursor = null;
    for (let page = 0; page < 10; page += 1) {
      const body = await api(`/api/v1/readings?device=${encodeURIComponent(device)}&metric=temperature_c`
        + `&start=${encodeURIComponent(start)}&limit=10000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      body.points.forEach((p) => points.push({ ms: new Date(p.ts).getTime(), value: p.value }));
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    return points;
  }

  async function temperature(home) {
    const target = document.getElementById("temperature-chart");
    if (!target) return;
    try {
      const sensors = (await api("/api/v1/devices?domain=home")).devices
        .filter((d) => d.subject === home && d.kind === "climate");
      const start = new Date(Date.now() - 7 * DAY_MS).toISOString();
      const rooms = await Promise.all(sensors.map(async (d) => ({
        room: t((d.room || "room").replace(/_/g, " ")).replace(/^./, (c) => c.toUpperCase()),
        points: await week(d.id, start),
      })));
      if (document.getElementById("home").value !== home) return; // another home was chosen meanwhile
      const measured = rooms.filter((r) => r.points.length);
      if (!measured.length) {
        replace("temperature-chart", el("p", { class: "empty" }, t("No room temperature measured in the last 7 days.")));
        return;
      }
      replace("temperature-chart", figure("temperature", measured.map((r) => summary(r.room, r.points)).join(" "),
        table([t("Day"), t("Lowest"), t("Highest")], measured.flatMap((r) => dailyRows(r.room, r.points)))));
      // uPlot wants one x array: every room's times, each room's value where it has one.
      const xs = [...new Set(measured.flatMap((r) => r.points.map((p) => p.ms)))].sort((a, b) => a - b);
      const series = measured.map((r) => {
        const values = new Map(r.points.map((p) => [p.ms, p.value]));
        return xs.map((x) => (values.has(x) ? values.get(x) : null));
      });
      const colours = [BLUE, "#d4351c", "#00703c", "#4c2c92"];
      draw("temperature", {
        axes: [dateTicks, { stroke: GREY, size: 55, values: (u, ticks) => ticks.map((v) => `${v} °C`) }],
        series: [{}, ...measured.map((r, i) => ({ label: r.room, stroke: colours[i % colours.length], width: 2, spanGaps: true }))],
      }, [xs.map((x) => x / 1000), ...series]);
    } catch (error) {
      if (document.getElementById("home").value === home) {
        replace("temperature-chart", el("p", { class: "empty" }, error.message));
      }
    }
  }

  return { routine, temperature };
})();
