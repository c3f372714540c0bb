/* The sweep page: the rate-distortion plane drawn in the browser (every finished job, the
 * empirical frontier as a staircase, iso-ELBO lines R + D = const, error bars across seeds;
 * hover for the parameters, click to open the job), a parameter-against-metric view and the
 * jobs. Reads GET /api/v1/sweeps/{id} and its /rate-distortion. */
"use strict";
(() => {
  const V = window.vaelab;
  const $ = (id) => document.getElementById(id);
  const SWEEP = $("summary").dataset.sweep;
  const NS = "http://www.w3.org/2000/svg";
  const W = 800, H = 520, M = { l: 70, r: 20, t: 20, b: 50 };
  const tip = V.h("div", { class: "tip", hidden: true });
  document.body.append(tip);

  const s = (tag, attrs = {}, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) if (v != null) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  };
  const describe = (p) => [
    ...Object.entries(p.params || {}).map(([k, v]) => `${k} = ${V.value(v)}`),
    `R ${V.num(p.rate)}  D ${V.num(p.distortion)}  ELBO ${V.num(p.elbo)}`,
    p.n ? `mean of ${p.n} seeds` : null, p.on_frontier ? "on the frontier" : null,
  ].filter(Boolean).join("\n");

  const ticks = (lo, hi, n = 6) => {
    const step0 = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(step0 || 1));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((x) => x >= step0) || step0;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toPrecision(6));
    return out;
  };

  /** A scatter in SVG: {points: [{x, y, ex, ey, cls, p}], xLabel, yLabel, categories,
   * extra(svg, X, Y, domain)} where p is the row shown on hover and opened on click. */
  function scatter(parent, spec) {
    const pts = spec.points.filter((q) => q.x != null && q.y != null && isFinite(q.x) && isFinite(q.y));
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": spec.label });
    if (!pts.length) { parent.replaceChildren(V.h("p", { class: "note", text: "No finished job yet." })); return; }
    const span = (vals, pad) => {
      let lo = Math.min(...vals), hi = Math.max(...vals);
      if (lo === hi) { lo -= 1; hi += 1; }
      const d = (hi - lo) * pad;
      return [lo - d, hi + d];
    };
    const [x0, x1] = span(pts.flatMap((q) => [q.x - (q.ex || 0), q.x + (q.ex || 0)]), 0.08);
    const [y0, y1] = span(pts.flatMap((q) => [q.y - (q.ey || 0), q.y + (q.ey || 0)]), 0.08);
    const X = (v) => M.l + ((v - x0) / (x1 - x0)) * (W - M.l - M.r);
    const Y = (v) => H - M.b - ((v - y0) / (y1 - y0)) * (H - M.t - M.b);
    const clip = `clip-${Math.random().toString(36).slice(2)}`;
    const cp = s("clipPath", { id: clip });
    cp.append(s("rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b }));
    const defs = s("defs");
    defs.append(cp);
    const axis = s("g", { class: "axis" });
    svg.append(defs, axis);
    axis.append(s("line", { x1: M.l, y1: H - M.b, x2: W - M.r, y2: H - M.b, stroke: "#333" }),
      s("line", { x1: M.l, y1: M.t, x2: M.l, y2: H - M.b, stroke: "#333" }));
    const xt = spec.categories ? spec.categories.map((_, i) => i) : ticks(x0, x1);
    for (const t of xt) {
      axis.append(s("line", { x1: X(t), x2: X(t), y1: H - M.b, y2: H - M.b + 5, stroke: "#333" }),
        s("text", { x: X(t), y: H - M.b + 18, "text-anchor": "middle" }, spec.categories ? V.value(spec.categories[t]) : V.num(t)));
    }
    for (const t of ticks(y0, y1)) {
      axis.append(s("line", { x1: M.l - 5, x2: M.l, y1: Y(t), y2: Y(t), stroke: "#333" }),
        s("text", { x: M.l - 8, y: Y(t) + 4, "text-anchor": "end" }, V.num(t)));
    }
    axis.append(s("text", { x: (M.l + W - M.r) / 2, y: H - 10, "text-anchor": "middle" }, spec.xLabel),
      s("text", { x: 16, y: (M.t + H - M.b) / 2, transform: `rotate(-90 16 ${(M.t + H - M.b) / 2})`, "text-anchor": "middle" }, spec.yLabel));
    const body = s("g", { "clip-path": `url(#${clip})` });
    svg.append(body);
    if (spec.extra) spec.extra(body, X, Y, [x0, x1, y0, y1]);
    for (const q of pts) {
      if (q.ex) body.append(s("line", { class: "err", x1: X(q.x - q.ex), x2: X(q.x + q.ex), y1: Y(q.y), y2: Y(q.y) }));
      if (q.ey) body.append(s("line", { class: "err", x1: X(q.x), x2: X(q.x), y1: Y(q.y - q.ey), y2: Y(q.y + q.ey) }));
    }
    for (const q of pts) {
      const c = s("circle", { class: `pt ${q.cls || ""}`, cx: X(q.x), cy: Y(q.y), r: q.r || 6,
        fill: q.fill || "#0b57d0", stroke: q.stroke || "#fff", "stroke-width": 1.5, tabindex: 0,
        "data-job": q.p.job_id || (q.p.job_ids || [])[0] || "" });
      c.append(s("title", {}, describe(q.p)));
      const open = () => { const id = c.getAttribute("data-job"); if (id) location.href = `/jobs/${id}`; };
      c.addEventListener("click", open);
      c.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
      c.addEventListener("mousemove", (e) => {
        tip.textContent = describe(q.p);
        tip.style.whiteSpace = "pre";
        tip.style.left = `${e.clientX + 14}px`;
        tip.style.top = `${e.clientY + 14}px`;
        tip.hidden = false;
      });
      c.addEventListener("mouseleave", () => { tip.hidden = true; });
      body.append(c);
    }
    parent.replaceChildren(svg);
  }

  function plane(fr) {
    const agg = fr.aggregated;
    const front = (agg || fr.points).filter((p) => p.on_frontier && p.rate != null && p.distortion != null)
      .sort((a, b) => a.rate - b.rate);
    const points = fr.points.map((p) => ({ x: p.rate, y: p.distortion, p, r: agg ? 4 : 6,
      cls: `job${!agg && p.on_frontier ? " on-frontier" : ""}`,
      fill: agg ? "#0b57d080" : p.on_frontier ? "#b3261e" : "#0b57d0" }));
    if (agg) {
      for (const a of agg) {
        points.push({ x: a.rate, y: a.distortion, p: a, r: 7, cls: `mean${a.on_frontier ? " on-frontier" : ""}`,
          ex: a.spread && a.spread.rate && a.spread.rate.std, ey: a.spread && a.spread.distortion && a.spread.distortion.std,
          fill: a.on_frontier ? "#b3261e" : "#1b2434" });
      }
    }
    scatter($("plane"), {
      label: "rate-distortion plane", xLabel: "rate R (nats)", yLabel: "distortion D (nats)", points,
      extra: (g, X, Y, [x0, x1, y0, y1]) => {
        // iso-ELBO lines R + D = c through the range: slope -1
        const lo = x0 + y0, hi = x1 + y1;
        for (const c of ticks(lo, hi, 8)) {
          g.append(s("line", { class: "iso", x1: X(c - y1), y1: Y(y1), x2: X(c - y0), y2: Y(y0) }));
        }
        if (front.length) {
          let d = `M ${X(front[0].rate)} ${Y(front[0].distortion)}`;
          for (let i = 1; i < front.length; i++) {
            d += ` H ${X(front[i].rate)} V ${Y(front[i].distortion)}`;
          }
          d += ` H ${X(x1)}`;
          g.append(s("path", { class: "frontier", d, "data-points": front.length }));
        }
      },
    });
  }

  let current = null; // the latest frontier answer
  function paramView() {
    const fr = current;
    const param = $("param").value, metric = $("metric").value;
    const rows = fr.aggregated || fr.points;
    const vals = rows.map((p) => (p.params || {})[param]);
    const numeric = vals.every((v) => typeof v === "number");
    const cats = numeric ? null : [...new Set(vals.map(V.value))];
    scatter($("pm"), {
      label: `${param} against ${metric}`, xLabel: param, yLabel: metric, categories: cats,
      points: rows.map((p, i) => ({ x: numeric ? vals[i] : cats.indexOf(V.value(vals[i])), y: p[metric], p,
        ey: p.spread && p.spread[metric] && p.spread[metric].std, fill: V.color(0) })),
    });
  }

  function jobsTable(detail, fr) {
    const byJob = new Map(fr.points.map((p) => [String(p.job_id), p]));
    const cols = ["job", "status", ...detail.varied, "R", "D", "ELBO", "frontier"];
    $("head").replaceChildren(...cols.map((c) => V.h("th", { scope: "col", text: c })));
    $("jobs").tBodies[0].replaceChildren(...detail.jobs.map(({ params, job }) => {
      const p = byJob.get(job.id) || {};
      return V.h("tr", { "data-id": job.id },
        V.h("td", {}, V.h("a", { href: `/jobs/${job.id}`, text: `${job.name} · ${V.short(job.id)}` })),
        V.h("td", {}, V.status(job.status)),
        ...detail.varied.map((k) => V.h("td", { class: "num", text: V.value(params[k]) })),
        V.h("td", { class: "num", text: V.num(p.rate) }), V.h("td", { class: "num", text: V.num(p.distortion) }),
        V.h("td", { class: "num", text: V.num(p.elbo) }), V.h("td", { text: p.on_frontier ? "✓" : "" }));
    }));
  }

  let last = "";
  async function refresh() {
    const [detail, fr] = await Promise.all([V.api(`/api/v1/sweeps/${SWEEP}`),
      V.api(`/api/v1/sweeps/${SWEEP}/rate-distortion`)]);
    $("status").className = `status ${detail.status}`;
    $("status").textContent = detail.status;
    const c = detail.progress.counts;
    $("summary").textContent = `${detail.owner} · ${detail.progress.total} jobs · ` +
      Object.entries(c).map(([k, v]) => `${v} ${k}`).join(", ") +
      ` · ${fr.finished} evaluated · varies ${detail.varied.join(", ") || "nothing"}`;
    $("compare-all").href = `/compare?ids=${detail.jobs.map((j) => j.job.id).join(",")}` +
      (detail.varied.length ? `&group_by=${encodeURIComponent(detail.varied.find((v) => !v.endsWith("seed")) || detail.varied[0])}` : "");
    const key = JSON.stringify([detail.jobs.map((j) => j.job.status), fr.points.length]);
    if (key === last) return;
    last = key;
    current = fr;
    if (!$("param").options.length) {
      $("param").replaceChildren(...detail.varied.map((v) => V.h("option", { text: v })));
      $("param").addEventListener("change", paramView);
      $("metric").addEventListener("change", paramView);
    }
    plane(fr);
    if (detail.varied.length) paramView();
    jobsTable(detail, fr);
    document.body.dataset.ready = "1";
  }
  V.every(3000, refresh);
})();
