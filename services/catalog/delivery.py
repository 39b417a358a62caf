"""The delivery worker: sends due webhook deliveries from the outbox, signed, with retries.

An asyncio task in the catalog process. Each round it claims up to ``batch_size`` due
deliveries in a short transaction (leasing them, so another catalog replica skips them), POSTs
them concurrently with a timeout per attempt, and records each outcome in another short
transaction: a 2xx is delivered; anything else is retried on the schedule of
``webhooks.RetrySchedule``. Delivery is at least once: a process that dies mid-attempt leaves
the delivery due again when its lease ends, and receivers deduplicate by ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from services.catalog.db import Database
from services.catalog.repository import CatalogRepository
from services.catalog.webhooks import (
    AttemptOutcome,
    RetrySchedule,
    message_body,
    record_attempt,
    refused_target,
    resolve_host,
    signed_headers,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One claimed delivery with what it takes to send it (read inside the claim)."""

    delivery_id: str
    event_id: str
    url: str
    secret: str
    body: bytes


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        client: httpx.AsyncClient,
        schedule: RetrySchedule,
        *,
        clock: Callable[[], datetime],
        poll_interval: float = 1.0,
        attempt_timeout: float = 10.0,
        batch_size: int = 20,
        allow_private_targets: bool = True,
        retention: timedelta = timedelta(days=30),
        sweep_every: float = 600.0,
    ) -> None:
        self.db = db
        self.client = client
        self.schedule = schedule
        self.clock = clock
        self.poll_interval = poll_interval
        self.attempt_timeout = attempt_timeout
        self.batch_size = batch_size
        self.allow_private_targets = allow_private_targets
        self.retention = retention
        self.sweep_every = sweep_every
        self._last_sweep = time.monotonic()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = await self.run_once()
                if time.monotonic() - self._last_sweep >= self.sweep_every:
                    self._last_sweep = time.monotonic()
                    await asyncio.to_thread(self.sweep)
            except Exception:
                logger.exception("webhook delivery round failed")
                sent = 0
            if sent:
                continue  # more may be due: claim again at once
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await _first(self._stop.wait(), self._wake.wait())
            self._wake.clear()

    async def run_once(self) -> int:
        """Claim and send one batch of due deliveries; returns how many were attempted."""
        jobs = await asyncio.to_thread(self._claim)
        if not jobs:
            return 0
        outcomes = await asyncio.gather(*(self._attempt(job) for job in jobs))
        await asyncio.to_thread(self._record, list(zip(jobs, outcomes, strict=True)))
        return len(jobs)

    def sweep(self) -> int:
        """Forget events older than the retention whose deliveries are all settled."""
        with self.db.transaction(write=True) as session:
            return CatalogRepository(session).sweep_webhook_events(self.clock() - self.retention)

    def _claim(self) -> list[Job]:
        now = self.clock()
        # Long enough for the attempt and for recording it; a crash leaves it due after this.
        lease = now + timedelta(seconds=self.attempt_timeout * 3 + 30)
        with self.db.transaction(write=False) as session:
            if not CatalogRepository(session).has_due_deliveries(now):
                return []
        with self.db.transaction(write=True) as session:
            claimed = CatalogRepository(session).claim_due_deliveries(now, lease, self.batch_size)
            return [
                Job(
                    delivery_id=delivery.id,
                    event_id=event.id,
                    url=webhook.url,
                    secret=webhook.secret,
                    body=message_body(event.type, event.created_at, event.data),
                )
                for delivery, event, webhook in claimed
            ]

    async def _attempt(self, job: Job) -> AttemptOutcome:
        """One attempt's outcome. It never raises (cancellation aside): ``run_once`` gathers
        the batch, so one job's exception (``httpx.InvalidURL`` for a URL the client cannot
        parse is no ``HTTPError``) would lose the whole round's outcomes, every delivery in it
        sent again when its lease ends, and the faulty one retried that way forever."""
        started = time.perf_counter()
        try:
            return await self._send(job, started)
        except Exception as exc:
            logger.exception(
                "webhook delivery attempt failed", extra={"delivery_id": job.delivery_id}
            )
            elapsed = int((time.perf_counter() - started) * 1000)
            return AttemptOutcome(None, f"{type(exc).__name__}: {exc}"[:500], elapsed)

    async def _send(self, job: Job, started: float) -> AttemptOutcome:
        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        if not self.allow_private_targets:
            # Checked again at send time: the name may resolve elsewhere than at registration.
            reason = await asyncio.to_thread(refused_target, job.url, resolve_host)
            if reason is not None:
                return AttemptOutcome(None, f"refused target: {reason}", elapsed())
        headers = signed_headers(job.secret, job.event_id, self.clock(), job.body)
        try:
            # Streamed and closed unread: only the status counts, and a receiver's body, of
            # any size, never lands in our memory.
            async with self.client.stream(
                "POST", job.url, content=job.body, headers=headers, timeout=self.attempt_timeout
            ) as response:
                status = response.status_code
        except httpx.TimeoutException:
            return AttemptOutcome(None, f"timed out after {self.attempt_timeout:g} s", elapsed())
        except httpx.HTTPError as exc:
            return AttemptOutcome(None, f"{type(exc).__name__}: {exc}"[:500], elapsed())
        return AttemptOutcome(status, None, elapsed())

    def _record(self, results: list[tuple[Job, AttemptOutcome]]) -> None:
        now = self.clock()
        with self.db.transaction(write=True) as session:
            repo = CatalogRepository(session)
            for job, outcome in results:
                row = record_attempt(repo, job.delivery_id, outcome, now, self.schedule)
                if row is not None and row.status == "failed":
                    logger.warning(
                        "webhook delivery gave up",
                        extra={"delivery_id": job.delivery_id, "attempts": row.attempts},
                    )


async def _first(*waits: object) -> None:
    """Return when the first of the awaitables finishes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
