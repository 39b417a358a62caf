"""The matching index kept in step with the catalog's change log.

On start the syncer reads the whole change log and fits the index (off the event loop); after
that it polls for new changes and applies them incrementally, so a catalog write is visible in
matches within about a second. Every so often (after many incremental changes) it refits from
scratch in the background and swaps the new index in atomically; changes that arrive during
the refit are applied on top before the swap. If the catalog is unreachable the last index keeps
serving and the state says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from services.matching.catalog_client import CatalogChange, CatalogClient, CatalogUnavailable
from services.matching.messages import Language
from services.matching.outcomes import KindOutcomes, OutcomeSnapshot, OutcomeStats, demand_kind
from services.matching.ranking import DemandQuery, Match, SupplierDoc

logger = logging.getLogger(__name__)

SUPPLIER_RESOURCES = ("platform", "manufacturer")
RECORD_RESOURCES = ("demand", "broker", "match_outcome")
"""Resources kept as the catalog sent them (``IndexSnapshot.records``), for brokers and the
coverage report: the raw demand (its status, dates and broker), brokers and match outcomes."""


class RankingIndex(Protocol):
    def rank(
        self,
        demand: DemandQuery,
        kind: Any = "all",
        limit: int = 10,
        outcomes: KindOutcomes | None = None,
        *,
        explain: bool = True,
        language: Language = "en",
    ) -> list[Match]: ...

    def similar(
        self, supplier_id: str, limit: int = 10, *, language: Language = "en"
    ) -> list[Match]: ...

    def with_changes(
        self, upserts: Sequence[SupplierDoc], deletes: Sequence[str]
    ) -> RankingIndex: ...

    def demand_chains(self, demand: DemandQuery) -> tuple[list[str], str]: ...

    def __len__(self) -> int: ...


IndexBuilder = Callable[[Sequence[SupplierDoc]], RankingIndex]


@dataclass(frozen=True, slots=True)
class LoggedChange:
    """One change-log entry as the syncer's ``on_changes`` hook gets it. ``data`` is the
    catalog's data for a demand, broker or match outcome (None once deleted), and always None
    for a platform or manufacturer: the syncer keeps a supplier as its ``SupplierDoc``, and
    holding every raw supplier record as well until a publish (the whole catalog, on start)
    cost about 165 MiB of the matching process's memory at 100k suppliers."""

    version: int
    resource: str
    id: str
    data: Mapping[str, Any] | None


def supplier_doc(kind: str, data: Mapping[str, Any]) -> SupplierDoc:
    return SupplierDoc(
        id=data["id"],
        kind=kind,  # type: ignore[arg-type]
        name=data["name"],
        organization=data.get("organization", ""),
        district=data.get("district", ""),
        description=data.get("description", ""),
        industry_chains=tuple(data.get("industry_chains", ())),
        tags=tuple(data.get("tags", ())),
        capabilities=tuple(data.get("capabilities", ())),
        equipment=tuple(data.get("equipment", ())),
        certifications=tuple(data.get("certifications", ())),
        stages=tuple(data.get("stages", ())),
        accepts_vouchers=bool(data.get("accepts_vouchers", False)),
        level=data.get("level"),
    )


def demand_query(data: Mapping[str, Any]) -> DemandQuery:
    return DemandQuery(
        title=data.get("title", ""),
        description=data.get("description", ""),
        industry_chains=tuple(data.get("industry_chains", ())),
        tags=tuple(data.get("tags", ())),
        stage=data.get("stage"),
        district=data.get("district"),
        needs_voucher=bool(data.get("needs_voucher", False)),
        required_certifications=tuple(data.get("required_certifications", ())),
    )


@dataclass(frozen=True)
class IndexSnapshot:
    """What requests read: never mutated, replaced whole."""

    index: RankingIndex
    version: int
    suppliers: Mapping[str, SupplierDoc]
    demands: Mapping[str, DemandQuery]
    built_at: datetime
    updated_at: datetime
    # Each demand's owner (the consumer that created it; None: created from inside), from the
    # change log's demand data: who may ask for the demand's matches.
    demand_owners: Mapping[str, str | None] = field(default_factory=dict)
    # resource -> id -> the change log's data, for each of RECORD_RESOURCES.
    records: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    outcomes: OutcomeSnapshot = field(default_factory=OutcomeSnapshot)

    def outcomes_for(self, demand: DemandQuery) -> KindOutcomes | None:
        """The outcome evidence for ranking ``demand``: that of its kind of demand."""
        return self.outcomes.for_kind(demand_kind(demand.industry_chains))


@dataclass
class SyncStatus:
    catalog_version: int = 0
    catalog_reachable: bool = True
    last_error: str | None = None
    last_sync_at: datetime | None = None
    full_builds: int = 0
    incremental_updates: int = 0
    last_build_seconds: float | None = None


