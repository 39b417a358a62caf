"""Matching-derived webhook events: ``demand.matched`` and ``supplier.matches_open_demand``.

Computed off the request path, after index sync steps. The notifier keeps, per open demand,
the ids of its current top ``k`` suppliers (its baseline). Each round it takes the changes the
syncer read since the last round and the index snapshot that includes them, and:

- re-ranks every open demand that changed, every open demand when any supplier changed (a new
  supplier can move every demand's ranking: scores are relative to the best match), and open
  demands without a baseline;
- emits ``demand.matched`` when a changed demand's results are first computed (and not empty)
  or when a demand's top results changed *materially*: the set of its top 3 changed, or a
  supplier entered its top ``k`` (reordering alone, or a supplier dropping out of places 4..k,
  is not material);
- emits ``supplier.matches_open_demand`` for each new or changed supplier that entered the top
  ``k`` of an open demand that already had results computed (a new demand's first results are
  told by ``demand.matched`` alone).

Only demands whose ``status`` is open, matched or in_progress take part (a demand without a
status is open). Work is bounded by rounds: changes that arrive while a round runs are
coalesced into the next one, so a burst of supplier writes costs one re-rank of the open
demands, not one per write; and a long round is followed by a pause that keeps rounds to
``cpu_share`` of the time (``NotificationLoop.pause_after``), so with many open demands the
notifier never crowds out the requests served by the same process.

Nothing is lost when the catalog is briefly down: a round's events go to the catalog together
with the new position of the notifier's cursor (the catalog version the round covered), in one
transaction there; the round is retried with backoff until the catalog accepts, and its changes
stay pending until then. Event ids are deterministic (sha256 of type, ids and the catalog
version), so a repeat is a no-op. Two matching replicas cooperate through the cursor's
compare-and-set: one's round is accepted, the other's refused, and it moves on from there.

On start the notifier reads its cursor from the catalog. A full initial sync therefore does not
flood: demands unchanged since the cursor only get their baseline computed, silently; a demand
changed since then counts as changed. Without the old baseline (it lives in memory), a demand
unchanged since the cursor emits ``demand.matched`` after a restart only when a supplier changed
since then is now in its top ``k``, and every such supplier counts as having entered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

from services.matching.catalog_client import (
    CatalogClient,
    CatalogUnavailable,
    CursorMove,
    EventsAnswer,
)
from services.matching.index import IndexSnapshot, LoggedChange
from services.matching.ranking import DemandQuery, Match

logger = logging.getLogger(__name__)

DEMAND_MATCHED = "demand.matched"
SUPPLIER_MATCHES = "supplier.matches_open_demand"
EVENT_TYPES = frozenset({DEMAND_MATCHED, SUPPLIER_MATCHES})
ACTIVE_STATUSES = frozenset({"open", "matched", "in_progress"})
SUPPLIER_RESOURCES = frozenset({"platform", "manufacturer"})

Ranker = Callable[[DemandQuery, int], list[Match]]
# Events per request to the catalog: well under its 1 MiB body limit (an event is ~2 KB).
EVENTS_PER_REQUEST = 200


@dataclass(frozen=True)
class DemandInfo:
    """What the notifier needs of a demand beyond its query: who owns it, and its state."""

    status: str
    owner: str | None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> DemandInfo:
        # Read defensively: ownership and lifecycle fields may not exist (yet).
        owner = data.get("owner")
        return cls(str(data.get("status") or "open"), owner if isinstance(owner, str) else None)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    data: dict[str, Any]
    owner: str | None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "data": self.data, "owner": self.owner}


def material_change(before: Sequence[str], after: Sequence[str], top: int = 3) -> bool:
    """Whether a demand's top results changed enough to tell its owner."""
    return set(before[:top]) != set(after[:top]) or bool(set(after) - set(before))


def event_id(event_type: str, *parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(map(str, (event_type, *parts))).encode()).hexdigest()
    return "evt_" + digest[:40]


def _result(match: Match, rank: int) -> dict[str, Any]:
    return {
        "rank": rank,
        "kind": match.kind,
        "supplier_id": match.supplier_id,
        "name": match.name,
        "score": round(float(match.score), 4),
    }


@dataclass
class Round:
    """What one round produced: events to store, and the catalog version it covered."""

    events: list[Event]
    version: int
    cursor_from: int


