// A miner's page, /miner/{address}: /api/v1/miners/{address}. Values are written as text;
// the raw numbers are in data-value / data-sort.
"use strict";

(() => {
  const { el, fmt, get } = StrataApi;
  const address = decodeURIComponent(window.location.pathname.split("/")[2] || "");

  function setValue(id, value, text) {
    const n = document.getElementById(id);
    n.dataset.value = String(value);
    n.textContent = text;
  }

  function cell(text, attrs) {
    return el("td", attrs || {}, text);
  }

  function render(m) {
    document.getElementById("address").textContent = m.address;
    document.getElementById("self-link").setAttribute("href", "/miner/" + encodeURIComponent(m.address));
    document.title = "strata pool: " + m.address;
    setValue("hashrate", m.hashrate, fmt.hashrate(m.hashrate));
    setValue("worker-count", m.workers.length, fmt.number(m.workers.length));
    document.body.dataset.mode = m.mode;
    const nb = m.next_block;
    if (m.mode === "pplns") {
      const w = m.window;
      document.getElementById("mode-note").textContent =
        `PPLNS: each block pays the last ${fmt.number(w.window_shares)} shares by difficulty.`;
      setValue("window-shares", w.miner_shares, `${fmt.number(w.miner_shares)} of ${fmt.number(w.shares)}`);
      document.getElementById("window-shares").dataset.difficulty = String(w.miner_difficulty);
      setValue("window-fraction", w.miner_fraction, fmt.percent(w.miner_fraction));
      document.getElementById("next-label").textContent = "Next block would pay";
      document.getElementById("next-note").textContent =
        `Block ${fmt.number(nb.height)} (reward ${fmt.btc(nb.reward_sats)}) found now would pay this address ` +
        `${fmt.sats(nb.sats)} (${fmt.percent(nb.fraction)}), by the split its coinbase is built with; ` +
        `window difficulty ${w.miner_difficulty.toPrecision(6)} of ${w.total_difficulty.toPrecision(6)}.`;
    } else {
      document.getElementById("mode-note").textContent =
        "Solo mode: a block pays its finder's address (less the pool fee); there is no PPLNS window.";
      document.getElementById("window-card").hidden = true;
      document.getElementById("window-fraction-card").hidden = true;
      document.getElementById("next-label").textContent = "A block it finds pays";
      document.getElementById("next-note").textContent =
        `Block ${fmt.number(nb.height)} (reward ${fmt.btc(nb.reward_sats)}) found by one of this address's workers ` +
        `would pay it ${fmt.sats(nb.sats)}.`;
    }
    setValue("next-sats", nb.sats, fmt.btc(nb.sats));

    const workers = m.workers.map((w) => el("tr", { "data-worker": w.worker },
      cell(w.worker),
      cell(fmt.hashrate(w.hashrate), { class: "num hashrate", "data-sort": w.hashrate, "data-value": w.hashrate }),
      cell(fmt.number(w.shares_accepted), { class: "num", "data-sort": w.shares_accepted, "data-value": w.shares_accepted }),
      cell(fmt.number(w.shares_rejected), { class: "num", "data-sort": w.shares_rejected }),
      cell(fmt.ago(w.last_share_ms), { class: "time", "data-sort": w.last_share_ms })));
    if (workers.length === 0) workers.push(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no worker seen since the pool started")));
    const wt = document.getElementById("workers");
    wt.tBodies[0].replaceChildren(...workers);
    StrataTable.resort(wt);

    const blocks = m.blocks.map((b) => el("tr", { "data-hash": b.hash },
      cell(fmt.number(b.height), { "data-sort": b.height, "data-value": b.height }),
      cell(fmt.time(b.time_ms), { class: "time", "data-sort": b.time_ms }),
      cell(b.status.status, { class: "status-" + b.status.status }),
      cell(b.hash, { class: "hash" }),
      cell(fmt.btc(b.sats), { class: "num amount", "data-sort": b.sats, "data-value": b.sats })));
    if (blocks.length === 0) blocks.push(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no block has paid this address yet")));
    const bt = document.getElementById("blocks");
    bt.tBodies[0].replaceChildren(...blocks);
    bt.dataset.count = String(m.blocks.length);
    StrataTable.resort(bt);
  }

  document.addEventListener("DOMContentLoaded", () => {
    StrataTable.sortable(document.getElementById("workers"));
    StrataTable.sortable(document.getElementById("blocks"));
    StrataApi.start(async () => render(await get("/api/v1/miners/" + encodeURIComponent(address))));
  });
})();