@dataclass
class _Pending:
    """Supplier and demand changes read from the log but not yet in a snapshot."""

    suppliers: dict[str, SupplierDoc | None] = field(default_factory=dict)
    demands: dict[str, tuple[DemandQuery, str | None] | None] = field(default_factory=dict)
    records: dict[tuple[str, str], Mapping[str, Any] | None] = field(default_factory=dict)
    # (outcome data, kind of its demand when it was logged, catalog version), in log order.
    outcomes: list[tuple[Mapping[str, Any], str, int]] = field(default_factory=list)


class IndexSyncer:
    def __init__(
        self,
        client: CatalogClient,
        build: IndexBuilder,
        *,
        poll_interval: float = 0.25,
        page_size: int = 1000,
        rebuild_after_changes: int = 5000,
        rebuild_interval: float = 60.0,
        small_index: int = 2000,
        max_backoff: float = 5.0,
        on_changes: Callable[[Sequence[LoggedChange], int], None] | None = None,
    ) -> None:
        self.client = client
        self.build = build
        self.poll_interval = poll_interval
        self.page_size = page_size
        self.rebuild_after_changes = rebuild_after_changes
        self.rebuild_interval = rebuild_interval
        self.small_index = small_index
        self._last_build = 0.0
        self.max_backoff = max_backoff
        # Told every change read, right after the snapshot holding it is published.
        self.on_changes = on_changes
        self.snapshot: IndexSnapshot | None = None
        self.status = SyncStatus()
        self._changed = asyncio.Condition()
        # Held while the served index is being changed: incremental updates and the catch-up
        # step of a background rebuild must not interleave, or one would drop the other's work.
        self._index_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._suppliers: dict[str, SupplierDoc] = {}
        self._demands: dict[str, DemandQuery] = {}
        self._demand_owners: dict[str, str | None] = {}
        self._records: dict[str, dict[str, Mapping[str, Any]]] = {r: {} for r in RECORD_RESOURCES}
        self._outcomes = OutcomeStats()
        self._version = 0
        self._since_build = 0
        self._rebuild: asyncio.Task[None] | None = None
        self._dirty_during_rebuild: set[str] = set()

    # ------------------------------------------------------------ reading

    @property
    def ready(self) -> bool:
        return self.snapshot is not None

    async def wait_for(self, version: int, timeout: float) -> bool:
        """Wait until the served snapshot includes catalog version ``version``."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(
                        lambda: self.snapshot is not None and self.snapshot.version >= version
                    ),
                    timeout,
                )
            except TimeoutError:
                return False
        return True

    # ------------------------------------------------------------ syncing

    def stop(self) -> None:
        """Ask ``run`` to return. Cancellation alone is not enough: a cancel that lands inside
        the HTTP client or a thread hand-off can be absorbed, and the loop would go on."""
        self._stop.set()

    async def run(self) -> None:
        """Sync until stopped; survives an unreachable catalog with a capped backoff."""
        failures = 0
        while not self._stop.is_set():
            try:
                await self.sync_once()
                self._maybe_schedule_rebuild()
                failures = 0
                delay = self.poll_interval
            except CatalogUnavailable as exc:
                failures += 1
                if self.status.catalog_reachable:
                    logger.warning("catalog unreachable, serving the last index: %s", exc)
                self.status.catalog_reachable = False
                self.status.last_error = str(exc)
                delay = min(self.poll_interval * 2**failures, self.max_backoff)
            except Exception:
                logger.exception("index sync failed")
                failures += 1
                delay = min(self.poll_interval * 2**failures, self.max_backoff)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()

    async def sync_once(self) -> bool:
        """Read every change after the current version and publish them; True if any."""
        pending = _Pending()
        after = self._version
        read: list[LoggedChange] = []
        async with contextlib.aclosing(self.client.pages(after, self.page_size)) as pages:
            async for page in pages:
                self.status.catalog_version = page.current_version
                for change in page.items:
                    self._read(change, pending)
                if self.on_changes is not None:
                    read.extend(
                        LoggedChange(
                            c.version,
                            c.resource,
                            c.id,
                            None if c.resource in SUPPLIER_RESOURCES else c.data,
                        )
                        for c in page.items
                    )
                if page.items:
                    after = page.next_after
        self.status.catalog_reachable = True
        self.status.last_error = None
        self.status.last_sync_at = datetime.now(UTC)
        if after == self._version and self.snapshot is not None:
            return False
        async with self._index_lock:
            await self._publish(pending, after)
            if self.on_changes is not None:
                self.on_changes(read, after)
        return True

    def _read(self, change: CatalogChange, pending: _Pending) -> None:
        if change.resource in SUPPLIER_RESOURCES:
            doc = None if change.data is None else supplier_doc(change.resource, change.data)
            pending.suppliers[change.id] = doc
        elif change.resource == "demand":
            pending.demands[change.id] = (
                None
                if change.data is None
                else (demand_query(change.data), change.data.get("owner"))
            )
        elif change.resource == "match_outcome" and change.data is not None:
            demand_id = change.data.get("demand_id")
            logged = pending.demands.get(demand_id)  # type: ignore[arg-type]
            demand = logged[0] if logged is not None else self._demands.get(demand_id)  # type: ignore[arg-type]
            if demand is not None:
                kind = demand_kind(demand.industry_chains)
                pending.outcomes.append((change.data, kind, change.version))
        if change.resource in RECORD_RESOURCES:
            pending.records[change.resource, change.id] = change.data

    async def _publish(self, pending: _Pending, version: int) -> None:
        for demand_id, demand in pending.demands.items():
            if demand is None:
                self._demands.pop(demand_id, None)
                self._demand_owners.pop(demand_id, None)
            else:
                self._demands[demand_id], self._demand_owners[demand_id] = demand
        for (resource, record_id), data in pending.records.items():
            if data is None:
                self._records[resource].pop(record_id, None)
            else:
                self._records[resource][record_id] = data
        upserts = [doc for doc in pending.suppliers.values() if doc is not None]
        deletes = [sid for sid, doc in pending.suppliers.items() if doc is None]
        for doc in upserts:
            self._suppliers[doc.id] = doc
        for sid in deletes:
            self._suppliers.pop(sid, None)
        for data, kind, logged_at in pending.outcomes:
            self._outcomes.apply(data, kind, logged_at)
        if self._rebuild is not None:
            self._dirty_during_rebuild.update(pending.suppliers)

        now = datetime.now(UTC)
        current = self.snapshot
        if current is None or len(self._suppliers) <= self.small_index:
            # A small catalog refits in milliseconds, and a full fit is exact: incremental
            # updates reuse the vocabulary and idf of the last fit.
            index = (
                await self._full_build()
                if (current is None or upserts or deletes)
                else (current.index)
            )
            built_at = now if (current is None or upserts or deletes) else current.built_at
        else:
            built_at = current.built_at
            index = current.index
            if upserts or deletes:
                index = await asyncio.to_thread(index.with_changes, upserts, deletes)
                self.status.incremental_updates += 1
                self._since_build += len(upserts) + len(deletes)
        await self._swap(
            IndexSnapshot(
                index=index,
                version=version,
                suppliers=dict(self._suppliers),
                demands=dict(self._demands),
                built_at=built_at,
                updated_at=now,
                demand_owners=dict(self._demand_owners),
                records={r: dict(items) for r, items in self._records.items()},
                outcomes=self._outcomes.snapshot(),
            )
        )
        self._maybe_schedule_rebuild()

    def _maybe_schedule_rebuild(self) -> None:
        """Refit in the background after many changes, or after any once the interval passed."""
        if self._rebuild is not None or self._since_build == 0:
            return
        overdue = time.monotonic() - self._last_build >= self.rebuild_interval
        if self._since_build >= self.rebuild_after_changes or overdue:
            self._rebuild = asyncio.create_task(self._background_rebuild())

    async def _full_build(self) -> RankingIndex:
        started = time.perf_counter()
        docs = list(self._suppliers.values())
        index = await asyncio.to_thread(self.build, docs)
        self.status.full_builds += 1
        self.status.last_build_seconds = round(time.perf_counter() - started, 3)
        self._since_build = 0
        self._last_build = time.monotonic()
        logger.info(
            "index built", extra={"suppliers": len(docs), "seconds": self.status.last_build_seconds}
        )
        return index

    async def _background_rebuild(self) -> None:
        """Refit from scratch off the request path, then catch up and swap atomically."""
        try:
            self._dirty_during_rebuild = set()
            index = await self._full_build()
            async with self._index_lock:
                dirty = self._dirty_during_rebuild
                upserts = [self._suppliers[s] for s in dirty if s in self._suppliers]
                deletes = [s for s in dirty if s not in self._suppliers]
                if upserts or deletes:
                    index = await asyncio.to_thread(index.with_changes, upserts, deletes)
                # What arrived during the refit sits in the new index's delta: it counts
                # towards the next refit, or a bulk import would stay in the delta for good.
                self._since_build = len(upserts) + len(deletes)
                current = self.snapshot
                assert current is not None
                now = datetime.now(UTC)
                await self._swap(
                    IndexSnapshot(
                        index=index,
                        version=current.version,
                        suppliers=current.suppliers,
                        demands=current.demands,
                        built_at=now,
                        updated_at=now,
                        demand_owners=current.demand_owners,
                        records=current.records,
                        outcomes=current.outcomes,
                    )
                )
        except Exception:
            logger.exception("background index rebuild failed; keeping the incremental index")
        finally:
            self._rebuild = None

    async def _swap(self, snapshot: IndexSnapshot) -> None:
        async with self._changed:
            self.snapshot = snapshot
            self._version = snapshot.version
            self._changed.notify_all()
