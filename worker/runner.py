"""One attempt at one job: claim it, heartbeat, train, record the outcome.

Outcomes: completed → ``succeeded``; stopped after a cancel request → ``cancelled`` (the
engine wrote a checkpoint); stopped because the dispatcher preempted it → back to waiting
(counted in ``preemptions``), resuming exactly from that checkpoint when released again;
stopped because this worker is shutting down (SIGTERM) → back to waiting, the same way (the
dispatcher releases it again: nothing here sends to the broker); a user error
(``VaelabError``: bad spec, bad data, non-finite loss) → ``failed`` and never retried.
If the reaper took the job away (our lease is gone), nothing is recorded.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import traceback
import uuid
from collections.abc import Callable

from service.core.config import Settings
from service.core.retention import keep_last
from service.db import jobs as jobs_db
from service.db import scheduling as sched_db
from service.db.artifacts import latest_checkpoint
from service.db.session import DatabaseError, get_engine, session_scope
from worker.artifacts import SqlArtifacts
from worker.sink import SqlMetricSink

log = logging.getLogger(__name__)

CURRENT: Heartbeat | None = None  # the job this process is running, for on_sigterm
SHUTTING_DOWN = False  # set by SIGTERM: take no further job in this process


class Heartbeat(threading.Thread):
    """Writes ``heartbeat_at`` every ``interval`` and refreshes the cancel flag every
    ``poll`` seconds; :meth:`should_stop` only reads cached values (called every step)."""

    def __init__(self, settings: Settings, job_id: uuid.UUID, lease: str, sink: SqlMetricSink):
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.url = settings.db_url
        self.job_id, self.lease, self.sink = job_id, lease, sink
        self.interval = settings.heartbeat_interval_s
        self.poll = min(settings.cancel_poll_s, self.interval)
        self.cancel = False
        self.lost = False
        self.shutdown = False
        self.preempt = False
        self._stop_event = threading.Event()

    def should_stop(self) -> bool:
        return self.cancel or self.lost or self.shutdown or self.preempt

    def run(self) -> None:
        last_beat = 0.0
        clock = 0.0
        while not self._stop_event.wait(self.poll):
            clock += self.poll
            try:
                self.sink.flush_if_due()
                if clock - last_beat >= self.interval:
                    last_beat = clock
                    self.beat()
                else:
                    self.refresh()
            except Exception:  # noqa: BLE001 - a transient DB error must not kill the thread
                log.exception("heartbeat for job %s failed", self.job_id)

    def beat(self) -> None:
        with session_scope(self.url) as s:
            if not jobs_db.beat(s, self.job_id, self.lease, self.sink.step):
                self.lost = True
        self.refresh()

    def refresh(self) -> None:
        with session_scope(self.url) as s:
            lost, cancel = jobs_db.attempt_flags(s, self.job_id, self.lease)
            preempt = not lost and sched_db.preempt_flag(s, self.job_id, self.lease)
        self.preempt = self.preempt or preempt
        self.lost = self.lost or lost
        self.cancel = self.cancel or cancel

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


class EngineWarnings(logging.Handler):
    """While in its ``with`` block, collects the engine's warnings (``vae_engine`` loggers,
    e.g. a Bernoulli likelihood on non-binary data) and stores each new one with the job,
    so ``status`` and ``--watch`` show them, not only the worker's log."""

    def __init__(self, store: Callable[[list[str]], None]):
        super().__init__(level=logging.WARNING)
        self.store, self.seen = store, []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg in self.seen:
            return
        self.seen.append(msg)
        try:
            self.store(list(self.seen))
        except Exception:  # noqa: BLE001 - a warning must never stop the training
            log.exception("could not store an engine warning")

    def __enter__(self) -> EngineWarnings:
        logging.getLogger("vae_engine").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("vae_engine").removeHandler(self)


