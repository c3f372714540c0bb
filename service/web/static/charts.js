/* vaelab dashboard: line charts on uPlot (vendored), sized to their box, with a drag-to-zoom
 * callback and cursor sync (hovering a series highlights the same series in every chart). */
"use strict";
(() => {
  const V = window.vaelab;

  /** A uPlot chart in a new panel under `parent`.
   * spec: {title, key, xLabel, time (x is unix seconds: a date/time axis), logY (a log
   * scale: y distr 3), points (draw points, no lines), sync (a key shared by charts whose x
   * values correspond: hovering one puts the cursor on the same x in all of them and
   * highlights the hovered series everywhere), onZoom(lo, hi), series: [{label, stroke,
   * width, fill, band: [i, j]}]}; data: [xs, ys...]. Returns {u, panel, setData(data)}; the
   * panel element also holds the uPlot instance as `panel.uplot` (the browser tests read
   * its scales, series and cursor). */
  V.chart = (parent, spec, data) => {
    const panel = V.h("div", { class: "chart", "data-key": spec.key || spec.title });
    panel.append(V.h("h3", { text: spec.title }));
    const box = V.h("div");
    panel.append(box);
    parent.append(panel);
    const series = [{ label: spec.xLabel || "step" }].concat(spec.series.map((s) => ({
      label: s.label,
      stroke: s.stroke,
      width: s.width == null ? 1.5 : s.width,
      fill: s.fill,
      spanGaps: true,
      show: s.show !== false,
      points: { show: !!spec.points, size: spec.points ? 5 : 0, fill: s.stroke },
      paths: spec.points ? () => null : undefined,
      value: (u, v) => V.num(v),
    })));
    const opts = {
      width: Math.max(200, box.clientWidth || parent.clientWidth || 480),
      height: spec.height || 260,
      scales: { x: { time: !!spec.time }, y: spec.logY ? { distr: 3 } : {} },
      axes: [{ label: spec.xLabel || "step", size: spec.time ? 50 : 40 }, { size: 60 }],
      series,
      bands: spec.bands,
      legend: { live: true },
      focus: { alpha: 0.25 },
      cursor: {
        focus: { prox: 20 },
        drag: { x: !!spec.onZoom, y: false, setScale: false },
        sync: spec.sync ? { key: spec.sync, setSeries: true } : undefined,
      },
      hooks: {
        setSelect: [(u) => {
          if (!spec.onZoom || u.select.width < 3) return;
          const lo = u.posToVal(u.select.left, "x");
          const hi = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          spec.onZoom(lo, hi);
        }],
      },
    };
    const clean = (d) => (spec.logY
      ? [d[0]].concat(d.slice(1).map((ys) => ys.map((y) => (y != null && y > 0 ? y : null))))
      : d);
    const u = new uPlot(opts, clean(data), box);
    panel.uplot = u;
    panel.dataset.x = spec.xLabel || "step";
    panel.dataset.logY = spec.logY ? "1" : "0";
    spec.series.forEach((sr, i) => { // band edges stay out of the legend
      if (sr.legend === false) u.root.querySelectorAll(".u-legend .u-series")[i + 1].style.display = "none";
    });
    const resize = () => {
      const w = Math.max(200, box.clientWidth);
      if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: opts.height });
    };
    new ResizeObserver(resize).observe(panel);
    return {
      u, panel,
      setData(d) { u.setData(clean(d)); },
      destroy() { u.destroy(); panel.remove(); },
    };
  };

  /** A small SVG bar chart of values (per-unit or per-group KL). */
  V.bars = (parent, title, values) => {
    const wrap = V.h("div", { class: "bars" }, V.h("h3", { text: title }));
    const W = 600, H = 160, pad = 28;
    const max = Math.max(1e-12, ...values.map((v) => (v == null ? 0 : v)));
    const bw = (W - pad) / Math.max(1, values.length);
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", title);
    values.forEach((v, i) => {
      const h = ((v || 0) / max) * (H - pad - 6);
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", pad + i * bw + 1);
      r.setAttribute("y", H - pad - h);
      r.setAttribute("width", Math.max(1, bw - 2));
      r.setAttribute("height", h);
      const t = document.createElementNS(ns, "title");
      t.textContent = `${i}: ${V.num(v)} nats`;
      r.append(t);
      svg.append(r);
      if (values.length <= 32) {
        const lab = document.createElementNS(ns, "text");
        lab.setAttribute("x", pad + (i + 0.5) * bw);
        lab.setAttribute("y", H - pad + 14);
        lab.setAttribute("text-anchor", "middle");
        lab.setAttribute("font-size", "11");
        lab.textContent = i;
        svg.append(lab);
      }
    });
    const top = document.createElementNS(ns, "text");
    top.setAttribute("x", 2);
    top.setAttribute("y", 12);
    top.setAttribute("font-size", "11");
    top.textContent = `max ${V.num(max)} nats`;
    svg.append(top);
    wrap.append(svg);
    parent.append(wrap);
  };
})();
