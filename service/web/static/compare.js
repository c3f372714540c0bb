/* The compare page: the selected jobs overlaid, one chart per key (GET /api/v1/compare);
 * "group by" a spec path draws each group's mean with a ± std band across its jobs.
 * Hovering a run (or a group) highlights it in every chart (uPlot cursor sync). The x-axis
 * is the step, the elapsed wall time since each job's first point, or a logged metric (then
 * each job is drawn as points, in its group's colour, without bands). */
"use strict";
(() => {
  const V = window.vaelab;
  const $ = (id) => document.getElementById(id);
  const box = $("charts");
  const ids = box.dataset.ids ? box.dataset.ids.split(",") : [];
  const groupBy = box.dataset.group;
  let data = null, jobs = [], charts = [], per = [], keysParam = "";

  /** {keys (those every job has), steps (the union), series: {job: {key: values}}}: the
   * shape of GET /api/v1/compare, built from each job's /metrics answer. */
  function align(per) {
    const maps = per.map((m) => new Map(m.series.map((s) => [s.key, s])));
    const keys = [...maps[0].keys()].filter((k) => maps.every((m) => m.has(k)));
    const all = new Set();
    for (const m of maps) for (const k of keys) for (const st of m.get(k).steps) all.add(st);
    const steps = [...all].sort((a, b) => a - b);
    const series = {};
    per.forEach((m, i) => {
      const out = (series[m.job_id] = {});
      for (const k of keys) {
        const s = maps[i].get(k), at = new Map(s.steps.map((st, j) => [st, s.values[j]]));
        out[k] = steps.map((st) => (at.has(st) ? at.get(st) : null));
      }
    });
    return { keys, steps, series };
  }

  function groups() { // [{label, members: [job index]}]
    if (!groupBy) return jobs.map((j, i) => ({ label: `${j.name} · ${V.short(j.id)}`, members: [i] }));
    const by = new Map();
    jobs.forEach((j, i) => {
      const label = `${groupBy} = ${V.value(V.at(j.spec, groupBy))}`;
      if (!by.has(label)) by.set(label, []);
      by.get(label).push(i);
    });
    return [...by].map(([label, members]) => ({ label: `${label} (n=${members.length})`, members }));
  }

  /** One job's (x, y) points for `key` with x = elapsed seconds or another key's value. */
  function xy(m, key, xKey, w) {
    const s = m.series.find((t) => t.key === key);
    if (!s) return [];
    const y = V.ema(s.values, w);
    if (xKey === "time") {
      const t0 = Math.min(...m.series.flatMap((t) => (t.ts || []).filter((v) => v != null)));
      return s.steps.map((_, i) => [s.ts && s.ts[i] != null ? s.ts[i] - t0 : null, y[i]])
        .filter((p) => p[0] != null);
    }
    const xs = m.series.find((t) => t.key === xKey);
    if (!xs) return [];
    const at = new Map(xs.steps.map((st, i) => [st, xs.values[i]]));
    return s.steps.map((st, i) => [at.get(st), y[i]]).filter((p) => p[0] != null);
  }

  /** Charts with elapsed time or a metric on x: each job its own series on the union of
   * every job's x values (null elsewhere). */
  function drawXY(xKey, gs) {
    const w = +$("smooth").value;
    const colorOf = new Map();
    gs.forEach((g, gi) => g.members.forEach((i) => colorOf.set(i, V.color(gi))));
    for (const key of data.keys) {
      const pts = per.map((m) => xy(m, key, xKey, w));
      const xs = [...new Set(pts.flatMap((p) => p.map((q) => q[0])))].sort((a, b) => a - b);
      const pos = new Map(xs.map((x, i) => [x, i]));
      const cols = [xs], series = [];
      pts.forEach((p, i) => {
        const ys = new Array(xs.length).fill(null);
        for (const [x, y] of p) ys[pos.get(x)] = y;
        cols.push(ys);
        series.push({ label: `${jobs[i].name} · ${V.short(jobs[i].id)}`, stroke: colorOf.get(i), width: 1.8 });
      });
      const c = V.chart(box, { title: key, key, xLabel: xKey === "time" ? "elapsed wall time (s)" : xKey,
        logY: $("logy").checked, points: xKey !== "time", sync: "compare", series }, cols);
      c.panel.dataset.series = String(series.length);
      c.panel.dataset.bands = "0";
      charts.push(c);
    }
  }

  function draw() {
    charts.forEach((c) => c.destroy());
    charts = [];
    const w = +$("smooth").value;
    const gs = groups();
    const xKey = $("xaxis").value;
    $("legend").replaceChildren(...gs.map((g, i) => V.h("span", { style: `--c:${V.color(i)}`, text: g.label })));
    if (xKey !== "step") {
      drawXY(xKey, gs);
      document.body.dataset.drawn = String(charts.length);
      document.body.dataset.x = xKey;
      return;
    }
    for (const key of data.keys) {
      const smoothed = jobs.map((j) => V.ema(data.series[j.id][key] || [], w));
      const cols = [data.steps], series = [], bands = [];
      gs.forEach((g, gi) => {
        const color = V.color(gi);
        if (!groupBy) {
          cols.push(smoothed[g.members[0]]);
          series.push({ label: g.label, stroke: color, width: 1.8 });
          return;
        }
        const mean = [], hi = [], lo = [];
        data.steps.forEach((_, t) => {
          const [m, sd] = V.meanStd(g.members.map((i) => smoothed[i][t]));
          mean.push(m); hi.push(m == null ? null : m + sd); lo.push(m == null ? null : m - sd);
        });
        const base = cols.length;
        cols.push(mean, hi, lo);
        series.push({ label: g.label, stroke: color, width: 2 },
          { label: `${g.label} +std`, stroke: color + "55", width: 0.5, legend: false },
          { label: `${g.label} −std`, stroke: color + "55", width: 0.5, legend: false });
        bands.push({ series: [base + 1, base + 2], fill: color + "30" });
      });
      const c = V.chart(box, { title: key, key, xLabel: "step", logY: $("logy").checked,
        sync: "compare", series, bands: bands.length ? bands : undefined }, cols);
      c.panel.dataset.series = String(gs.length);
      c.panel.dataset.bands = String(bands.length);
      charts.push(c);
    }
    document.body.dataset.drawn = String(charts.length);
    document.body.dataset.x = xKey;
  }

  const readAll = (ts) => Promise.all(ids.map((id) => V.api(`/api/v1/jobs/${id}/metrics?max_points=300${keysParam}${ts ? "&with_ts=true" : ""}`)));

  V.run(async () => {
    if (!ids.length) { box.replaceChildren(V.h("p", { class: "note", text: "Select jobs on the Jobs page to compare them." })); return; }
    keysParam = box.dataset.keys ? `&keys=${encodeURIComponent(box.dataset.keys)}` : "";
    // one /metrics request per job: the browser runs them side by side, so the server's
    // database reads overlap (GET /api/v1/compare reads every series in one request).
    // max_points 300: ~2 points per horizontal pixel of a chart (min/max buckets keep spikes)
    let list;
    [list, per] = await Promise.all([
      V.api(`/api/v1/jobs?ids=${ids.join(",")}&with_spec=true&limit=500`),
      readAll(false),
    ]);
    const byId = new Map(list.items.map((j) => [j.id, j]));
    jobs = ids.map((id) => byId.get(id));
    data = align(per);
    $("paths").replaceChildren(...V.paths(jobs[0].spec).map((p) => V.h("option", { value: p })));
    $("xaxis").append(...data.keys.map((k) => V.h("option", { value: k, text: k })));
    draw();
    performance.mark("vaelab:drawn");
    document.body.dataset.ready = "1";
    $("smooth").addEventListener("input", draw);
    $("logy").addEventListener("change", draw);
    $("xaxis").addEventListener("change", () => V.run(async () => {
      document.body.dataset.x = "";
      if ($("xaxis").value === "time" && !per.every((m) => m.series.every((s) => s.ts))) per = await readAll(true);
      draw();
    }));
  });
})();
