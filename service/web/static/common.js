/* vaelab dashboard: helpers shared by every page (no framework; the public API only). */
"use strict";
(() => {
  const V = (window.vaelab = {});

  /** GET/POST a JSON endpoint of the public API; a non-2xx answer throws with its detail. */
  V.api = async (path, opts = {}) => {
    const r = await fetch(path, opts);
    if (r.status === 401) {  // the sign-in cookie is missing, revoked or expired
      location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    }
    if (!r.ok) {
      let msg = `${r.status} ${r.statusText}`;
      try {
        const body = await r.json();
        msg = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      } catch (e) { /* not JSON */ }
      const err = new Error(msg);
      err.status = r.status;
      throw err;
    }
    return r.json();
  };

  /** An element: V.h("a", {href: "/", class: "x", onclick: fn}, "text", child). */
  V.h = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of kids.flat()) if (c != null) e.append(c.nodeType ? c : String(c));
    return e;
  };

  V.num = (v, digits = 4) => {
    if (v == null || typeof v !== "number" || !isFinite(v)) return "–";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
    return String(+v.toPrecision(digits));
  };
  V.when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
  V.short = (id) => String(id).slice(0, 8);
  V.status = (s) => V.h("span", { class: `status ${s}`, text: s });
  V.value = (v) => (v == null ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));

  /** The value at a dotted path of a nested object ("kl.schedule.beta"). */
  V.at = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);

  /** Every dotted path to a scalar in a nested object (for "group by" suggestions). */
  V.paths = (obj, prefix = "") => Object.entries(obj || {}).flatMap(([k, v]) =>
    v && typeof v === "object" && !Array.isArray(v) ? V.paths(v, `${prefix}${k}.`) : [`${prefix}${k}`]);

  V.showError = (msg) => {
    const p = document.getElementById("error");
    p.textContent = String(msg);
    p.hidden = false;
  };
  V.clearError = () => { document.getElementById("error").hidden = true; };

  /** Run an async page function; failures are shown on the page, not thrown. */
  V.run = (fn) => Promise.resolve().then(fn).catch((e) => V.showError(e.message || e));

  /** Call fn now and every ms while the tab is visible (a page's live refresh). */
  V.every = (ms, fn) => {
    let busy = false;
    const tick = async () => {
      if (busy || document.hidden) return;
      busy = true;
      try { await fn(); V.clearError(); } catch (e) { V.showError(e.message || e); }
      busy = false;
    };
    tick();
    return setInterval(tick, ms);
  };

  /** TensorBoard's exponential moving average, debiased (zero-initialised, divided by
   * 1 - w^n). Nulls and non-finite values pass through unsmoothed. */
  V.ema = (values, w) => {
    if (!w) return values.slice();
    let last = 0, n = 0;
    return values.map((y) => {
      if (y == null || !isFinite(y)) return y;
      last = last * w + (1 - w) * y;
      n += 1;
      return last / (1 - Math.pow(w, n));
    });
  };

  /** Mean and standard deviation (population) of the non-null values, or nulls. */
  V.meanStd = (xs) => {
    const v = xs.filter((x) => x != null && isFinite(x));
    if (!v.length) return [null, null];
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    const s = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
    return [m, s];
  };

  V.COLORS = ["#0b57d0", "#d93025", "#188038", "#e37400", "#9334e6", "#007b83", "#c5221f",
    "#5f6368", "#b06000", "#1a73e8", "#a50e0e", "#0d652d", "#8430ce", "#e8710a", "#3c4043"];
  V.color = (i, alpha) => V.COLORS[i % V.COLORS.length] + (alpha || "");

  // the projector switch: larger type everywhere, remembered across pages
  const big = document.getElementById("projector");
  const apply = () => {
    document.body.classList.toggle("projector", big.checked);
    window.dispatchEvent(new Event("resize"));
  };
  big.checked = localStorage.getItem("vaelab.projector") === "1";
  apply();
  big.addEventListener("change", () => {
    localStorage.setItem("vaelab.projector", big.checked ? "1" : "0");
    apply();
  });
})();
