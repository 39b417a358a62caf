"""Matching use cases, without HTTP: find the demand, wait for the index, rank, shape results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from services.matching.brokers import suggest_brokers
from services.matching.catalog_client import CatalogUnavailable
from services.matching.coverage import CoverageReporter
from services.matching.index import IndexSnapshot, IndexSyncer, demand_query
from services.matching.messages import DEFAULT_LANGUAGE, Language
from services.matching.ranking import DemandQuery, Match
from services.matching.schemas import (
    IndexStatus,
    MatchDemand,
    MatchKind,
    SupplierCounts,
)
from services.shared.caller import INTERNAL, Caller
from services.shared.errors import (
    FieldIssue,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
)
from services.shared.taxonomy import Taxonomy

RunInThread = Callable[..., Any]
CatalogVersion = Callable[[], Awaitable[int]]
"""Asks the catalog for its version now; raises CatalogUnavailable."""


@dataclass(frozen=True, slots=True)
class EncodedResults:
    """A ``MatchResponse`` or ``SimilarResponse`` as JSON bytes, encoded once from the ranker's
    matches (no pydantic models in between), and whether the index served was stale."""

    body: bytes
    index_stale: bool


class MatchingService:
    def __init__(
        self,
        syncer: IndexSyncer,
        taxonomy: Taxonomy,
        min_version_timeout: float = 5.0,
        catalog_version: CatalogVersion | None = None,
        on_rank: Callable[[float], None] | None = None,
        reporter: CoverageReporter | None = None,
    ) -> None:
        self.syncer = syncer
        self.reporter = reporter or CoverageReporter(taxonomy)
        self.taxonomy = taxonomy
        self.min_version_timeout = min_version_timeout
        self.catalog_version = catalog_version
        self.on_rank = on_rank

    async def matches_for_demand(
        self,
        demand_id: str,
        kind: MatchKind,
        limit: int,
        min_version: int | None,
        caller: Caller = INTERNAL,
        language: Language = DEFAULT_LANGUAGE,
    ) -> EncodedResults:
        """A ``MatchResponse``, encoded, its reasons in ``language``. Another consumer's demand
        is "not found", as in the catalog: a consumer that is not admin matches only its own
        demands."""
        snapshot = await self._snapshot(min_version)
        demand = snapshot.demands.get(demand_id)
        if demand is None or not caller.may_see(snapshot.demand_owners.get(demand_id)):
            raise NotFoundError(
                f"Demand '{demand_id}' does not exist (or is newer than the index: pass "
                "min_version with the version of the write that created it)."
            )
        record = snapshot.records.get("demand", {}).get(demand_id, {})
        broker_id = record.get("broker_id")
        return await asyncio.to_thread(
            self._rank, snapshot, demand, kind, limit, demand_id, broker_id, language
        )

    async def match(
        self,
        body: MatchDemand,
        kind: MatchKind,
        limit: int,
        min_version: int | None,
        language: Language = DEFAULT_LANGUAGE,
    ) -> EncodedResults:
        snapshot = await self._snapshot(min_version)
        demand = self.resolve_demand(body)
        return await asyncio.to_thread(
            self._rank, snapshot, demand, kind, limit, None, body.broker_id, language
        )

    async def coverage(self, threshold: float, min_version: int | None) -> dict[str, Any]:
        """The coverage and gap report (``services.matching.coverage``), built in a worker
        thread and kept per index version and threshold."""
        snapshot = await self._snapshot(min_version)
        return await asyncio.to_thread(self.reporter.report, snapshot, threshold)

    async def similar(
        self,
        kind: str,
        supplier_id: str,
        limit: int,
        min_version: int | None,
        language: Language = DEFAULT_LANGUAGE,
    ) -> EncodedResults:
        """A ``SimilarResponse``, encoded, its reasons in ``language``."""
        snapshot = await self._snapshot(min_version)
        supplier = snapshot.suppliers.get(supplier_id)
        if supplier is None or supplier.kind != kind:
            raise NotFoundError(f"{kind.capitalize()} '{supplier_id}' does not exist.")
        return await asyncio.to_thread(self._similar, snapshot, supplier_id, limit, language)

    def _rank(
        self,
        snapshot: IndexSnapshot,
        demand: DemandQuery,
        kind: MatchKind,
        limit: int,
        demand_id: str | None,
        broker_id: str | None = None,
        language: Language = DEFAULT_LANGUAGE,
    ) -> EncodedResults:
        """Rank and encode a ``MatchResponse`` in the worker thread, off the event loop."""
        started = time.perf_counter()
        matches = snapshot.index.rank(
            demand, kind, limit, snapshot.outcomes_for(demand), language=language
        )
        if self.on_rank is not None:
            self.on_rank(time.perf_counter() - started)
        stale = not self.syncer.status.catalog_reachable
        head = {"demand_id": demand_id, "index_version": snapshot.version, "index_stale": stale}
        chains, _ = snapshot.index.demand_chains(demand)
        brokers = suggest_brokers(
            snapshot.records.get("broker", {}).values(), chains, demand.district, broker_id
        )
        return EncodedResults(_encode(head, matches, {"brokers": brokers}), stale)

    def _similar(
        self, snapshot: IndexSnapshot, supplier_id: str, limit: int, language: Language
    ) -> EncodedResults:
        matches = snapshot.index.similar(supplier_id, limit, language=language)
        stale = not self.syncer.status.catalog_reachable
        head = {"supplier_id": supplier_id, "index_version": snapshot.version, "index_stale": stale}
        return EncodedResults(_encode(head, matches), stale)

    def resolve_demand(self, body: MatchDemand) -> DemandQuery:
        """Canonical chains as the catalog would store them; unknown labels become tags."""
        data = body.model_dump()
        resolutions = [self.taxonomy.resolve(label) for label in body.industry_chains]
        data["industry_chains"] = list(
            dict.fromkeys(r.chain.name for r in resolutions if r.chain is not None)
        )
        unknown = [r.label for r in resolutions if r.chain is None]
        data["tags"] = list(dict.fromkeys([*body.tags, *unknown]))
        return demand_query(data)

    def status(self, who: Caller = INTERNAL) -> IndexStatus:
        """The index's state. Demands are private: a consumer without admin rights is told
        how many of its own demands the index holds, and not the syncer's last error text
        (internal host names); admins and internal callers see everything."""
        snapshot = self.syncer.snapshot
        status = self.syncer.status
        version = snapshot.version if snapshot else 0
        platforms = (
            sum(1 for s in snapshot.suppliers.values() if s.kind == "platform") if (snapshot) else 0
        )
        total = len(snapshot.suppliers) if snapshot else 0
        return IndexStatus(
            ready=snapshot is not None,
            version=version,
            catalog_version=status.catalog_version,
            lag=max(status.catalog_version - version, 0),
            catalog_reachable=status.catalog_reachable,
            last_error=status.last_error if who.sees_everything else None,
            suppliers=SupplierCounts(platform=platforms, manufacturer=total - platforms),
            demands=_visible_demands(snapshot, who),
            built_at=snapshot.built_at if snapshot else None,
            updated_at=snapshot.updated_at if snapshot else None,
            last_sync_at=status.last_sync_at,
            full_builds=status.full_builds,
            incremental_updates=status.incremental_updates,
            last_build_seconds=status.last_build_seconds,
        )

    async def _snapshot(self, min_version: int | None) -> IndexSnapshot:
        if min_version is not None:
            await self._refuse_unknown_version(min_version)
        if min_version is not None and not await self.syncer.wait_for(
            min_version, self.min_version_timeout
        ):
            raise UnavailableError(
                f"The matching index has not reached catalog version {min_version} within "
                f"{self.min_version_timeout:g} s; retry shortly.",
                retry_after=1,
            )
        snapshot = self.syncer.snapshot
        if snapshot is None:
            raise UnavailableError("The matching index is still being built.", retry_after=1)
        return snapshot

    async def _refuse_unknown_version(self, min_version: int) -> None:
        """A version the catalog has not reached is the caller's mistake, not a wait.

        Versions come from write responses, so a version a caller may name always exists in the
        catalog by the time it asks. Only when the syncer has not seen it yet is the catalog
        asked (the read-your-own-write case, before the next poll); if it is not there either,
        waiting cannot help and retrying would not either.
        """
        if self.catalog_version is None or min_version <= self.syncer.status.catalog_version:
            return
        try:
            current = await self.catalog_version()
        except CatalogUnavailable:
            return  # cannot tell: wait for the index as usual
        if min_version > current:
            raise InvalidInputError(
                f"min_version {min_version} is ahead of the catalog, which is at version "
                f"{current}; pass the `version` of a write response.",
                [
                    FieldIssue(
                        ("query", "min_version"),
                        f"must not exceed the catalog's version ({current})",
                        "version_ahead_of_catalog",
                    )
                ],
            )


def _encode(
    head: dict[str, Any], matches: list[Match], tail: dict[str, Any] | None = None
) -> bytes:
    """``head``, ``results`` and ``tail``, as pydantic would dump the response model (the same
    members in the same order), without building and re-validating one model per result."""
    results = [
        {
            "rank": position,
            "kind": match.kind,
            "supplier_id": match.supplier_id,
            "name": match.name,
            "score": match.score,
            "explanation": match.explanation,
        }
        for position, match in enumerate(matches, start=1)
    ]
    return orjson.dumps(
        {**head, "results": results, **(tail or {})}, option=orjson.OPT_SERIALIZE_NUMPY
    )


def _visible_demands(snapshot: IndexSnapshot | None, who: Caller) -> int:
    if snapshot is None:
        return 0
    if who.sees_everything:
        return len(snapshot.demands)
    owners = snapshot.demand_owners
    return sum(1 for demand_id in snapshot.demands if who.may_see(owners.get(demand_id)))
