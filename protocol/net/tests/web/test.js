// Drives the shared assets the way a page does; the Rust test reads the outcome from the DOM.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const t = document.getElementById("t");
  StrataTable.sortable(t);
  const order = () => Array.from(t.tBodies[0].rows).map((r) => r.cells[0].textContent).join(",");
  const th = t.tHead.rows[0].cells;
  th[1].click();
  const byRate = order();
  th[1].click();
  const byRateDescending = order();
  th[0].click();
  const byName = order();
  th[2].click();
  const byNote = order();
  document.body.dataset.sorts = [byRate, byRateDescending, byName, byNote].join("|");
  document.body.dataset.ariaSort = th[2].getAttribute("aria-sort") || "";

  StrataChart.line(document.getElementById("chart"), [
    { name: "a", points: [{ t: 0, value: 1 }, { t: 60000, value: 3 }, { t: 120000, value: 2 }] },
    { name: "<b>b</b>", points: [{ t: 0, value: 2 }, { t: NaN, value: 1 }] },
  ], { format: (v) => v + " u" });

  // the formatting of the figures: the Rust tests compute the same texts (strata-testkit's fmt)
  const f = StrataApi.fmt;
  document.body.dataset.hashrates = [0, 0.5, 1, 999.4, 999.5, 12250, 50000, 999700, 123456789, 1e27]
    .map(f.hashrate).join("|");
  document.body.dataset.numbers = [0, 12, 1234567].map(f.number).join("|");
  document.body.dataset.times = [0, 1700000000123, 951782400000].map(f.time).join("|");

  StrataApi.start(async () => {
    const data = await StrataApi.get("/data");
    document.getElementById("out").replaceChildren(
      StrataApi.el("span", { id: "echo", "data-value": data.n }, data.text));
  });
});
