// strata pages: the JSON API from a browser, the bearer token, and safe DOM building.
//
// The pages and these assets hold no data and need no token; the data comes from the JSON API,
// which needs `Authorization: Bearer <token>` when the server has an api_token. The token is
// given once in the URL fragment (`/#token=...`: a fragment is never sent to a server), kept
// in this origin's localStorage, and removed from the address bar. A 401 shows a token form.
//
//   StrataApi.get(path)            -> parsed JSON (throws StrataApi.Unauthorized on 401,
//                                     another status: an Error with its `status`)
//   StrataApi.start(render, opts)  -> runs `async render()` now and every opts.every ms
//                                     (default 10000); on 401 shows the token form in
//                                     #auth and hides #main until a token is saved
//   StrataApi.el(tag, attrs, ...children)   children: nodes or strings (text nodes)
//   StrataApi.fmt.{hashrate, number, sats, btc, time, ago, percent}
"use strict";

const StrataApi = (() => {
  const KEY = "strata.api_token";

  class Unauthorized extends Error {}

  function storage() {
    try { return window.localStorage; } catch (_) { return null; }
  }

  // A `#token=...` fragment moves to localStorage (and out of the address bar).
  function takeFragmentToken() {
    const m = /(?:^#|&)token=([^&]*)/.exec(window.location.hash || "");
    if (!m) return;
    const token = decodeURIComponent(m[1]);
    const s = storage();
    if (s) s.setItem(KEY, token);
    else window.__strataToken = token;
    const rest = window.location.hash.replace(/(^#|&)token=[^&]*/, "$1").replace(/^#&?$/, "");
    history.replaceState(null, "", window.location.pathname + window.location.search + rest);
  }

  function token() {
    const s = storage();
    return (s && s.getItem(KEY)) || window.__strataToken || null;
  }

  function setToken(t) {
    const s = storage();
    if (t) { if (s) s.setItem(KEY, t); else window.__strataToken = t; }
    else { if (s) s.removeItem(KEY); delete window.__strataToken; }
  }

  async function get(path) {
    const headers = { Accept: "application/json" };
    const t = token();
    if (t) headers.Authorization = "Bearer " + t;
    const res = await fetch(path, { headers, cache: "no-store" });
    if (res.status === 401) throw new Unauthorized("the API needs a token");
    if (!res.ok) {
      const e = new Error(`${path}: ${res.status} ${await res.text()}`);
      e.status = res.status;
      throw e;
    }
    return res.json();
  }

  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") n.className = v;
      else if (k.startsWith("on") && typeof v === "function") n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null) continue;
      n.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return n;
  }

  const UNITS = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "ZH/s"];
  const fmt = {
    // three significant digits in the largest unit that keeps the value at 1 or above
    // (below 1 H/s: H/s); a value that rounds up to 1000 is 1.00 of the next unit
    hashrate(h) {
      if (!Number.isFinite(h) || h <= 0) return "0 H/s";
      let i = Math.max(0, Math.min(UNITS.length - 1, Math.floor(Math.log10(h) / 3)));
      let text = (h / Math.pow(1000, i)).toPrecision(3);
      if (Number(text) >= 1000 && i < UNITS.length - 1) {
        i += 1;
        text = (h / Math.pow(1000, i)).toPrecision(3);
      }
      return text + " " + UNITS[i];
    },
    number(n) { return Number(n).toLocaleString("en-US"); },
    sats(n) { return Number(n).toLocaleString("en-US") + " sat"; },
    btc(n) { return (Number(n) / 1e8).toFixed(8) + " BTC"; },
    percent(f) { return Number.isFinite(f) ? (f * 100).toFixed(2) + " %" : "–"; },
    time(ms) { return ms ? new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "–"; },
    ago(ms) {
      if (!ms) return "never";
      const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
      if (s < 120) return s + " s ago";
      if (s < 7200) return Math.round(s / 60) + " min ago";
      return Math.round(s / 3600) + " h ago";
    },
  };

  function tokenForm(box, onSaved) {
    const input = el("input", { type: "password", name: "token", autocomplete: "off", placeholder: "API token", id: "token-input" });
    const form = el("form", { class: "token-form", id: "token-form" },
      el("p", {}, "This server's API needs its bearer token (api_token). It is kept in this browser only."),
      input, " ", el("button", { type: "submit" }, "Use token"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      setToken(input.value.trim());
      onSaved();
    });
    box.replaceChildren(form);
    box.hidden = false;
  }

  function showError(box, err) {
    box.replaceChildren(el("p", { class: "error" }, String(err && err.message ? err.message : err)));
    box.hidden = false;
  }

  function start(render, opts) {
    const every = (opts && opts.every) || 10000;
    takeFragmentToken();
    const main = document.getElementById("main");
    const auth = document.getElementById("auth");
    const status = document.getElementById("status");
    let timer = null;
    async function tick() {
      try {
        await render();
        if (auth) { auth.hidden = true; auth.replaceChildren(); }
        if (main) main.hidden = false;
        if (status) { status.hidden = true; status.replaceChildren(); }
        document.body.dataset.state = "ready";
      } catch (e) {
        if (e instanceof Unauthorized) {
          clearInterval(timer);
          timer = null;
          if (main) main.hidden = true;
          document.body.dataset.state = "unauthorized";
          if (auth) tokenForm(auth, () => { tick(); timer = setInterval(tick, every); });
          return;
        }
        document.body.dataset.state = "error";
        if (status) showError(status, e);
      }
    }
    tick();
    timer = setInterval(tick, every);
  }

  // The chart's range switch: the buttons of `#range`, each naming its range in
  // `data-range`. Presses the first one, or with `opts.url` the one the address's `?range=`
  // names (the address then follows the switch); calls `onChange(range)` after each click
  // and returns the range it starts with.
  function rangeSwitch(onChange, opts) {
    const followUrl = Boolean(opts && opts.url);
    const buttons = Array.from(document.querySelectorAll("#range button"));
    const names = buttons.map((b) => b.dataset.range);
    const asked = followUrl ? new URLSearchParams(window.location.search).get("range") : null;
    const initial = names.includes(asked) ? asked : names[0];
    const press = (range) => buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === range)));
    press(initial);
    buttons.forEach((b) => {
      b.addEventListener("click", () => {
        const range = b.dataset.range;
        press(range);
        if (followUrl) {
          const url = new URL(window.location.href);
          url.searchParams.set("range", range);
          history.replaceState(null, "", url.pathname + url.search + url.hash);
        }
        onChange(range);
      });
    });
    return initial;
  }

  return { get, el, fmt, start, token, setToken, rangeSwitch, Unauthorized };
})();
