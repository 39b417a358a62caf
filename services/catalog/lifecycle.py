"""Demand lifecycle and match outcomes: plain Python, no HTTP.

A demand's ``status`` is managed by the server, never set by PATCH::

    open ──contacted/visited──▶ matched ──contracted──▶ in_progress ──completed──▶ closed
      │                            │                                                  ▲
      └──────── past expires_at ───┴──▶ expired ──renew──▶ open        close (any) ───┘

- **Outcomes** (``viewed``, ``contacted``, ``visited``, ``contracted``, ``completed``,
  ``declined``) record what happened to the match of a demand with one supplier. They are a
  history: never changed, kept when the demand or supplier goes. Each is written to the change
  log (resource ``match_outcome``) in the same transaction, so matching learns of it. An outcome
  moves an active demand (open, matched, in progress) forward, never back: contacted or visited
  → matched, contracted → in progress, completed → closed. Outcomes of closed or expired
  demands are recorded and move nothing (renew an expired demand first).
- **Close** (any status but closed, with an optional reason) and **renew** (open, matched or
  expired: re-opens and moves ``expires_at`` on) are explicit; anything else is a conflict that
  names the current status.
- **Expiry**: a demand gets ``expires_at`` = creation time + ``DEMAND_LIFETIME_DAYS``. A sweeper
  (``sweep_expired_demands``, run by the catalog app every ``DEMAND_EXPIRY_SWEEP_SECONDS``)
  marks open and matched demands past it expired through the versioned write path, so the
  change log, matching and webhooks see the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from services.catalog import schemas as s
from services.catalog.models import Demand, MatchOutcome, Supplier
from services.catalog.pagination import decode_cursor, encode_cursor
from services.catalog.service import SPECS, CatalogService, _VersionedWrite
from services.shared.errors import ConflictError, FieldIssue, InvalidInputError

logger = logging.getLogger(__name__)

ACTIVE = ("open", "matched", "in_progress")
"""Statuses outcomes move forward."""
EXPIRABLE = ("open", "matched")
"""Statuses the sweeper expires: nobody is working on the demand yet."""
RENEWABLE = ("open", "matched", "expired")

_PROGRESS = {"open": 0, "matched": 1, "in_progress": 2, "closed": 3}
_OUTCOME_TARGET = {
    "contacted": "matched",
    "visited": "matched",
    "contracted": "in_progress",
    "completed": "closed",
}
FUTURE_TOLERANCE = timedelta(minutes=5)
"""How far ahead of the catalog's clock ``recorded_at`` may be (callers' clocks drift)."""


# ---------------------------------------------------------------- pure rules


def status_after_outcome(current: str, outcome: str) -> str:
    """The demand's status once ``outcome`` is recorded: forward only, active demands only."""
    target = _OUTCOME_TARGET.get(outcome)
    if target is None or current not in ACTIVE:
        return current
    return target if _PROGRESS[target] > _PROGRESS[current] else current


def is_overdue(status: str, expires_at: datetime | None, now: datetime) -> bool:
    """Whether the sweeper expires a demand in ``status`` expiring at ``expires_at``."""
    return status in EXPIRABLE and expires_at is not None and expires_at <= now


def _conflict(demand_id: str, status: str, action: str, allowed: tuple[str, ...]) -> ConflictError:
    return ConflictError(
        f"Demand '{demand_id}' is {status}: only a demand that is "
        f"{', '.join(allowed[:-1])} or {allowed[-1]} can be {action}."
        if len(allowed) > 1
        else f"Demand '{demand_id}' is {status}: it cannot be {action}."
    )


# ---------------------------------------------------------------- the service


