// The proxy's farm page: /api/v1/stats, /api/v1/history, /api/v1/miners, /api/v1/upstreams,
// /api/v1/failovers, /api/v1/alerts. Every value is written as text (StrataApi.el): worker
// names and user agents come from the miners and may hold markup. The raw number behind a
// formatted one is in its element's data-value (or a cell's data-sort).
"use strict";

(() => {
  const { el, fmt, get } = StrataApi;
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

  function num(value, text, attrs) {
    return el("td", Object.assign({ class: "num", "data-sort": value, "data-value": value }, attrs || {}), text);
  }

  function empty(cols, text) {
    return [el("tr", {}, el("td", { colspan: cols, class: "muted" }, text))];
  }

  function fill(id, rows, cols, none) {
    const table = document.getElementById(id);
    table.tBodies[0].replaceChildren(...(rows.length ? rows : empty(cols, none)));
    table.dataset.count = String(rows.length);
    StrataTable.resort(table);
  }

  function difficulty(d) {
    if (d >= 1000) return fmt.number(Math.round(d));
    return d >= 1 ? Number(d.toFixed(2)).toString() : Number(d.toPrecision(3)).toString();
  }

  function ms(v) {
    return Number(v.toPrecision(2)).toString();
  }

  function rejectedCount(m) {
    return Object.values(m.rejected || {}).reduce((a, b) => a + b, 0);
  }

  function renderStats(s, alerts) {
    setValue("hashrate", s.hashrate, fmt.hashrate(s.hashrate));
    setValue("shares-accepted", s.shares_accepted, fmt.number(s.shares_accepted));
    setValue("shares-rejected", s.shares_rejected, fmt.number(s.shares_rejected));
    setValue("shares-stale", s.shares_stale, fmt.number(s.shares_stale));
    setValue("alert-count", alerts.active.length, fmt.number(alerts.active.length));
  }

  function renderMiners(miners) {
    setValue("miner-count", miners.length, fmt.number(miners.length));
    const rows = miners.map((m) => {
      const rejected = rejectedCount(m);
      return el("tr", { "data-worker": m.worker, "data-channel": m.channel, "data-id": m.id },
        el("td", { "data-sort": m.worker }, el("a", { href: "/miner/" + encodeURIComponent(m.worker), class: "name" }, m.worker)),
        cell(m.ip, { class: "mono ip" }),
        cell(m.user_agent || "–", { class: "agent", title: m.protocol }),
        num(m.difficulty, difficulty(m.difficulty), { class: "num difficulty" }),
        num(m.hashrate_5m, fmt.hashrate(m.hashrate_5m), { class: "num hashrate-5m" }),
        num(m.hashrate_1h, fmt.hashrate(m.hashrate_1h), { class: "num hashrate-1h" }),
        num(m.hashrate_24h, fmt.hashrate(m.hashrate_24h), { class: "num hashrate-24h" }),
        num(m.accepted, fmt.number(m.accepted), { class: "num accepted" }),
        num(rejected, fmt.number(rejected), { class: "num rejected" }),
        num(m.stale, fmt.number(m.stale), { class: "num stale" }),
        cell(fmt.ago(m.last_share_ms), { class: "time last-share", "data-sort": m.last_share_ms, title: fmt.time(m.last_share_ms) }),
        cell(fmt.ago(m.connected_since_ms), { class: "time connected", "data-sort": m.connected_since_ms, title: fmt.time(m.connected_since_ms) }));
    });
    fill("miner-table", rows, 12, "no miner connected");
  }

  function renderUpstreams(ups) {
    const active = ups.findIndex((u) => u.state === "active");
    setValue("active-pool", active, active >= 0 ? "#" + (active + 1) : "none");
    const rows = ups.map((u, i) => {
      const ack = u.ack_latency_ms;
      const ackText = ack.samples ? `${ms(ack.p50)} / ${ms(ack.p99)} ms` : "–";
      return el("tr", { "data-url": u.url, "data-state": u.state },
        cell(String(i + 1), { "data-sort": i }),
        cell(u.url, { class: "hash" }),
        cell(u.state, { class: "state state-" + u.state }),
        num(u.announced_hashrate, fmt.hashrate(u.announced_hashrate), { class: "num announced" }),
        num(ack.p50, ackText, { class: "num ack", "data-samples": ack.samples }),
        num(u.shares_forwarded, fmt.number(u.shares_forwarded)),
        num(u.shares_accepted, fmt.number(u.shares_accepted)),
        cell(u.last_error || "", { class: "wrap muted" }));
    });
    fill("upstream-table", rows, 8, "no pool configured");
  }

  function renderFailovers(list) {
    const rows = list.map((f) => el("tr", { "data-t": f.t },
      cell(fmt.time(f.t * 1000), { class: "time", "data-sort": f.t }),
      cell(f.from === null ? "none" : f.from, { class: "hash from" }),
      cell(f.to, { class: "hash to" }),
      cell(f.reason, { class: "wrap reason" })));
    fill("failover-table", rows, 4, "no failover since the proxy started");
  }

  function renderAlerts(a) {
    const active = a.active.map((x) => el("tr", { "data-kind": x.kind },
      cell(x.kind),
      cell(x.subject === null ? "–" : x.subject, { class: "wrap subject" }),
      cell(x.message, { class: "wrap" }),
      cell(fmt.time(x.since * 1000), { class: "time", "data-sort": x.since })));
    fill("alert-table", active, 4, "no active alert");
    const recent = a.recent.map((n) => {
      const t = n.status === "resolved" && n.resolved_at ? n.resolved_at : n.since;
      return el("tr", { "data-kind": n.kind, "data-status": n.status },
        cell(fmt.time(t * 1000), { class: "time", "data-sort": t }),
        cell(n.status, { class: n.status === "fired" ? "status-rejected" : "status-accepted" }),
        cell(n.kind),
        cell(n.subject === null ? "–" : n.subject, { class: "wrap subject" }),
        cell(n.message, { class: "wrap" }));
    });
    fill("notice-table", recent, 5, "none");
  }

  async function renderHistory() {
    const box = document.getElementById("chart");
    const note = document.getElementById("chart-note");
    let h;
    try {
      h = await get("/api/v1/history?minutes=" + minutes);
    } catch (e) {
      if (e.status !== 503) throw e;
      StrataChart.line(box, [], { empty: "the history is off ([history] enabled = false)" });
      box.dataset.points = "0";
      note.textContent = "";
      return;
    }
    const points = h.points.map((p) => ({ t: p.t * 1000, value: p.hashrate }));
    StrataChart.line(box, [{ name: "farm", points }], {
      format: fmt.hashrate,
      empty: "no history yet: a point is recorded every [history] resolution_secs",
    });
    box.dataset.points = String(points.length);
    box.dataset.minutes = String(minutes);
    const accepted = h.points.reduce((a, p) => a + p.accepted, 0);
    const rejected = h.points.reduce((a, p) => a + p.rejected, 0);
    note.textContent =
      `${fmt.number(h.points.length)} points of ${h.resolution_secs} s; ` +
      `${fmt.number(accepted)} shares accepted, ${fmt.number(rejected)} rejected in this range`;
  }

  async function render() {
    const [stats, miners, ups, failovers, alerts] = await Promise.all([
      get("/api/v1/stats"),
      get("/api/v1/miners"),
      get("/api/v1/upstreams"),
      get("/api/v1/failovers"),
      get("/api/v1/alerts"),
      renderHistory(),
    ]);
    renderStats(stats, alerts);
    renderMiners(miners);
    renderUpstreams(ups);
    renderFailovers(failovers);
    renderAlerts(alerts);
  }

  document.addEventListener("DOMContentLoaded", () => {
    ["miner-table", "upstream-table", "failover-table", "alert-table", "notice-table"]
      .forEach((id) => StrataTable.sortable(document.getElementById(id)));
    minutes = RANGES[StrataApi.rangeSwitch(async (range) => {
      minutes = RANGES[range];
      try { await renderHistory(); } catch (_) { /* the next refresh reports it */ }
    }, { url: true })];
    StrataApi.start(render);
  });
})();