@dataclass
class Notifier:
    """The material-change logic and its state; plain Python, no I/O."""

    k: int = 10
    material_top: int = 3
    cursor: int | None = None  # catalog version whose events are stored; None: not yet read
    demands: dict[str, DemandInfo] = field(default_factory=dict)
    baselines: dict[str, tuple[str, ...]] = field(default_factory=dict)
    changed_demands: dict[str, int] = field(default_factory=dict)
    changed_suppliers: dict[str, int] = field(default_factory=dict)
    seen_version: int = 0

    def observe(self, changes: Iterable[LoggedChange], version: int) -> None:
        """Take in changes the syncer read (every change, from version 1 on at start)."""
        for change in changes:
            if change.resource == "demand":
                if change.data is None:
                    self.demands.pop(change.id, None)
                    self.baselines.pop(change.id, None)
                    self.changed_demands.pop(change.id, None)
                    continue
                self.demands[change.id] = DemandInfo.of(change.data)
                self.changed_demands[change.id] = change.version
            elif change.resource in SUPPLIER_RESOURCES:
                self.changed_suppliers[change.id] = change.version
        self.seen_version = max(self.seen_version, version)

    @property
    def pending(self) -> bool:
        return self.cursor is not None and self.seen_version > self.cursor

    def start(self, cursor: int) -> None:
        """Start (or restart after another replica moved it) from the stored cursor."""
        self.cursor = cursor
        for changed in (self.changed_demands, self.changed_suppliers):
            for key in [key for key, version in changed.items() if version <= cursor]:
                del changed[key]

    def idle(self) -> None:
        """No webhook wants these events: keep no baselines (they would go stale) and let the
        cursor move past the changes."""
        self.baselines.clear()

    def compute(
        self,
        rank: Ranker,
        queries: Mapping[str, DemandQuery],
        suppliers: Mapping[str, Any],
        version: int,
    ) -> Round:
        """Re-rank what the changes since the cursor touch; the events to emit. Baselines are
        updated here: if the round is not accepted, ``start`` is called again and the changes
        of the round stay pending."""
        assert self.cursor is not None
        events: list[Event] = []
        changed_suppliers = {s for s in self.changed_suppliers if s in suppliers}
        active = [d for d, info in self.demands.items() if info.active and d in queries]
        for demand_id in list(self.baselines):
            info = self.demands.get(demand_id)
            if info is None or not info.active:
                del self.baselines[demand_id]  # closed and expired demands leave
        if self.changed_suppliers:  # deletions included: a newcomer may take the place
            dirty = active
        else:
            dirty = [d for d in active if d in self.changed_demands or d not in self.baselines]
        for demand_id in sorted(dirty):
            matches = rank(queries[demand_id], self.k)
            events.extend(self._judge(demand_id, matches, changed_suppliers, version))
        return Round(events, version, self.cursor)

    def _judge(
        self, demand_id: str, matches: list[Match], changed_suppliers: set[str], version: int
    ) -> list[Event]:
        after = tuple(m.supplier_id for m in matches)
        before = self.baselines.get(demand_id)
        self.baselines[demand_id] = after
        owner = self.demands[demand_id].owner
        demand_changed = demand_id in self.changed_demands
        left: list[str] = []
        if before is None and demand_changed:
            # A new demand's first results: demand.matched says it all; no supplier "entered"
            # a ranking that did not exist.
            tell, reason, entered = bool(after), "first_computed", []
        elif before is None:
            # The baseline was lost (a restart, or webhooks just subscribed): judge by the
            # suppliers changed since the cursor.
            entered = [s for s in after if s in changed_suppliers]
            tell, reason = bool(entered), "changed"
        else:
            tell, reason = material_change(before, after, self.material_top), "changed"
            entered = [s for s in after if s not in before]
            left = [s for s in before if s not in after]
        events = []
        if tell:
            events.append(
                Event(
                    event_id(DEMAND_MATCHED, demand_id, ",".join(after), version),
                    DEMAND_MATCHED,
                    {
                        "demand_id": demand_id,
                        "reason": reason,
                        "catalog_version": version,
                        "results": [_result(m, i) for i, m in enumerate(matches, 1)],
                        "entered": entered,
                        "left": left,
                    },
                    owner,
                )
            )
        for rank_, match in enumerate(matches, 1):
            if match.supplier_id in changed_suppliers and match.supplier_id in entered:
                events.append(
                    Event(
                        event_id(SUPPLIER_MATCHES, demand_id, match.supplier_id, version),
                        SUPPLIER_MATCHES,
                        {
                            "demand_id": demand_id,
                            "catalog_version": version,
                            **_result(match, rank_),
                        },
                        owner,
                    )
                )
        return events

    def accepted(self, round_: Round) -> None:
        """The catalog stored the round: its changes are done."""
        self.start(round_.version)


# ---------------------------------------------------------------- the loop (I/O)


