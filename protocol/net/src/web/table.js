// strata sortable tables, no libraries.
//
//   StrataTable.sortable(table)
//
// Clicking a header cell of `table` (a <table> with a <thead> and a <tbody>) sorts the body's
// rows by that column, again to reverse. A cell's `data-sort` attribute, when present, is its
// sort key (e.g. a raw number behind a formatted one); otherwise its text. Keys that are both
// numbers compare as numbers, others as text with digit runs compared by value ("rig2" before
// "rig10"); empty keys go last. The sorted header gets `aria-sort`.
"use strict";

const StrataTable = (() => {
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  function key(row, col) {
    const cell = row.cells[col];
    if (!cell) return "";
    return cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  }

  function compare(a, b) {
    if (a === "" || b === "") return (a === "") - (b === "");
    const na = Number(a);
    const nb = Number(b);
    if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
    return collator.compare(a, b);
  }

  function sortBy(table, col, descending) {
    const body = table.tBodies[0];
    if (!body) return;
    const rows = Array.from(body.rows);
    rows.sort((r1, r2) => {
      const c = compare(key(r1, col), key(r2, col));
      return descending ? -c : c;
    });
    body.append(...rows);
    Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
      if (i === col) th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
    table.dataset.sortCol = String(col);
    table.dataset.sortDesc = descending ? "1" : "0";
  }

  // Re-applies the table's current order (after its body was refilled).
  function resort(table) {
    if (table.dataset.sortCol !== undefined) {
      sortBy(table, Number(table.dataset.sortCol), table.dataset.sortDesc === "1");
    }
  }

  function sortable(table) {
    if (!table.tHead || table.dataset.sortable) return table;
    table.dataset.sortable = "1";
    Array.from(table.tHead.rows[0].cells).forEach((th, col) => {
      th.classList.add("sortable");
      th.tabIndex = 0;
      const go = () => {
        const same = table.dataset.sortCol === String(col);
        sortBy(table, col, same ? table.dataset.sortDesc !== "1" : false);
      };
      th.addEventListener("click", go);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
    });
    return table;
  }

  return { sortable, sortBy, resort, compare };
})();
