/* The compare page: the selected jobs overlaid, one chart per key (GET /api/v1/compare);
 * "group by" a spec path draws each group's mean with a ± std band across its jobs.
 * Hovering a run (or a group) highlights it in every chart (uPlot cursor sync). */
"use strict";
(() => {
  const V = window.vaelab;
  const $ = (id) => document.getElementById(id);
  const box = $("charts");
  const ids = box.dataset.ids ? box.dataset.ids.split(",") : [];
  const groupBy = box.dataset.group;
  let data = null, jobs = [], charts = [];

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

  function draw() {
    charts.forEach((c) => c.destroy());
    charts = [];
    const w = +$("smooth").value;
    const gs = groups();
    $("legend").replaceChildren(...gs.map((g, i) => V.h("span", { style: `--c:${V.color(i)}`, text: g.label })));
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
  }

  V.run(async () => {
    if (!ids.length) { box.replaceChildren(V.h("p", { class: "note", text: "Select jobs on the Jobs page to compare them." })); return; }
    const keys = box.dataset.keys ? `&keys=${encodeURIComponent(box.dataset.keys)}` : "";
    [data, jobs] = await Promise.all([
      V.api(`/api/v1/compare?jobs=${ids.join(",")}${keys}&max_points=1000`),
      Promise.all(ids.map((id) => V.api(`/api/v1/jobs/${id}`))),
    ]);
    $("paths").replaceChildren(...V.paths(jobs[0].spec).map((p) => V.h("option", { value: p })));
    draw();
    performance.mark("vaelab:drawn");
    document.body.dataset.ready = "1";
    $("smooth").addEventListener("input", draw);
    $("logy").addEventListener("change", draw);
  });
})();