class DemandLifecycle:
    """Transitions of demands and the outcomes of their matches, on a ``CatalogService``'s
    repository, clock and ID factory (so they share its transaction and change log)."""

    def __init__(self, catalog: CatalogService) -> None:
        self.catalog = catalog
        self.repo = catalog.repo

    # ------------------------------------------------------------ transitions

    def close(self, demand_id: str, reason: str | None) -> tuple[s.DemandRead, int]:
        tx = _VersionedWrite(self.repo, self.catalog.clock(), self.catalog.new_id)
        demand = self._demand(demand_id)
        if demand.status == "closed":
            raise ConflictError(f"Demand '{demand_id}' is closed already.")
        read = self._set_status(tx, demand, "closed", reason=reason)
        return read, tx.finish()

    def renew(
        self, demand_id: str, expires_at: datetime | None, reason: str | None = None
    ) -> tuple[s.DemandRead, int]:
        tx = _VersionedWrite(self.repo, self.catalog.clock(), self.catalog.new_id)
        demand = self._demand(demand_id)
        if demand.status not in RENEWABLE:
            raise _conflict(demand_id, demand.status, "renewed", RENEWABLE)
        new_expiry = expires_at if expires_at is not None else tx.now + self.catalog.demand_lifetime
        if new_expiry <= tx.now:
            raise InvalidInputError(
                "expires_at must be in the future.",
                [FieldIssue(("expires_at",), "must be in the future", "in_the_past")],
            )
        demand.expires_at = new_expiry
        # An expired demand opens again; an open or matched one keeps its status.
        status = "open" if demand.status == "expired" else demand.status
        read = self._set_status(tx, demand, status, reason=reason)
        return read, tx.finish()

    def expire_overdue(self, limit: int = 500) -> int:
        """Expire up to ``limit`` open or matched demands past ``expires_at``; how many."""
        # A cheap look first: most sweeps find nothing and need not take the write lock.
        if not self.repo.overdue_demands(EXPIRABLE, self.catalog.clock(), 1):
            return 0
        tx = _VersionedWrite(self.repo, self.catalog.clock(), self.catalog.new_id)
        # Again under the lock: a renewal may have committed in between.
        demands = self.repo.overdue_demands(EXPIRABLE, tx.now, limit)
        for demand in demands:
            self._set_status(tx, demand, "expired", reason=None)
        tx.finish()
        return len(demands)

    def _set_status(
        self, tx: _VersionedWrite, demand: Demand, status: str, *, reason: str | None
    ) -> s.DemandRead:
        if demand.status != status:
            demand.status = status
            demand.status_changed_at = tx.now
            demand.status_reason = reason
        elif reason is not None:
            demand.status_reason = reason
        demand.updated_at = tx.now
        demand.version = tx.current + 1
        self.repo.flush()
        read = self.catalog._record(tx, SPECS["demand"], demand)
        assert isinstance(read, s.DemandRead)
        return read

    def _demand(self, demand_id: str) -> Demand:
        """The demand, if the caller may see it (another consumer's is a 404 like a missing
        one)."""
        demand = self.catalog._row(SPECS["demand"], demand_id)
        assert isinstance(demand, Demand)
        return demand

    # ------------------------------------------------------------ outcomes

    def record_outcome(
        self, demand_id: str, body: s.MatchOutcomeCreate
    ) -> tuple[s.MatchOutcomeWriteResult, int]:
        tx = _VersionedWrite(self.repo, self.catalog.clock(), self.catalog.new_id)
        demand = self._demand(demand_id)
        supplier = self.repo.get(Supplier, body.supplier_id)
        if supplier is None:
            raise InvalidInputError(
                f"supplier_id '{body.supplier_id}' is not an existing platform or manufacturer.",
                [
                    FieldIssue(
                        ("supplier_id",), "no platform or manufacturer with this id", "not_found"
                    )
                ],
            )
        recorded_at = body.recorded_at or tx.now
        if recorded_at > tx.now + FUTURE_TOLERANCE:
            raise InvalidInputError(
                "recorded_at is in the future.",
                [FieldIssue(("recorded_at",), "must not be in the future", "in_the_future")],
            )
        row = MatchOutcome(
            id=self.catalog.new_id("out"),
            demand_id=demand.id,
            supplier_id=supplier.id,
            supplier_kind=supplier.kind,
            outcome=body.outcome,
            reason=body.reason,
            recorded_at=recorded_at,
            created_at=tx.now,
            version=tx.current + 1,
        )
        self.repo.add(row)
        read = s.MatchOutcomeRead.model_validate(row)
        # The outcome is as private as its demand: the change log shows it to the same callers.
        tx.record("match_outcome", row.id, read.model_dump(mode="json"), demand.owner_consumer_id)
        status = status_after_outcome(demand.status, body.outcome)
        if status != demand.status:
            self._set_status(tx, demand, status, reason=None)
        result = s.MatchOutcomeWriteResult.model_validate(
            {**read.model_dump(), "demand_status": demand.status}
        )
        return result, tx.finish()

    def outcomes_of_demand(
        self, demand_id: str, filters: s.MatchOutcomeFilters
    ) -> tuple[list[s.MatchOutcomeRead], str | None]:
        self._demand(demand_id)
        return self._outcome_page("demand_id", demand_id, filters)

    def outcomes_of_supplier(
        self, kind: str, supplier_id: str, filters: s.MatchOutcomeFilters
    ) -> tuple[list[s.MatchOutcomeRead], str | None]:
        spec = SPECS["platform" if kind == "platform" else "manufacturer"]
        self.catalog._row(spec, supplier_id)  # 404 unless a supplier of this kind
        return self._outcome_page("supplier_id", supplier_id, filters)

    def _outcome_page(
        self, column: str, value: str, filters: s.MatchOutcomeFilters
    ) -> tuple[list[s.MatchOutcomeRead], str | None]:
        before = decode_cursor(filters.cursor)
        rows = self.repo.list_outcomes(
            column,
            value,
            filters.outcome,
            before_pk=before or None,
            limit=filters.limit + 1,
            owned_by=self.catalog._visible(SPECS["demand"]),
        )
        more = len(rows) > filters.limit
        rows = rows[: filters.limit]
        next_cursor = encode_cursor(rows[-1].pk) if more else None
        return [s.MatchOutcomeRead.model_validate(row) for row in rows], next_cursor


