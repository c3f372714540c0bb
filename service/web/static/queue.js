/* The queue page: running and waiting jobs in submit order (GET /api/v1/jobs?active=true),
 * refreshed every 2 s, with a cancel button. There is no scheduler yet: no reasons or
 * release order beyond first come, first served. */
"use strict";
(() => {
  const V = window.vaelab;
  const $ = (id) => document.getElementById(id);

  async function refresh() {
    const list = await V.api("/api/v1/jobs?active=true&sort=created_at&limit=500");
    const rows = list.items.map((j, i) => {
      const p = j.progress;
      const cancel = V.h("button", { type: "button", text: j.cancel_requested ? "cancelling" : "Cancel",
        disabled: j.cancel_requested, "aria-label": `cancel ${j.name} ${V.short(j.id)}`,
        onclick: () => V.run(async () => { await V.api(`/api/v1/jobs/${j.id}/cancel`, { method: "POST" }); await refresh(); }) });
      return V.h("tr", { "data-id": j.id, "data-status": j.status },
        V.h("td", { class: "num", text: String(i + 1) }),
        V.h("td", {}, V.h("a", { href: `/jobs/${j.id}`, text: `${j.name} · ${V.short(j.id)}` })),
        V.h("td", {}, V.status(j.status)), V.h("td", { text: j.owner }),
        V.h("td", { class: "num", text: String(j.priority) }), V.h("td", { text: j.queue }),
        V.h("td", { text: V.when(j.created_at) }),
        V.h("td", { class: "num", text: p.fraction == null ? "–" : `${Math.round(100 * p.fraction)} % (step ${p.step})` }),
        V.h("td", {}, cancel));
    });
    $("queue").tBodies[0].replaceChildren(...rows);
    $("empty").hidden = rows.length > 0;
    document.body.dataset.ready = "1";
  }
  V.every(2000, refresh);
})();