class NotificationLoop:
    """Runs notifier rounds after index sync steps and hands their events to the catalog."""

    def __init__(
        self,
        notifier: Notifier,
        snapshot: Callable[[], IndexSnapshot | None],
        client: CatalogClient,
        *,
        cursor_name: str = "matching",
        interval: float = 0.5,
        retry_initial: float = 0.25,
        retry_max: float = 30.0,
        cpu_share: float = 0.25,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.notifier = notifier
        self.snapshot = snapshot
        self.client = client
        self.cursor_name = cursor_name
        self.interval = interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.cpu_share = cpu_share
        self.clock = clock
        self.rounds = 0
        self.last_compute_seconds = 0.0
        self._inbox: list[tuple[list[LoggedChange], int]] = []
        self._stop = asyncio.Event()

    def on_changes(self, changes: Sequence[LoggedChange], version: int) -> None:
        """The syncer's hook, called right after it published a snapshot with ``changes``."""
        self._inbox.append((list(changes), version))

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                await self.run_once()
                failures = 0
                delay = self.pause_after(self.last_compute_seconds)
            except CatalogUnavailable as exc:
                failures += 1
                logger.warning("notifier: catalog unavailable: %s", exc)
                delay = min(self.interval * 2**failures, self.retry_max)
            except Exception:
                logger.exception("notifier round failed")
                failures += 1
                delay = min(self.interval * 2**failures, self.retry_max)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()

    def pause_after(self, compute_seconds: float) -> float:
        """Seconds to wait before the next round. Ranking shares the process (and its GIL)
        with the requests being served: a round that re-ranked many open demands is followed
        by a pause long enough that rounds take at most ``cpu_share`` of the time. Changes
        arriving meanwhile coalesce into the next round, so nothing is lost, only told later."""
        rest = compute_seconds * (1.0 - self.cpu_share) / self.cpu_share
        return max(self.interval, rest)

    async def run_once(self) -> bool:
        """One round, if changes are pending; True when one was stored."""
        if self.notifier.cursor is None:
            state = await self.client.event_state(self.cursor_name)
            self.notifier.start(state.cursor or 0)
        # Draining the inbox and taking the snapshot with no await between: the snapshot
        # holds exactly the changes drained (the syncer calls the hook right after a swap).
        snapshot = self.snapshot()
        for changes, version in self._inbox:
            self.notifier.observe(changes, version)
        self._inbox.clear()
        self.last_compute_seconds = 0.0
        if snapshot is None or not self.notifier.pending:
            return False
        state = await self.client.event_state(self.cursor_name)
        cursor = self.notifier.cursor
        assert cursor is not None
        if EVENT_TYPES & set(state.subscribed_event_types):
            index = snapshot.index

            def rank(query: DemandQuery, k: int) -> list[Match]:
                return index.rank(query, "all", k, explain=False)

            started = self.clock()
            round_ = await asyncio.to_thread(
                self.notifier.compute, rank, snapshot.demands, snapshot.suppliers, snapshot.version
            )
            self.last_compute_seconds = self.clock() - started
        else:
            self.notifier.idle()
            round_ = Round([], snapshot.version, cursor)
        answer = await self._submit(round_)
        self.rounds += 1
        if answer.accepted:
            self.notifier.accepted(round_)
            if round_.events:
                logger.info("notifier: events stored", extra={"events": len(round_.events)})
            return True
        # Another replica covered these versions: carry on from where it left the cursor.
        self.notifier.start(answer.cursor or cursor)
        return False

    async def _submit(self, round_: Round) -> EventsAnswer:
        """Hand the round to the catalog, retrying with backoff until it answers: the cursor
        does not move until the events are stored."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(CatalogUnavailable),
            wait=wait_random_exponential(multiplier=self.retry_initial, max=self.retry_max),
            stop=lambda _state: self._stop.is_set(),
            reraise=True,
        )
        events = [event.as_json() for event in round_.events]
        # In chunks that fit the catalog's body limit; the last one moves the cursor. Should
        # the last one fail for good, the earlier ones are stored already and a redone round
        # repeats them: at least once, as webhooks are anyway.
        chunks = [
            events[i : i + EVENTS_PER_REQUEST] for i in range(0, len(events), EVENTS_PER_REQUEST)
        ]
        for chunk in chunks[:-1]:
            async for attempt in retrying:
                with attempt:
                    await self.client.submit_events(chunk, None)
        async for attempt in retrying:
            with attempt:
                return await self.client.submit_events(
                    chunks[-1] if chunks else [],
                    CursorMove(self.cursor_name, round_.cursor_from, round_.version),
                )
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover
