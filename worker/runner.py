"""One attempt at one job: claim it, heartbeat, train, record the outcome.

Outcomes: completed → ``succeeded``; stopped after a cancel request → ``cancelled`` (the
engine wrote a checkpoint); stopped because the dispatcher preempted it → back to waiting
(counted in ``preemptions``, not in ``attempts``), resuming exactly from that checkpoint when
released again; stopped because this process got SIGTERM → back to waiting the same way (the
dispatcher releases it again: nothing here sends to the broker), and then the pool child
exits so billiard starts a fresh one (a process that got SIGTERM never lingers rejecting
messages); a user error (``VaelabError``: bad spec, bad data, non-finite loss) → ``failed``
and never retried. Through a database outage the attempt trains on (:mod:`worker.outage`);
one longer than ``VAELAB_WORKER_DB_GRACE_S`` ends it as ``database_lost``, back to waiting
without using up an attempt. If the reaper took the job away (our lease is gone), nothing
is recorded: every write of the attempt is fenced by its lease
(``service.db.attempts.LeaseLost``), and the attempt stops at its next step.
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
from service.core.queue import forget_deliveries
from service.core.redact import without_server_paths
from service.core.retention import keep_last
from service.db import attempts
from service.db import jobs as jobs_db
from service.db import scheduling as sched_db
from service.db.artifacts import latest_checkpoint
from service.db.models import TERMINAL
from service.db.session import UNAVAILABLE, DatabaseError, get_engine, session_scope
from worker.artifacts import SqlArtifacts
from worker.outage import retry_db
from worker.shutdown import parent_stopping
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
        self.steps = 0  # should_stop calls: the steps this attempt ran
        self.steps_at_beat = 0  # self.steps at the last heartbeat that found the lease held
        self.preempt = False
        self._stop_event = threading.Event()

    def should_stop(self) -> bool:
        self.steps += 1
        self.lost = self.lost or self.sink.lost
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
            except UNAVAILABLE as exc:  # an outage: the attempt trains on; one line a beat
                log.warning("heartbeat for job %s: database unavailable (%s)", self.job_id,
                            type(exc).__name__)
            except Exception:  # noqa: BLE001 - a transient DB error must not kill the thread
                log.exception("heartbeat for job %s failed", self.job_id)

    def beat(self) -> None:
        with session_scope(self.url) as s:
            if not jobs_db.beat(s, self.job_id, self.lease, self.sink.step):
                self.lost = True
            else:
                self.steps_at_beat = self.steps
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
        except attempts.LeaseLost:
            pass  # taken over: the training stops at its next step
        except Exception:  # noqa: BLE001 - a warning must never stop the training
            log.exception("could not store an engine warning")

    def __enter__(self) -> EngineWarnings:
        logging.getLogger("vae_engine").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("vae_engine").removeHandler(self)


def run_job(job_id: str, settings: Settings, worker: str = "worker",
            delivery_tag: str | None = None) -> str:
    if SHUTTING_DOWN:
        # this worker got SIGTERM while a message was prefetched: hand it back untouched
        from celery.exceptions import Reject

        raise Reject("worker shutting down", requeue=True)
    jid = uuid.UUID(job_id)
    lease = str(uuid.uuid4())
    with session_scope(settings.db_url) as s:
        claimed = jobs_db.claim(s, jid, lease, worker, settings.reaper_stale_after_s,
                                settings.max_attempts, delivery_tag=delivery_tag)
        job = jobs_db.get_job(s, jid)
        status = job.status if job else "missing"
        if claimed:
            spec_dict, device, recorded = dict(job.spec), job.device, job.input_sha256
        # the messages of earlier attempts (a killed worker's, left unacked) are stale once
        # this attempt holds the job or the job has ended
        stale = (attempts.stale_delivery_tags(s, jid, lease) if claimed or status in TERMINAL
                 else [])
    forget_deliveries(settings, stale)
    if not claimed:
        log.info("job %s not claimed (status %s); dropping the message", job_id, status)
        return f"skipped:{status}"

    engine = get_engine(settings.db_url)
    grace = settings.worker_db_grace_s
    sink = SqlMetricSink(
        engine, jid, lease, settings.metric_batch_points, settings.metric_batch_seconds,
        outage_grace_s=grace,
    )
    artifacts = SqlArtifacts(engine, settings.artifacts, jid,
                             keep_last(spec_dict, settings.checkpoint_keep_last), lease,
                             outage_grace_s=grace)
    resume_from = latest_checkpoint(engine, settings.artifacts, jid)
    hb = Heartbeat(settings, jid, lease, sink)
    hb.start()
    warnings = EngineWarnings(lambda ws: jobs_db.record_progress_now(
        engine, jid, lease, warnings=[without_server_paths(w, settings, jid) for w in ws]))
    global CURRENT
    CURRENT = hb
    previous = _install_sigterm()
    try:
        with warnings:
            outcome, values = _train(spec_dict, device, sink, artifacts, resume_from, hb,
                                     inputs=(recorded, settings.datasets))
    except UNAVAILABLE:
        # the database stayed away past the grace: wait for it once more, then give the
        # job back without counting this attempt (or leave it to the reaper)
        log.exception("job %s: database lost for over %.0f s", job_id, grace)
        outcome, values = "database_lost", {}
    finally:
        CURRENT = None
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        hb.stop()
        try:
            sink.flush()
        except attempts.LeaseLost:
            pass
        except Exception:  # noqa: BLE001
            log.exception("job %s: final metric flush failed", job_id)
    if values.get("error"):  # users read it: no absolute server paths
        values["error"] = without_server_paths(values["error"], settings, jid)
    if outcome == "lost" or (hb.lost and outcome != "succeeded"):
        log.warning("job %s: lease lost (taken over); stopped at step %d, %d step(s) after "
                    "its last heartbeat; not recording %s", job_id, sink.step,
                    hb.steps - hb.steps_at_beat, outcome)
        return _done("lost")
    # the outcome is worth waiting for longer than a write during training
    if outcome == "interrupted" and hb.preempt and not hb.shutdown:
        outcome = "preempted"
    ok = retry_db(lambda: _record(settings, jid, lease, outcome, values, sink.step),
                  max(grace, 60.0),
                  f"job {job_id}: recording {outcome}")
    log.info("job %s: %s%s", job_id, outcome, "" if ok else " (not recorded: lease lost)")
    _release_gpu_memory()
    return _done(outcome)


REQUEUED = {  # outcome -> (end reason, message)
    "interrupted": ("shut_down", "worker shut down; waiting again"),
    "database_lost": ("database_lost", "database lost during the attempt; waiting again "
                                       "(not counted as an attempt)"),
}


def _record(settings: Settings, jid: uuid.UUID, lease: str, outcome: str, values: dict,
            step: int) -> bool:
    """The attempt's outcome, if it still holds the lease. A job going back to waiting is
    released again by the dispatcher."""
    with session_scope(settings.db_url) as s:
        if outcome == "preempted":
            return sched_db.finish_preempted(s, jid, lease, step)
        if outcome in REQUEUED:
            return jobs_db.requeue_attempt(s, jid, lease, *REQUEUED[outcome])
        return jobs_db.finish(s, jid, lease, outcome, **values)


def _done(outcome: str) -> str:
    """After SIGTERM the pool child exits once its attempt is recorded, so billiard starts a
    fresh one (Celery's cancel and billiard's terminate expect the child to go); a child
    that stayed would reject every later message. When the SIGTERM came from its own worker
    stopping (:mod:`worker.shutdown`), the task returns instead: the closing pool ends the
    child, and the message is acked rather than reported lost."""
    if SHUTTING_DOWN:
        if parent_stopping():
            log.info("pool child %d: job given back (%s); the worker is stopping",
                     os.getpid(), outcome)
            return outcome
        log.info("pool child %d: exiting after SIGTERM (attempt recorded: %s)", os.getpid(),
                 outcome)
        logging.shutdown()
        os._exit(0)
    return outcome


def _train(spec_dict, device, sink, artifacts, resume_from, hb, inputs=None):  # noqa: ANN001, ANN202
    """``inputs``: (the checksums recorded at submit, the dataset root): the user files are
    opened safely and verified first (:mod:`service.core.inputs`) and the engine reads them
    through the open descriptors; a message naming a descriptor names the file instead."""
    from service.core.inputs import name_descriptors

    outcome, values = _train_opened(spec_dict, device, sink, artifacts, resume_from, hb,
                                    inputs, opened := {})
    if values.get("error") and opened:
        values["error"] = name_descriptors(values["error"], spec_dict, opened)
    return outcome, values


def _train_opened(spec_dict, device, sink, artifacts, resume_from, hb, inputs, opened):  # noqa: ANN001, ANN202
    from service.core.inputs import InputChanged, open_inputs
    from vae_engine import train
    from vae_engine.errors import NonFiniteLossError, VaelabError
    from vae_engine.spec import parse_spec

    fds: list[int] = []
    try:
        if inputs is not None:
            read, fds = open_inputs(spec_dict, *inputs)
            opened.update(read)
        spec = parse_spec(spec_dict)
        result = train(
            spec, sink, artifacts, resume_from=resume_from, should_stop=hb.should_stop,
            device=None if device == "auto" else device, read_files=opened,
        )
    except attempts.LeaseLost:
        return "lost", {}  # taken over: this attempt writes nothing more
    except InputChanged as exc:
        return "failed", {"error": f"input file refused: {exc}"}
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
    finally:
        for fd in fds:
            os.close(fd)
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

