// A miner's page, /miner/{worker name}: its rows of /api/v1/miners (one per connection
// under that name) and /api/v1/miners/{name}/history. The name comes from the miner and may
// hold markup: it is only ever written as text. Raw numbers are in data-value / data-sort.
"use strict";

(() => {
  const { el, fmt, get } = StrataApi;
  const name = decodeURIComponent(window.location.pathname.slice("/miner/".length));
  // the charts' range: 1 h or 24 h, from `?range=24h` (the address follows the switch)
  const RANGES = { "1h": 60, "24h": 1440 };
  let minutes = RANGES["1h"];

  function setValue(id, value, text) {
    const n = document.getElementById(id);
    n.dataset.value = String(value);
    n.textContent = text;
  }

  function cell(text, attrs) {
    return el("td", attrs || {}, text);
  }

  function num(value, text) {
    return el("td", { class: "num", "data-sort": value, "data-value": value }, text);
  }

  function difficulty(d) {
    if (d >= 1000) return fmt.number(Math.round(d));
    return d >= 1 ? Number(d.toFixed(2)).toString() : Number(d.toPrecision(3)).toString();
  }

  function sum(rows, f) {
    return rows.reduce((a, r) => a + f(r), 0);
  }

  function rejectedCount(m) {
    return Object.values(m.rejected || {}).reduce((a, b) => a + b, 0);
  }

  function renderFigures(rows) {
    document.body.dataset.connections = String(rows.length);
    document.getElementById("presence").textContent = rows.length === 0
      ? "Not connected now: its history below is what the proxy kept."
      : `Connected: ${rows.length} connection${rows.length === 1 ? "" : "s"} under this name.`;
    // the windows are per worker name (every connection's rows carry the same)
    const first = rows[0];
    for (const w of ["5m", "1h", "24h"]) {
      const v = first ? first["hashrate_" + w] : 0;
      setValue("hashrate-" + w, v, fmt.hashrate(v));
    }
    if (first) setValue("difficulty", first.difficulty, difficulty(first.difficulty));
    else setValue("difficulty", "", "–");
    const accepted = sum(rows, (m) => m.accepted);
    const rejected = sum(rows, rejectedCount);
    const stale = sum(rows, (m) => m.stale);
    const last = Math.max(0, ...rows.map((m) => m.last_share_ms));
    setValue("accepted", accepted, fmt.number(accepted));
    setValue("rejected", rejected, fmt.number(rejected));
    setValue("stale", stale, fmt.number(stale));
    setValue("last-share", last, fmt.ago(last));
    document.getElementById("last-share").title = fmt.time(last);

    const conns = rows.map((m) => el("tr", { "data-channel": m.channel, "data-id": m.id },
      cell(m.ip, { class: "mono" }),
      cell(m.user_agent || "–", { class: "agent" }),
      cell(m.protocol),
      num(m.difficulty, difficulty(m.difficulty)),
      num(m.accepted, fmt.number(m.accepted)),
      num(rejectedCount(m), fmt.number(rejectedCount(m))),
      num(m.stale, fmt.number(m.stale)),
      cell(fmt.ago(m.last_share_ms), { class: "time", "data-sort": m.last_share_ms, title: fmt.time(m.last_share_ms) }),
      cell(fmt.time(m.connected_since_ms), { class: "time", "data-sort": m.connected_since_ms }),
      num(m.channel, String(m.channel))));
    if (conns.length === 0) conns.push(el("tr", {}, el("td", { colspan: 10, class: "muted" }, "not connected")));
    const ct = document.getElementById("connections");
    ct.tBodies[0].replaceChildren(...conns);
    StrataTable.resort(ct);

    const reasons = {};
    for (const m of rows) for (const [k, v] of Object.entries(m.rejected || {})) reasons[k] = (reasons[k] || 0) + v;
    const rr = Object.entries(reasons).map(([k, v]) => el("tr", { "data-reason": k }, cell(k), num(v, fmt.number(v))));
    if (rr.length === 0) rr.push(el("tr", {}, el("td", { colspan: 2, class: "muted" }, "none")));
    document.querySelector("#rejects tbody").replaceChildren(...rr);
  }

  // the history, or null when the proxy knows no such name (404)
  async function renderHistory() {
    const box = document.getElementById("chart");
    const note = document.getElementById("chart-note");
    let h;
    try {
      h = await get("/api/v1/miners/" + encodeURIComponent(name) + "/history?minutes=" + minutes);
    } catch (e) {
      if (e.status !== 503 && e.status !== 404) throw e;
      const why = e.status === 503 ? "the history is off ([history] enabled = false)" : "no history for this name";
      StrataChart.line(box, [], { empty: why });
      box.dataset.points = "0";
      note.textContent = "";
      return e.status === 404 ? null : true;
    }
    const points = h.points.map((p) => ({ t: p.t * 1000, value: p.hashrate }));
    StrataChart.line(box, [{ name: h.name, points }], {
      format: fmt.hashrate,
      empty: "no history yet: a point is recorded every [history] resolution_secs",
    });
    box.dataset.points = String(points.length);
    box.dataset.minutes = String(minutes);
    const accepted = h.points.reduce((a, p) => a + p.accepted, 0);
    note.textContent =
      `${fmt.number(h.points.length)} points of ${h.resolution_secs} s; ` +
      `${fmt.number(accepted)} shares accepted in this range`;
    return true;
  }

  async function render() {
    const [miners, known] = await Promise.all([get("/api/v1/miners"), renderHistory()]);
    const rows = miners.filter((m) => m.worker === name);
    document.body.dataset.known = String(known !== null || rows.length > 0);
    renderFigures(rows);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("name").textContent = name;
    document.getElementById("self-link").setAttribute("href", "/miner/" + encodeURIComponent(name));
    document.title = "strata proxy: " + name;
    StrataTable.sortable(document.getElementById("connections"));
    StrataTable.sortable(document.getElementById("rejects"));
    minutes = RANGES[StrataApi.rangeSwitch(async (range) => {
      minutes = RANGES[range];
      try { await renderHistory(); } catch (_) { /* the next refresh reports it */ }
    }, { url: true })];
    StrataApi.start(render);
  });
})();
