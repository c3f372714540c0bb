"""The HTTP client behind the ``vaelab`` client commands, and the reader of a job's event
stream (Server-Sent Events, decoded by httpx-sse)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from httpx_sse import EventSource

# pauses between reconnection attempts (then the last, forever); statuses worth a retry
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 10.0)
RETRY_STATUSES = frozenset({502, 503, 504})


class ApiError(RuntimeError):
    def __init__(self, status: int, detail: Any):
        self.status, self.detail = status, detail
        if isinstance(detail, list):
            text = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in detail
                             if isinstance(d, dict))
            msg = f"HTTP {status}: invalid request: {text}"
        else:
            msg = f"HTTP {status}: {detail}"
        if status == 401:
            msg += (" (set VAELAB_TOKEN, or run `vaelab login --url URL --token TOKEN`; an "
                    "admin creates tokens with `vaelab tokens create --user NAME`)")
        super().__init__(msg)


class Client:
    """The API at ``url`` (default: :func:`service.clientconfig.resolve`) with ``token``
    (default: ``VAELAB_TOKEN``, ``vaelab login``'s, or the local server's admin token)."""

    def __init__(self, url: str | None = None, token: str | None = None,
                 timeout: float = 30.0):
        from service.clientconfig import resolve

        found_url, found_token = resolve(url)
        self.url = found_url.rstrip("/")
        token = token or found_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def _json(self, resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail")
            except (ValueError, AttributeError):
                detail = " ".join(resp.text.split())[:200] or resp.reason_phrase
            raise ApiError(resp.status_code, detail)
        try:
            return resp.json()
        except ValueError:
            raise ApiError(resp.status_code, f"{resp.request.url} did not answer JSON "
                           "(is --url a vaelab API?)") from None

    def submit(self, spec: dict, priority: int = 0, tags: list[str] | None = None,
               device: str = "auto") -> dict:
        body = {"spec": spec, "priority": priority, "tags": tags or [],
                "resources": {"device": device}}
        return self._json(self.http.post("/api/v1/jobs", json=body))

    def _list(self, path: str, filters: dict[str, Any]) -> dict:
        params = {k: v for k, v in filters.items() if v is not None}  # unset filters left out
        return self._json(self.http.get(path, params=params))

    def jobs(self, **filters: Any) -> dict:
        return self._list("/api/v1/jobs", filters)

    def job(self, job_id: str) -> dict:
        return self._json(self.http.get(f"/api/v1/jobs/{job_id}"))

    def _delete(self, path: str) -> None:
        resp = self.http.delete(path)
        if resp.status_code >= 400:
            self._json(resp)  # raises ApiError with the server's reason

    def delete_job(self, job_id: str) -> None:
        self._delete(f"/api/v1/jobs/{job_id}")

    def upload_dataset(self, path: str, name: str) -> dict:
        """Stream a local ``.npz`` to ``POST /api/v1/datasets``."""
        with open(path, "rb") as fh:
            return self._json(self.http.post(
                "/api/v1/datasets", params={"name": name}, content=fh,
                headers={"Content-Type": "application/octet-stream"},
                timeout=httpx.Timeout(30.0, write=600.0, read=600.0)))

    def datasets(self, **filters: Any) -> dict:
        return self._list("/api/v1/datasets", filters)

    def dataset(self, ref: str) -> dict:
        return self._json(self.http.get(f"/api/v1/datasets/{ref}"))

    def delete_dataset(self, ref: str) -> None:
        self._delete(f"/api/v1/datasets/{ref}")

    # users and tokens (service/api/routes/users.py)
    def create_user(self, body: dict) -> dict:
        return self._json(self.http.post("/api/v1/users", json=body))

    def users(self) -> list[dict]:
        return self._json(self.http.get("/api/v1/users"))

    def me(self) -> dict:
        return self._json(self.http.get("/api/v1/users/me"))

    def update_user(self, name: str, fields: dict) -> dict:
        return self._json(self.http.patch(f"/api/v1/users/{name}", json=fields))

    def create_token(self, user: str | None = None, expires_days: float | None = None) -> dict:
        return self._json(self.http.post("/api/v1/tokens", json={
            "user": user, "expires_days": expires_days}))

    def tokens(self, user: str | None = None) -> list[dict]:
        return self._list("/api/v1/tokens", {"user": user})

    def revoke_token(self, token_id: str) -> dict:
        return self._json(self.http.delete(f"/api/v1/tokens/{token_id}"))

    def storage(self) -> dict:
        return self._json(self.http.get("/api/v1/storage"))

    def queue(self) -> dict:
        return self._json(self.http.get("/api/v1/queue"))

    def preempt(self, job_id: str) -> dict:
        return self._json(self.http.post(f"/api/v1/jobs/{job_id}/preempt"))

    def cancel(self, job_id: str) -> dict:
        return self._json(self.http.post(f"/api/v1/jobs/{job_id}/cancel"))

    def metrics(self, job_id: str, **params: Any) -> dict:
        params = {k: v for k, v in params.items() if v is not None}
        return self._json(self.http.get(f"/api/v1/jobs/{job_id}/metrics", params=params))

    def create_sweep(self, body: dict) -> dict:
        return self._json(self.http.post("/api/v1/sweeps", json=body))

    def sweep(self, sweep_id: str) -> dict:
        return self._json(self.http.get(f"/api/v1/sweeps/{sweep_id}"))

    def sweeps(self, **filters: Any) -> dict:
        params = {k: v for k, v in filters.items() if v is not None}
        return self._json(self.http.get("/api/v1/sweeps", params=params))

    def cancel_sweep(self, sweep_id: str) -> dict:
        return self._json(self.http.post(f"/api/v1/sweeps/{sweep_id}/cancel"))

    def sweep_rd(self, sweep_id: str, fmt: str = "json") -> Any:
        resp = self.http.get(f"/api/v1/sweeps/{sweep_id}/rate-distortion",
                             params={"format": fmt})
        return self._json(resp) if fmt == "json" else self._bytes(resp)

    def job_rd(self, job_id: str, step: int | None = None) -> dict:
        params = {"step": step} if step is not None else {}
        return self._json(self.http.get(f"/api/v1/jobs/{job_id}/rate-distortion",
                                        params=params))

    def download_checkpoint(self, job_id: str, out, step: int | None = None) -> dict:  # noqa: ANN001
        """Stream a checkpoint into the open binary file ``out``; returns its headers."""
        which = "latest" if step is None else str(step)
        with self.http.stream("GET", f"/api/v1/jobs/{job_id}/checkpoints/{which}") as resp:
            if resp.status_code >= 400:
                resp.read()
                self._json(resp)
            for chunk in resp.iter_bytes():
                out.write(chunk)
            return dict(resp.headers)

    def _bytes(self, resp: httpx.Response) -> bytes:
        if resp.status_code >= 400:
            self._json(resp)
        return resp.content

    def events(self, job_id: str, last_event_id: str | None = None,
               reconnect: bool = True, on_wait: Callable[[str, float], None] | None = None,
               ) -> Iterator[tuple[str, dict, str | None]]:
        """Yield ``(event, data, id)`` until the ``end`` event. A dropped connection, an API
        that is down or restarting (connection refused, 502/503/504) is retried with
        ``Last-Event-ID`` after a growing pause (:data:`BACKOFF_S`), telling ``on_wait``
        why and for how long; other HTTP errors, and an ``error`` event (the server ended
        the stream, e.g. its token was revoked: 401), raise :class:`ApiError`."""
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            try:
                with self.http.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=headers,
                                      timeout=httpx.Timeout(30.0, read=60.0)) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        self._json(resp)
                    for event, data, eid in read_events(resp):
                        if event == "error":  # the server closed it (a revoked token)
                            raise ApiError(int(data.get("status") or 500), data.get("detail"))
                        failures = 0
                        if eid is not None:
                            last_event_id = eid
                        yield event, data, eid
                        if event == "end":
                            return
                    why = "the API closed the stream"
            except (httpx.TransportError, ApiError) as exc:
                why = retry_reason(exc)
                if not reconnect or why is None:
                    raise
            backoff(failures, why, on_wait)
            failures += 1

    def retrying(self, call: Callable[[], Any],
                 on_wait: Callable[[str, float], None] | None = None) -> Any:
        """``call()`` retried like :meth:`events` while the API is unreachable or
        restarting."""
        failures = 0
        while True:
            try:
                return call()
            except (httpx.TransportError, ApiError) as exc:
                why = retry_reason(exc)
                if why is None:
                    raise
            backoff(failures, why, on_wait)
            failures += 1


def retry_reason(exc: Exception) -> str | None:
    """Why a failed call is worth retrying (the API is unreachable or restarting), or None."""
    if isinstance(exc, httpx.TransportError):
        return f"connection lost ({type(exc).__name__})"
    if isinstance(exc, ApiError) and exc.status in RETRY_STATUSES:
        return f"the API answered {exc.status}"
    return None


def backoff(failures: int, why: str, on_wait: Callable[[str, float], None] | None) -> None:
    """Sleep the pause of the ``failures``-th retry (:data:`BACKOFF_S`), telling ``on_wait``."""
    pause = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
    if on_wait is not None:
        on_wait(why, pause)
    time.sleep(pause)


def read_events(resp: httpx.Response) -> Iterator[tuple[str, dict, str | None]]:
    """``(event, data, id)`` for each event of an open ``text/event-stream`` response, data
    decoded from JSON; ``id`` is the stream's last event id so far (None before the first),
    the value to send as ``Last-Event-ID`` to resume after it."""
    for sse in EventSource(resp).iter_sse():
        if not sse.data:  # the server's retry hint: it carries no event for the caller
            continue
        yield sse.event, sse.json(), sse.id or None
