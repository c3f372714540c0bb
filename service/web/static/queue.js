/* The queue page: running jobs, then waiting jobs in release order with the reason each
 * waits (GET /api/v1/queue), refreshed every 2 s, with a cancel button. */
"use strict";
(() => {
  const V = window.vaelab;
  const $ = (id) => document.getElementById(id);

  async function refresh() {
    const q = await V.api("/api/v1/queue");
    const rows = q.items.map((e) => {
      const j = e.job;
      const p = j.progress;
      const cancel = V.h("button", { type: "button", text: j.cancel_requested ? "cancelling" : "Cancel",
        disabled: j.cancel_requested, "aria-label": `cancel ${j.name} ${V.short(j.id)}`,
        onclick: () => V.run(async () => { await V.api(`/api/v1/jobs/${j.id}/cancel`, { method: "POST" }); await refresh(); }) });
      return V.h("tr", { "data-id": j.id, "data-status": j.status, "data-state": e.state },
        V.h("td", { class: "num", text: String(e.position) }),
        V.h("td", {}, V.h("a", { href: `/jobs/${j.id}`, text: `${j.name} · ${V.short(j.id)}` })),
        V.h("td", {}, V.status(j.status)), V.h("td", { text: j.owner }),
        V.h("td", { class: "num", text: String(j.priority) }), V.h("td", { text: j.queue }),
        V.h("td", { text: V.when(j.created_at) }),
        V.h("td", { class: "num", text: p.fraction == null ? "–" : `${Math.round(100 * p.fraction)} % (step ${p.step})` }),
        V.h("td", { class: "num", text: String(j.preemptions || 0) }),
        V.h("td", { class: "reason", text: e.reason || (j.preempt_requested ? "preempting" : "") }),
        V.h("td", {}, cancel));
    });
    $("queue").tBodies[0].replaceChildren(...rows);
    $("empty").hidden = rows.length > 0;
    const live = q.workers.filter((w) => w.live);
    const slots = live.reduce((n, w) => n + w.slots, 0);
    const busy = live.reduce((n, w) => n + w.busy, 0);
    const hidden = q.hidden ? ` ${q.hidden} job${q.hidden === 1 ? "" : "s"} of other users not shown (the lab's read scope is owner-only); # is each job's place in the whole queue.` : "";
    $("slots").textContent = `${busy} of ${slots} worker slots busy on ${live.length} live worker${live.length === 1 ? "" : "s"}.${hidden}`;
    document.body.dataset.ready = "1";
  }
  V.every(2000, refresh);
})();