UnitFactory = Callable[[bool], AbstractContextManager[tuple[Any, CatalogService]]]
"""``unit(write)`` yields ``(session, CatalogService)`` on a write or read session, outside any
request."""


def sweep_expired_demands(unit: UnitFactory, *, batch: int = 500, max_batches: int = 100) -> int:
    """Expire every overdue demand, ``batch`` per transaction; how many were expired.

    A read session looks first, so a sweep that finds nothing takes no write lock (on SQLite a
    write session locks the whole database). Each batch commits on its own, so a large backlog
    never holds the catalog's write lock for long; ``max_batches`` bounds one sweep (the next
    sweep goes on).
    """
    with unit(False) as (_, catalog):
        if not catalog.repo.overdue_demands(EXPIRABLE, catalog.clock(), 1):
            return 0
    total = 0
    for _ in range(max_batches):
        with unit(True) as (session, catalog):
            expired = DemandLifecycle(catalog).expire_overdue(batch)
            session.commit()
        total += expired
        if expired < batch:
            break
    if total:
        logger.info("demands expired", extra={"count": total})
    return total


class ExpirySweeper:
    """Runs ``sweep_expired_demands`` every ``interval`` seconds (off the event loop) until
    ``stop()``; a failed sweep is logged and retried at the next interval."""

    def __init__(self, unit: UnitFactory, interval: float) -> None:
        self.unit = unit
        self.interval = interval
        self.sweeps = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(sweep_expired_demands, self.unit)
            except Exception:
                logger.exception("demand expiry sweep failed")
            self.sweeps += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._stop.wait()
