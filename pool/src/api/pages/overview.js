// The pool's overview page: /api/v1/stats, /api/v1/history, /api/v1/blocks, /api/v1/workers.
// Every value is written as text (StrataApi.el); the raw number behind a formatted one is in
// its element's data-value (or a cell's data-sort).
"use strict";

(() => {
  const { el, fmt, get } = StrataApi;
  const BLOCKS_SHOWN = 20;
  // the chart's range: 1 h, 24 h or 7 d, from `?range=` (the address follows the switch)
  let range = "1h";

  function setValue(id, value, text) {
    const n = document.getElementById(id);
    n.dataset.value = String(value);
    n.textContent = text;
  }

  function cell(text, attrs) {
    return el("td", attrs || {}, text);
  }

  // a miner's page for a payout address (the owner of a split's output)
  function ownerLink(owner) {
    if (owner === "pool") return el("span", { class: "muted" }, "pool");
    return el("a", { href: "/miner/" + encodeURIComponent(owner) }, owner);
  }

  function renderStats(s) {
    setValue("height", s.height, fmt.number(s.height));
    setValue("hashrate", s.hashrate, fmt.hashrate(s.hashrate));
    setValue("blocks-found", s.blocks_found, fmt.number(s.blocks_found));
    setValue("shares-accepted", s.shares_accepted, fmt.number(s.shares_accepted));
    setValue("shares-rejected", s.shares_rejected, fmt.number(s.shares_rejected));
    setValue("connections", s.connections, fmt.number(s.connections));
    const rows = Object.entries(s.rejected_by_reason || {}).map(([reason, n]) =>
      el("tr", { "data-reason": reason }, cell(reason), cell(fmt.number(n), { class: "num", "data-sort": n, "data-value": n })));
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 2, class: "muted" }, "none")));
    document.querySelector("#rejects tbody").replaceChildren(...rows);
  }

  function renderBlocks(blocks, found) {
    document.getElementById("blocks-note").textContent =
      `The latest ${blocks.length} (at most ${BLOCKS_SHOWN}); ${fmt.number(found)} accepted in all.`;
    const rows = blocks.map((b) => {
      const status = b.status.status;
      const split = el("ul", { class: "split" }, b.outputs.map((o) =>
        el("li", { "data-owner": o.owner, "data-sats": o.sats }, ownerLink(o.owner), ": ", fmt.sats(o.sats))));
      return el("tr", { "data-hash": b.hash },
        cell(fmt.number(b.height), { "data-sort": b.height, "data-value": b.height }),
        cell(fmt.time(b.time_ms), { class: "time", "data-sort": b.time_ms }),
        cell(status + (b.status.reason ? ": " + b.status.reason : ""), { class: "status-" + status }),
        cell(b.hash, { class: "hash" }),
        cell(fmt.btc(b.reward_sats), { class: "num", "data-sort": b.reward_sats, "data-value": b.reward_sats }),
        el("td", {}, split));
    });
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no block yet")));
    const table = document.getElementById("blocks");
    table.tBodies[0].replaceChildren(...rows);
    table.dataset.count = String(blocks.length);
    table.dataset.limit = String(BLOCKS_SHOWN);
    StrataTable.resort(table);
  }

  function renderWorkers(workers) {
    const rows = workers.map((w) => {
      const rejected = Object.values(w.rejected || {}).reduce((a, b) => a + b, 0);
      const owner = w.worker.split("/")[0].split(".")[0];
      return el("tr", { "data-worker": w.worker },
        el("td", {}, el("a", { href: "/miner/" + encodeURIComponent(owner) }, w.worker)),
        cell(fmt.hashrate(w.hashrate), { class: "num hashrate", "data-sort": w.hashrate, "data-value": w.hashrate }),
        cell(fmt.number(w.shares_accepted), { class: "num", "data-sort": w.shares_accepted }),
        cell(fmt.number(rejected), { class: "num", "data-sort": rejected }),
        cell(fmt.ago(w.last_share_ms), { class: "time", "data-sort": w.last_share_ms }));
    });
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no worker yet")));
    const table = document.getElementById("workers");
    table.tBodies[0].replaceChildren(...rows);
    StrataTable.resort(table);
  }

  function renderHistory(h) {
    const box = document.getElementById("chart");
    const points = h.points.map((p) => ({ t: p.t, value: p.hashrate }));
    StrataChart.line(box, [{ name: "hashrate", points }], {
      format: fmt.hashrate,
      empty: "no history yet: a sample is recorded every [history] sample_secs",
    });
    box.dataset.points = String(points.length);
    box.dataset.range = h.range;
    const accepted = h.points.reduce((a, p) => a + p.accepted, 0);
    const rejected = h.points.reduce((a, p) => a + p.rejected, 0);
    document.getElementById("chart-note").textContent =
      `${h.points.length} points of ${Math.round(h.bucket_ms / 1000)} s; ` +
      `${fmt.number(accepted)} shares accepted, ${fmt.number(rejected)} rejected in this range`;
  }

  async function render() {
    const [stats, history, blocks, workers] = await Promise.all([
      get("/api/v1/stats"),
      get("/api/v1/history?range=" + range),
      get("/api/v1/blocks?limit=" + BLOCKS_SHOWN),
      get("/api/v1/workers"),
    ]);
    renderStats(stats);
    renderHistory(history);
    renderBlocks(blocks, stats.blocks_found);
    renderWorkers(workers);
  }

  document.addEventListener("DOMContentLoaded", () => {
    ["blocks", "workers", "rejects"].forEach((id) => StrataTable.sortable(document.getElementById(id)));
    range = StrataApi.rangeSwitch(async (r) => {
      range = r;
      try { renderHistory(await get("/api/v1/history?range=" + range)); } catch (_) { /* the next refresh reports it */ }
    }, { url: true });
    document.getElementById("miner-lookup").addEventListener("submit", (e) => {
      e.preventDefault();
      const address = e.target.elements.address.value.trim();
      if (address) window.location.href = "/miner/" + encodeURIComponent(address);
    });
    StrataApi.start(render);
  });
})();
