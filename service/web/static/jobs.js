/* The jobs page: GET /api/v1/jobs with the page's filters and sort (the server filters and
 * sorts), refreshed every 2 s; the varied sweep parameters as columns; select to compare. */
"use strict";
(() => {
  const V = window.vaelab;
  const $ = (id) => document.getElementById(id);
  const table = $("jobs");
  const query = new URLSearchParams(location.search);
  const selected = new Set();
  const SORTABLE = { name: "name", status: "status", owner: "owner", priority: "priority",
    step: "step", attempts: "attempts", submitted: "created_at" };

  const params = new URLSearchParams();
  for (const [k, v] of query) if (v) params.set(k, v);
  if (!params.has("limit")) params.set("limit", "200");

  function header(cols) {
    const sort = table.dataset.sort;
    $("head").replaceChildren(V.h("th", { scope: "col" }, V.h("span", { class: "skip", text: "Select" })),
      ...cols.map((c) => {
        const field = SORTABLE[c];
        const th = V.h("th", { scope: "col" });
        if (!field) { th.textContent = c; return th; }
        if (sort.replace("-", "") === field) th.setAttribute("aria-sort", sort.startsWith("-") ? "descending" : "ascending");
        th.append(V.h("button", { type: "button", text: c, onclick: () => {
          const next = sort === `-${field}` ? field : `-${field}`;
          query.set("sort", next);
          location.search = query.toString();
        } }));
        return th;
      }));
  }

  function row(j, varied) {
    const box = V.h("input", { type: "checkbox", "aria-label": `select ${j.name} ${V.short(j.id)}`, value: j.id });
    box.checked = selected.has(j.id);
    box.addEventListener("change", () => {
      box.checked ? selected.add(j.id) : selected.delete(j.id);
      $("compare").disabled = selected.size < 1;
    });
    const p = j.progress;
    return V.h("tr", { "data-id": j.id, "data-status": j.status },
      V.h("td", {}, box),
      V.h("td", {}, V.h("a", { href: `/jobs/${j.id}`, text: `${j.name} · ${V.short(j.id)}` })),
      V.h("td", {}, V.status(j.status)),
      V.h("td", { text: j.owner }),
      V.h("td", { text: j.dataset || "–" }), V.h("td", { text: j.arch || "–" }),
      V.h("td", { text: j.likelihood || "–" }), V.h("td", { text: j.kl || "–" }),
      ...varied.map((k) => V.h("td", { class: "num", text: V.value((j.sweep_params || {})[k]) })),
      V.h("td", { class: "num", text: p.fraction == null ? "–" : `${Math.round(100 * p.fraction)} %` }),
      V.h("td", { class: "num", text: String(p.step) }),
      V.h("td", { class: "num", text: String(j.priority) }),
      V.h("td", { class: "num", text: String(j.attempts) }),
      V.h("td", { text: V.when(j.created_at) }),
      V.h("td", { text: j.tags.join(", ") }),
      V.h("td", {}, j.sweep_id ? V.h("a", { href: `/sweeps/${j.sweep_id}`, text: V.short(j.sweep_id) }) : "–"));
  }

  async function refresh() {
    const list = await V.api(`/api/v1/jobs?${params}`);
    const varied = [...new Set(list.items.flatMap((j) => Object.keys(j.sweep_params || {})))].sort();
    header(["name", "status", "owner", "dataset", "arch", "likelihood", "KL", ...varied,
      "progress", "step", "priority", "attempts", "submitted", "tags", "sweep"]);
    table.tBodies[0].replaceChildren(...list.items.map((j) => row(j, varied)));
    $("count").textContent = `${list.items.length} of ${list.total} jobs`;
    document.body.dataset.ready = "1";
  }

  async function options() { // suggestions for the filter fields, from the catalogue
    const { catalogue: c } = await V.api("/api/v1/schemes");
    const fill = (id, names) => $(id).replaceChildren(...names.map((n) => V.h("option", { value: n })));
    fill("opts-dataset", c.datasets.map((d) => d.name));
    fill("opts-arch", c.architectures.map((d) => d.name));
    fill("opts-likelihood", c.likelihoods.map((d) => d.name));
    fill("opts-kl", c.schedules.map((d) => d.name));
  }

  $("compare").addEventListener("click", () => {
    location.href = `/compare?ids=${[...selected].join(",")}`;
  });
  // empty fields stay out of the query string
  $("filters").addEventListener("submit", () => {
    for (const el of $("filters").elements) if (el.name && !el.value) el.disabled = true;
  });
  V.every(2000, refresh);
  V.run(options);
})();
