"""How the CLI writes jobs and sweeps as text: status summaries, progress, sweep points,
sizes and durations. Pure functions of the API's JSON, shared by every command family."""

from __future__ import annotations

from typing import Any


def summary_text(job: dict[str, Any]) -> str:
    p = job["progress"]
    where = f"step {p['step']}/{p['total_steps']}" if p["total_steps"] else "waiting"
    lines = [f"job {job['id']}: {job['status']} at {where} (attempts {job['attempts']})"]
    if job["status"] == "running":
        eta = duration(p.get("eta_seconds"))
        note = "" if p.get("eta_includes_evals") is not False else \
            " (steps only: no evaluation timed yet)"
        lines.append(f"  ETA {eta}{note}" if p.get("eta_seconds") is not None else
                     "  ETA - (measuring the step time)")
    if job.get("error"):
        lines.append(f"  error: {job['error']}")
    for w in job.get("warnings") or []:
        lines.append(f"  warning: {w}")
    if job.get("storage_bytes"):
        lines.append(f"  files: {size_text(job['storage_bytes'])}")
    lines.extend(attempt_text(a) for a in job.get("attempts_history") or [])
    summary = job.get("summary") or {}
    for key in ("elbo", "iwae", "rate", "distortion", "bits_per_dim", "active_units",
                "mutual_information"):
        if isinstance(summary.get(key), int | float):
            lines.append(f"  {key:>20}: {summary[key]:.4f}")
    return "\n".join(lines)


def attempt_text(a: dict[str, Any]) -> str:
    """One line of a job's attempt history: ``attempt 1: worker_lost at step 40 (from 0) on
    w1 — worker lost …``."""
    end = a.get("ended") or "running"
    at = a.get("end_step") if a.get("ended") else None
    where = f" at step {at}" if at is not None else ""
    start = f" (from {a['start_step']})" if a.get("start_step") is not None else ""
    msg = f" - {a['message'].splitlines()[0]}" if a.get("message") else ""
    return f"  attempt {a['attempt']}: {end}{where}{start} on {a.get('worker') or '?'}{msg}"


def progress_text(job: dict[str, Any]) -> str:
    p = job["progress"]
    return f"{p['step']}/{p['total_steps']}" if p["total_steps"] else "-"


def params_text(params: dict[str, Any] | None) -> str:
    """A sweep point's values by their last path component (``beta=0.3 seed=1``), or by
    the whole path where two components share a name."""
    if not params:
        return ""
    last = [k.rsplit(".", 1)[-1] for k in params]
    names = [k if last.count(k.rsplit(".", 1)[-1]) > 1 else k.rsplit(".", 1)[-1]
             for k in params]
    return " ".join(f"{n}={v}" for n, v in zip(names, params.values(), strict=True))


def size_text(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def counts_text(sw: dict[str, Any]) -> str:
    return ", ".join(f"{n} {s}" for s, n in sw["progress"]["counts"].items() if n) or "no jobs"


def sweep_text(sw: dict[str, Any]) -> str:
    lines = [f"sweep {sw['id']} ({sw['name']}, {sw['owner']}): {sw['status']}, "
             f"{sw['progress']['finished']}/{sw['progress']['total']} finished "
             f"({counts_text(sw)})",
             f"  varied: {', '.join(sw['varied']) or '-'}",
             f"  {'job':8}  {'status':9}  {'progress':>13}  params"]
    for sj in sw["jobs"]:
        j = sj["job"]
        lines.append(f"  {j['id'][:8]}  {j['status']:9}  {progress_text(j):>13}  "
                     f"{params_text(sj['params'])}")
    return "\n".join(lines)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else \
        f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