def run_job(job_id: str, settings: Settings, worker: str = "worker") -> str:
    if SHUTTING_DOWN:
        # this worker got SIGTERM while a message was prefetched: hand it back untouched
        from celery.exceptions import Reject

        raise Reject("worker shutting down", requeue=True)
    jid = uuid.UUID(job_id)
    lease = str(uuid.uuid4())
    with session_scope(settings.db_url) as s:
        if not jobs_db.claim(s, jid, lease, worker, settings.reaper_stale_after_s,
                             settings.max_attempts):
            job = jobs_db.get_job(s, jid)
            status = job.status if job else "missing"
            log.info("job %s not claimed (status %s); dropping the message", job_id, status)
            return f"skipped:{status}"
        job = jobs_db.get_job(s, jid)
        spec_dict, device = dict(job.spec), job.device

    engine = get_engine(settings.db_url)
    sink = SqlMetricSink(
        engine, jid, lease, settings.metric_batch_points, settings.metric_batch_seconds
    )
    artifacts = SqlArtifacts(engine, settings.artifacts, jid,
                             keep_last(spec_dict, settings.checkpoint_keep_last))
    resume_from = latest_checkpoint(engine, settings.artifacts, jid)
    hb = Heartbeat(settings, jid, lease, sink)
    hb.start()
    warnings = EngineWarnings(lambda ws: jobs_db.record_progress_now(
        engine, jid, lease, warnings=ws))
    global CURRENT
    CURRENT = hb
    previous = _install_sigterm()
    try:
        with warnings:
            outcome, values = _train(spec_dict, device, sink, artifacts, resume_from, hb)
    finally:
        CURRENT = None
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        hb.stop()
        try:
            sink.flush()
        except Exception:  # noqa: BLE001
            log.exception("job %s: final metric flush failed", job_id)
    if hb.lost and outcome != "succeeded":
        log.warning("job %s: lease lost (reaped); not recording %s", job_id, outcome)
        return "lost"
    with session_scope(settings.db_url) as s:
        if outcome == "interrupted" and hb.preempt and not hb.shutdown:
            outcome = "preempted"
            ok = sched_db.finish_preempted(s, jid, lease, sink.step)
        elif outcome == "interrupted":
            ok = jobs_db.finish(s, jid, lease, "queued", error="worker shut down; waiting again")
        else:
            ok = jobs_db.finish(s, jid, lease, outcome, **values)
    log.info("job %s: %s%s", job_id, outcome, "" if ok else " (not recorded: lease lost)")
    _release_gpu_memory()
    return outcome


def _train(spec_dict, device, sink, artifacts, resume_from, hb):  # noqa: ANN001, ANN202
    from vae_engine import train
    from vae_engine.errors import NonFiniteLossError, VaelabError
    from vae_engine.spec import parse_spec

    try:
        spec = parse_spec(spec_dict)
        result = train(
            spec, sink, artifacts, resume_from=resume_from, should_stop=hb.should_stop,
            device=None if device == "auto" else device,
        )
    except NonFiniteLossError as exc:
        return "failed", {"error": str(exc), "step": exc.step}
    except VaelabError as exc:
        return "failed", {"error": str(exc)}
    except DatabaseError:
        # infrastructure (e.g. the sink lost the database), not a training failure: let it
        # propagate. The job stays `running` with our lease while the heartbeat stops, so the
        # reaper (or a retried/redelivered message, via claim) takes it over once the
        # heartbeat is stale, resuming from the last checkpoint, within max_attempts.
        raise
    except Exception as exc:  # noqa: BLE001 - a bug or a crash in training: record it
        log.exception("job crashed")
        tb = traceback.format_exc(limit=5)
        return "failed", {"error": f"{type(exc).__name__}: {exc}\n{tb}"}
    if result.status == "completed":
        return "succeeded", {"step": result.step, "total_steps": result.total_steps,
                             "summary": _json_safe(result.summary), "cancel_requested": False}
    if hb.cancel:
        return "cancelled", {"step": result.step, "error": None}
    return "interrupted", {}


def _json_safe(obj):  # noqa: ANN001, ANN202
    import json

    from vae_engine.io import dumps

    return None if obj is None else json.loads(dumps(obj))


def _install_sigterm():  # noqa: ANN202
    # installed per job (billiard resets a child's handlers after its init hooks)
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, on_sigterm)


def on_sigterm(_signum, _frame) -> None:  # noqa: ANN001
    """SIGTERM in a pool child (serve's Ctrl-C, docker stop): a running job checkpoints at
    its next step and is requeued; an idle child just exits."""
    global SHUTTING_DOWN
    SHUTTING_DOWN = True
    if CURRENT is not None:
        CURRENT.shutdown = True
    else:
        os._exit(0)


def _release_gpu_memory() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()

