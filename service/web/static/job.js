/* The job page: facts and progress, live curves (history from /metrics, new points over
 * SSE), zoom that re-reads the visible range, the rate-distortion summary, sample grids,
 * checkpoints. Every read goes through the public API. */
"use strict";
(() => {
  const V = window.vaelab;
  const $ = (id) => document.getElementById(id);
  const JOB = $("facts").dataset.job;
  const BASE = `/api/v1/jobs/${JOB}`;
  const POINTS = 2000; // per key and view: about two per horizontal pixel
  const DEFAULT = /^(loss|elbo|rate|distortion|beta_effective|capacity|grad_norm)$|capacity|error|lambda|sigma/;

  // key -> {steps: [], values: [], ts: []} (overview + live points; ts: each point's wall
  // time in unix seconds, null until read: only asked for once wall time is on the x-axis)
  const series = new Map();
  let zoom = null; // {lo, hi, data: Map(key -> {steps, values, ts})}
  const shown = new Set();
  const charts = new Map(); // key -> chart
  let job = null;

  // ------------------------------------------------------------------ facts

  const fact = (dt, dd) => V.h("div", {}, V.h("dt", { text: dt }), V.h("dd", {}, dd));
  function renderFacts(j) {
    $("status").className = `status ${j.status}`;
    $("status").textContent = j.status + (j.cancel_requested && j.status === "running" ? " (cancelling)" : "");
    const p = j.progress;
    $("progress").value = p.fraction || 0;
    $("facts").replaceChildren(...[
      fact("Owner", j.owner),
      fact("Step", `${p.step}${p.total_steps ? ` / ${p.total_steps}` : ""}`),
      fact("Progress", p.fraction == null ? "–" : `${(100 * p.fraction).toFixed(1)} %`),
      fact("ETA", p.eta_seconds == null ? "–" : `${Math.round(p.eta_seconds)} s`),
      fact("Attempts", String(j.attempts)),
      fact("Dataset / model", `${j.dataset || "?"} · ${j.arch || "?"} · ${j.likelihood || "?"}`),
      fact("KL scheme", j.kl || "–"),
      fact("Submitted", V.when(j.created_at)),
      fact("Worker", j.worker || "–"),
      j.sweep_id ? fact("Sweep", V.h("a", { href: `/sweeps/${j.sweep_id}`, text: V.short(j.sweep_id) })) : null,
      j.error ? fact("Error", j.error) : null,
    ].filter(Boolean));
    if (j.status === "queued" || j.status === "running") {
      if (!$("cancel")) {
        $("facts").after(V.h("button", { id: "cancel", type: "button", text: "Cancel job",
          onclick: () => V.run(async () => { await V.api(`${BASE}/cancel`, { method: "POST" }); }) }));
      }
    } else if ($("cancel")) $("cancel").remove();
  }

  // ------------------------------------------------------------------ curves

  function put(key, step, value, ts) {
    let s = series.get(key);
    if (!s) series.set(key, (s = { steps: [], values: [], ts: [] }));
    const n = s.steps.length, t = ts == null ? null : ts;
    if (!n || step > s.steps[n - 1]) { s.steps.push(step); s.values.push(value); s.ts.push(t); return; }
    let lo = 0, hi = n; // binary search: replace or insert (a resumed attempt re-logs steps)
    while (lo < hi) { const m = (lo + hi) >> 1; if (s.steps[m] < step) lo = m + 1; else hi = m; }
    if (s.steps[lo] === step) { s.values[lo] = value; if (t != null) s.ts[lo] = t; }
    else { s.steps.splice(lo, 0, step); s.values.splice(lo, 0, value); s.ts.splice(lo, 0, t); }
  }

  function view(key) {
    return (zoom && zoom.data.get(key)) || series.get(key) || { steps: [], values: [], ts: [] };
  }

  function chartData(key) {
    const w = +$("smooth").value;
    const s = view(key);
    const xKey = $("xaxis").value;
    const smooth = V.ema(s.values, w);
    if (xKey === "step") return [s.steps, s.values, smooth];
    if (xKey === "time") { // wall time: the points whose stamp is known, in time order
      const ts = s.ts || [];
      const rows = [];
      s.steps.forEach((_, i) => { if (ts[i] != null) rows.push([ts[i], s.values[i], smooth[i]]); });
      rows.sort((a, b) => a[0] - b[0]);
      return [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])];
    }
    const x = new Map();
    const xs = view(xKey);
    xs.steps.forEach((st, i) => x.set(st, xs.values[i]));
    const rows = [];
    s.steps.forEach((st, i) => { const xv = x.get(st); if (xv != null) rows.push([xv, s.values[i], smooth[i]]); });
    rows.sort((a, b) => a[0] - b[0]);
    return [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])];
  }

  function build() {
    for (const c of charts.values()) c.destroy();
    charts.clear();
    const xKey = $("xaxis").value;
    const first = ["loss", "elbo", "rate", "distortion", "beta_effective"];
    const rank = (k) => (first.includes(k) ? first.indexOf(k) : first.length);
    const keys = [...shown].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    keys.forEach((key, i) => {
      const col = V.color(i);
      const c = V.chart($("charts"), {
        title: key, key, xLabel: xKey === "time" ? "wall time" : xKey, time: xKey === "time",
        logY: $("logy").checked, points: xKey !== "step" && xKey !== "time", sync: "job",
        onZoom: xKey === "step" ? zoomTo : xKey === "time" ? zoomTime : null,
        series: [{ label: "raw", stroke: col + "40", width: 1 }, { label: "smoothed", stroke: col, width: 2 }],
      }, chartData(key));
      charts.set(key, c);
    });
    mark();
  }

  let pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      for (const [key, c] of charts) c.setData(chartData(key));
      mark();
    });
  }

  function mark() {
    for (const [key, c] of charts) {
      const s = view(key);
      c.panel.dataset.points = String(s.steps.length);
      c.panel.dataset.lastStep = s.steps.length ? String(s.steps[s.steps.length - 1]) : "";
    }
    document.body.dataset.drawn = String(charts.size);
  }

  function renderKeys() {
    const keys = [...seen].sort();
    const have = new Set([...$("keys").querySelectorAll("input")].map((i) => i.value));
    for (const key of keys) {
      if (have.has(key)) continue;
      const box = V.h("input", { type: "checkbox", value: key });
      box.checked = shown.has(key);
      box.addEventListener("change", () => V.run(async () => {
        if (box.checked) shown.add(key); else shown.delete(key);
        if ($("xaxis").value === "time") await withTimes();
        build();
      }));
      $("keys").append(V.h("label", {}, box, key));
      $("xaxis").append(V.h("option", { value: key, text: key }));
    }
  }

  function adopt(keys) { // a key seen for the first time: show it if it is a default one
    let added = false;
    for (const k of keys) if (!shown.has(k) && DEFAULT.test(k) && !k.startsWith("eval/") && !seen.has(k)) { shown.add(k); added = true; }
    for (const k of keys) seen.add(k);
    renderKeys();
    return added;
  }
  const seen = new Set();

  async function zoomTo(lo, hi) {
    const start = Math.max(0, Math.floor(lo)), end = Math.ceil(hi);
    const keys = [...new Set([...shown])].join(",");
    const ts = $("xaxis").value === "time" ? "&with_ts=true" : "";
    const m = await V.api(`${BASE}/metrics?keys=${encodeURIComponent(keys)}&start_step=${start}&end_step=${end}&max_points=${POINTS}${ts}`);
    zoom = { lo: start, hi: end, data: new Map(m.series.map((s) => [s.key, s])) };
    build();
  }

  /** Zoom on the wall-time axis: the steps drawn inside [lo, hi] seconds give the step range
   * to re-read (a job's stamps increase with its steps). */
  function zoomTime(lo, hi) {
    let a = Infinity, b = -Infinity;
    for (const key of shown) {
      const s = view(key);
      (s.ts || []).forEach((t, i) => { if (t != null && t >= lo && t <= hi) { a = Math.min(a, s.steps[i]); b = Math.max(b, s.steps[i]); } });
    }
    if (a <= b) return zoomTo(a, b);
  }

  /** Wall time on the x-axis: read the stamps of the drawn keys' points once. */
  async function withTimes() {
    const missing = [...shown].filter((k) => (series.get(k) || { ts: [] }).ts.some((t) => t == null));
    await Promise.all(missing.map((k) => read([k], true)));
  }

  const read = (keys, ts) => V.api(`${BASE}/metrics?max_points=${POINTS}&keys=${encodeURIComponent(keys.join(","))}${ts ? "&with_ts=true" : ""}`)
    .then((m) => m.series.forEach((s) => s.steps.forEach((st, i) => put(s.key, st, s.values[i], s.ts ? s.ts[i] : null))));

  // ------------------------------------------------------------------ results

  async function loadResults() {
    await Promise.all([loadRD(), loadSamples(), loadCheckpoints()]);
  }

  async function loadRD() {
    // evaluations log eval/* keys: without one there is no summary to ask for (a 404)
    if (![...seen].some((k) => k.startsWith("eval/"))) return;
    let rd;
    try { rd = await V.api(`${BASE}/rate-distortion`); } catch (e) { if (e.status === 404) return; throw e; }
    const row = (k, v) => V.h("tr", {}, V.h("th", { text: k }), V.h("td", { class: "num", text: v }));
    const t = V.h("table", { class: "grid" },
      row("step", `${rd.step}${rd.final ? " (final)" : ""}`),
      row("rate R (nats)", V.num(rd.rate)), row("distortion D (nats)", V.num(rd.distortion)),
      row("ELBO", V.num(rd.elbo)), row(`IWAE${rd.iwae_k ? ` (k=${rd.iwae_k})` : ""}`, V.num(rd.iwae)),
      row("bits/dim", V.num(rd.bits_per_dim)),
      row("active units", rd.active_units.count == null ? "–" : String(rd.active_units.count)),
      row("mutual information", V.num(rd.mutual_information.value)),
      row("marginal KL", V.num(rd.marginal_kl)), row("β effective", V.num(rd.beta_effective)));
    const ctrl = V.h("table", { class: "grid" }, V.h("caption", { text: "Controller state" }),
      ...Object.entries(rd.scheme_state || {}).map(([k, v]) =>
        row(k, typeof v === "number" ? V.num(v) : V.value(v))));
    const bars = V.h("div");
    if (rd.kl_per_unit && rd.kl_per_unit.length) V.bars(bars, "KL per latent unit (nats)", rd.kl_per_unit);
    if (rd.kl_per_group && rd.kl_per_group.length) V.bars(bars, "KL per group (nats)", rd.kl_per_group);
    $("rd").replaceChildren(V.h("div", { class: "rd" },
      V.h("div", {}, t, Object.keys(rd.scheme_state || {}).length ? ctrl : null), bars));
  }

  let sampleSteps = [];
  async function loadSamples() {
    const a = await V.api(`${BASE}/artifacts`);
    const steps = [...new Set(a.items.filter((i) => i.kind === "samples" || i.kind === "recon").map((i) => i.step))].sort((x, y) => x - y);
    const ckpts = new Set(a.items.filter((i) => i.kind === "checkpoint").map((i) => i.step));
    if (!steps.length || steps.join() === sampleSteps.join()) return;
    sampleSteps = steps;
    const slider = V.h("input", { type: "range", min: 0, max: steps.length - 1, step: 1,
      value: steps.length - 1, id: "sample-step", "aria-label": "Evaluation step" });
    const label = V.h("output", { for: "sample-step" });
    const grids = V.h("div", { class: "samples" });
    const trav = V.h("button", { type: "button", text: "Latent traversal" });
    const show = () => {
      const s = steps[+slider.value];
      label.textContent = `step ${s}`;
      const fig = (kind, cap) => V.h("figure", {}, V.h("img", { src: `${BASE}/samples?kind=${kind}&step=${s}`,
        alt: `${cap} at step ${s}`, class: `grid-${kind}` }), V.h("figcaption", { text: cap }));
      grids.replaceChildren(fig("prior", "Prior samples"), fig("recon", "Test examples | reconstructions"));
      trav.disabled = !ckpts.has(s);
      trav.onclick = () => grids.append(fig("traversal", "Traversal of the active units"));
    };
    slider.addEventListener("input", show);
    show();
    $("samples").replaceChildren(V.h("div", { class: "controls" },
      V.h("label", {}, "Step", slider), label, trav), grids);
  }

  async function loadCheckpoints() {
    const list = await V.api(`${BASE}/checkpoints`);
    if (!list.length) return;
    $("checkpoints").replaceChildren(...list.map((c) => V.h("li", {}, V.h("a", {
      href: `${BASE}/checkpoints/${c.step}`, download: `${JOB}-step${c.step}.safetensors`,
      text: `step ${c.step}` }), ` · ${(c.bytes / 1024).toFixed(0)} KiB · ${V.when(c.created_at)}`)));
  }

  // ------------------------------------------------------------------ live

  function follow() {
    const buffer = [];
    let ready = false;
    const es = new EventSource(`${BASE}/events?history=false`);
    // a browser holds 6 connections per server: a stream left open by a page being left
    // would starve the 6th page (until the socket times out)
    window.addEventListener("pagehide", () => es.close());
    const apply = ([points, ts]) => {
      const keys = new Set();
      let evals = false;
      for (const p of points) { put(p.key, p.step, p.value, ts); keys.add(p.key); if (p.key.startsWith("eval/")) evals = true; }
      if (adopt(keys)) build(); else redraw();
      if (evals) V.run(loadResults);
    };
    es.addEventListener("metrics", (ev) => {
      const d = JSON.parse(ev.data), batch = [d.points, d.ts];
      if (ready) apply(batch); else buffer.push(batch);
    });
    es.addEventListener("status", (ev) => {
      const s = JSON.parse(ev.data);
      if (job) { Object.assign(job, s); renderFacts(job); }
    });
    // the server ended the stream (its token was revoked): do not reconnect
    es.addEventListener("error", (ev) => { if (ev.data) es.close(); });
    es.addEventListener("end", () => { es.close(); V.run(async () => { job = await V.api(BASE); renderFacts(job); await loadResults(); }); });
    return () => { ready = true; buffer.splice(0).forEach(apply); };
  }

  V.run(async () => {
    const release = follow(); // open the stream first: nothing written meanwhile is missed
    job = await V.api(BASE);
    renderFacts(job);
    adopt(Object.keys(job.latest_metrics || {}));
    // the drawn keys first, one request each: the server's database reads overlap
    await Promise.all([...shown].map((k) => read([k])));
    build();
    const rest = [...seen].filter((k) => !shown.has(k));
    if (rest.length) V.run(() => read(rest).then(redraw));
    release();
    performance.mark("vaelab:drawn");
    document.body.dataset.ready = "1";
    $("smooth").addEventListener("input", () => { $("smooth-out").textContent = (+$("smooth").value).toFixed(2); redraw(); });
    $("logy").addEventListener("change", build);
    $("xaxis").addEventListener("change", () => V.run(async () => {
      zoom = null;
      document.body.dataset.x = "";
      if ($("xaxis").value === "time") await withTimes();
      build();
      document.body.dataset.x = $("xaxis").value; // drawn with this x-axis (the tests wait on it)
    }));
    $("reset").addEventListener("click", () => { zoom = null; build(); });
    await loadResults();
  });
})();
