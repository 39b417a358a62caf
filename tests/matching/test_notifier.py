"""The notifier's material-change logic (plain Python, a scripted ranker), and its loop against
the real catalog app, down at first."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.catalog.app import create_app as create_catalog
from services.catalog.models import WebhookEvent
from services.catalog.settings import CatalogSettings
from services.matching.catalog_client import CatalogClient
from services.matching.index import IndexSnapshot, LoggedChange, demand_query
from services.matching.notifier import (
    DEMAND_MATCHED,
    EVENTS_PER_REQUEST,
    SUPPLIER_MATCHES,
    Event,
    NotificationLoop,
    Notifier,
    Round,
    material_change,
)
from services.matching.ranking import DemandQuery, Match
from tests.catalog.conftest import demand_body
from tests.matching.test_index_sync import Switch


def test_material_change_means_a_new_top3_set_or_a_newcomer() -> None:
    before = ("a", "b", "c", "d", "e")
    assert not material_change(before, ("b", "a", "c", "d", "e"))  # reordered top 3
    assert not material_change(before, ("a", "b", "c", "e", "d"))  # reordered below
    assert not material_change(before, ("a", "b", "c", "d"))  # one dropped out below top 3
    assert material_change(before, ("a", "b", "d", "c", "e"))  # d rose into the top 3
    assert material_change(before, ("a", "b", "c", "d", "x"))  # x entered the top k
    assert material_change((), ("a",))


class Ranking:
    """A scripted ranker: demand title -> supplier ids, best first."""

    def __init__(self) -> None:
        self.table: dict[str, list[str]] = {}
        self.calls: list[str] = []

    def __call__(self, query: DemandQuery, k: int) -> list[Match]:
        self.calls.append(query.title)
        return [
            Match(s, "platform", s.upper(), 1.0 - i / 10, {})
            for i, s in enumerate(self.table.get(query.title, [])[:k])
        ]


def _demand(demand_id: str, version: int, **data: Any) -> LoggedChange:
    return LoggedChange(version, "demand", demand_id, {"id": demand_id, "title": demand_id, **data})


def _supplier(supplier_id: str, version: int) -> LoggedChange:
    return LoggedChange(version, "platform", supplier_id, {"id": supplier_id, "name": supplier_id})


def _round(notifier: Notifier, ranking: Ranking, version: int) -> list[Event]:
    queries = {d: DemandQuery(title=d) for d in notifier.demands}
    suppliers = {s: object() for ids in ranking.table.values() for s in ids}
    round_ = notifier.compute(ranking, queries, suppliers, version)
    notifier.accepted(round_)
    return round_.events


def _kinds(events: list[Event]) -> list[tuple[str, str, str | None]]:
    return [(e.type, e.data["demand_id"], e.data.get("supplier_id")) for e in events]


def test_a_new_demand_is_told_its_first_results_once() -> None:
    notifier, ranking = Notifier(k=3), Ranking()
    notifier.start(0)
    ranking.table["d1"] = ["p1", "p2"]
    notifier.observe([_supplier("p1", 1), _demand("d1", 1, owner="csm_a")], 1)
    (event,) = _round(notifier, ranking, 1)  # no supplier.matches_open_demand for a new demand
    assert event.type == DEMAND_MATCHED and event.owner == "csm_a"
    assert event.data["reason"] == "first_computed"
    assert [r["supplier_id"] for r in event.data["results"]] == ["p1", "p2"]
    assert [r["rank"] for r in event.data["results"]] == [1, 2]
    # An unrelated change: the demand is not even re-ranked, and nothing is told.
    notifier.observe([LoggedChange(2, "equipment", "e1", {})], 2)
    assert _round(notifier, ranking, 2) == [] and ranking.calls == ["d1"]


def test_a_demand_without_results_is_not_told_until_a_supplier_enters() -> None:
    notifier, ranking = Notifier(k=3), Ranking()
    notifier.start(0)
    notifier.observe([_demand("d1", 1)], 1)
    assert _round(notifier, ranking, 1) == []
    ranking.table["d1"] = ["p9"]
    notifier.observe([_supplier("p9", 2)], 2)
    assert _kinds(_round(notifier, ranking, 2)) == [
        (DEMAND_MATCHED, "d1", None),
        (SUPPLIER_MATCHES, "d1", "p9"),
    ]


def test_a_changed_supplier_entering_the_top_k_is_reverse_matched() -> None:
    notifier, ranking = Notifier(k=3), Ranking()
    notifier.start(0)
    ranking.table = {"d1": ["p1", "p2", "p3"], "d2": ["p1", "p2"]}
    notifier.observe([_demand("d1", 1), _demand("d2", 2)], 2)
    assert len(_round(notifier, ranking, 2)) == 2
    # p4 enters d2's top 3 (behind the top 3 of d1, which it does not reach).
    ranking.table = {"d1": ["p1", "p2", "p3"], "d2": ["p1", "p2", "p4"]}
    notifier.observe([_supplier("p4", 3)], 3)
    events = _round(notifier, ranking, 3)
    assert _kinds(events) == [(DEMAND_MATCHED, "d2", None), (SUPPLIER_MATCHES, "d2", "p4")]
    assert events[0].data["entered"] == ["p4"] and events[1].data["rank"] == 3
    # p4 changes again but stays where it was: not news.
    notifier.observe([_supplier("p4", 4)], 4)
    assert _round(notifier, ranking, 4) == []


def test_reordering_is_not_material_but_a_new_top3_is() -> None:
    notifier, ranking = Notifier(k=5), Ranking()
    notifier.start(0)
    ranking.table["d1"] = ["a", "b", "c", "d"]
    notifier.observe([_demand("d1", 1)], 1)
    _round(notifier, ranking, 1)
    ranking.table["d1"] = ["c", "a", "b", "d"]
    notifier.observe([_supplier("c", 2)], 2)
    assert _round(notifier, ranking, 2) == []
    ranking.table["d1"] = ["c", "d", "a", "b"]
    notifier.observe([_supplier("d", 3)], 3)
    events = _round(notifier, ranking, 3)
    assert _kinds(events) == [(DEMAND_MATCHED, "d1", None)]
    assert events[0].data["entered"] == [] and events[0].data["reason"] == "changed"


@pytest.mark.parametrize("status", ["closed", "expired"])
def test_closed_and_expired_demands_leave_the_matching(status: str) -> None:
    notifier, ranking = Notifier(k=3), Ranking()
    notifier.start(0)
    ranking.table = {"d1": ["p1"], "d2": ["p1"]}
    notifier.observe([_demand("d1", 1), _demand("d2", 2, status="in_progress")], 2)
    assert len(_round(notifier, ranking, 2)) == 2
    notifier.observe([_demand("d1", 3, status=status)], 3)
    ranking.table = {"d1": ["p7", "p1"], "d2": ["p1"]}
    ranking.calls.clear()
    notifier.observe([_supplier("p7", 4)], 4)
    assert _round(notifier, ranking, 4) == []
    assert ranking.calls == ["d2"] and "d1" not in notifier.baselines


def test_a_restart_does_not_flood_and_catches_up_on_changes_since_the_cursor() -> None:
    notifier, ranking = Notifier(k=3), Ranking()
    ranking.table = {"d1": ["p1"], "d2": ["p1"], "d3": ["p2"]}
    # The full log as the first sync reads it; events were stored up to version 4.
    notifier.observe(
        [_demand("d1", 1), _supplier("p1", 2), _demand("d2", 3), _supplier("p9", 4),
         _demand("d3", 5)],
        5,
    )  # fmt: skip
    notifier.start(4)
    assert _kinds(_round(notifier, ranking, 5)) == [(DEMAND_MATCHED, "d3", None)]
    assert set(notifier.baselines) == {"d1", "d2", "d3"}


def test_event_ids_are_deterministic() -> None:
    def run() -> list[str]:
        notifier, ranking = Notifier(k=3), Ranking()
        notifier.start(0)
        ranking.table = {"d1": ["p1"]}
        notifier.observe([_demand("d1", 1)], 1)
        first = _round(notifier, ranking, 1)
        ranking.table = {"d1": ["p1", "p2"]}
        notifier.observe([_supplier("p2", 2)], 2)
        return [e.id for e in first + _round(notifier, ranking, 2)]

    ids = run()
    assert ids == run() and len(set(ids)) == 3


def test_idle_drops_baselines() -> None:
    notifier, ranking = Notifier(k=3), Ranking()
    notifier.start(0)
    ranking.table = {"d1": ["p1"]}
    notifier.observe([_demand("d1", 1)], 1)
    _round(notifier, ranking, 1)
    notifier.idle()
    assert notifier.baselines == {}


# ---------------------------------------------------------------- the loop and the catalog


class FakeIndex:
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    def rank(
        self, demand: DemandQuery, kind: Any = "all", limit: int = 10, *, explain: bool = True
    ) -> list[Match]:
        return [Match(s, "platform", s, 0.5, {}) for s in self.table.get(demand.title, [])]


@pytest.fixture
def catalog(sqlite_url: str) -> Iterator[TestClient]:
    app = create_catalog(
        CatalogSettings(database_url=sqlite_url, environment="test", webhook_delivery_enabled=False)
    )
    with TestClient(app) as client:
        yield client


def _subscribed_demand(catalog: TestClient) -> tuple[dict[str, Any], IndexSnapshot]:
    """An admin webhook wanting demand.matched, a stored demand, and a snapshot holding it
    (ranked by a fake index: supplier p1 for demands titled d1)."""
    hook = {"url": "https://hooks.example.com/x", "event_types": ["demand.matched"]}
    admin = {"X-Pilotmatch-Consumer": "admin", "X-Pilotmatch-Scopes": "admin"}
    assert catalog.post("/v1/webhooks", json=hook, headers=admin).status_code == 201
    demand = catalog.post("/v1/demands", json=demand_body(title="d1")).json()
    now = datetime.now(UTC)
    snapshot = IndexSnapshot(
        index=FakeIndex({"d1": ["p1"]}),  # type: ignore[arg-type]
        version=1,
        suppliers={"p1": object()},  # type: ignore[dict-item]
        demands={demand["id"]: demand_query(demand)},
        built_at=now,
        updated_at=now,
    )
    return demand, snapshot


def test_the_loop_retries_until_the_catalog_takes_the_events(catalog: TestClient) -> None:
    demand, snapshot = _subscribed_demand(catalog)
    switch = Switch(httpx.ASGITransport(app=catalog.app))

    async def scenario() -> tuple[int, int]:
        async with httpx.AsyncClient(transport=switch) as http:
            loop = NotificationLoop(
                Notifier(k=3), lambda: snapshot, CatalogClient("http://catalog", http),
                retry_initial=0.01, retry_max=0.05,
            )  # fmt: skip
            await loop.run_once()  # reads the cursor: 0
            loop.on_changes(
                [LoggedChange(1, "demand", demand["id"], demand)],
                1,
            )  # fmt: skip
            state_before = loop.notifier.cursor
            switch.up = False

            async def bring_back() -> None:
                await asyncio.sleep(0.2)
                switch.up = True

            restore = asyncio.create_task(bring_back())
            # The subscriptions read fails while the catalog is down: the round is redone.
            with pytest.raises(Exception, match="ConnectError"):
                await loop.run_once()
            assert loop.notifier.pending
            await restore
            assert await loop.run_once() is True
            return state_before or 0, loop.notifier.cursor or 0

    before, after = asyncio.run(scenario())
    assert (before, after) == (0, 1)
    subscriptions = catalog.get("/internal/events/subscriptions", params={"cursor": "matching"})
    assert subscriptions.json()["cursor"] == 1
    with catalog.app.state.db.session() as session:  # type: ignore[attr-defined]
        (event,) = session.execute(select(WebhookEvent)).scalars()
    assert event.type == DEMAND_MATCHED and event.data["demand_id"] == demand["id"]


def test_a_round_is_not_lost_when_the_submit_fails(catalog: TestClient) -> None:
    calls: list[int] = []

    class Flaky(httpx.AsyncBaseTransport):
        """Fails the first two POSTs (the submit), passes the rest."""

        def __init__(self) -> None:
            self.inner = httpx.ASGITransport(app=catalog.app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and len(calls) < 2:
                calls.append(1)
                raise httpx.ConnectError("refused", request=request)
            return await self.inner.handle_async_request(request)

    now = datetime.now(UTC)
    snapshot = IndexSnapshot(FakeIndex({}), 3, {}, {}, now, now)  # type: ignore[arg-type]

    async def scenario() -> int | None:
        async with httpx.AsyncClient(transport=Flaky()) as http:
            loop = NotificationLoop(
                Notifier(), lambda: snapshot, CatalogClient("http://catalog", http),
                retry_initial=0.01, retry_max=0.02,
            )  # fmt: skip
            loop.on_changes([], 3)
            assert await loop.run_once() is True  # tenacity retried the submit twice
            return loop.notifier.cursor

    assert asyncio.run(scenario()) == 3 and len(calls) == 2
    assert (
        catalog.get("/internal/events/subscriptions", params={"cursor": "matching"}).json()[
            "cursor"
        ]
        == 3
    )


def test_round_carries_its_starting_cursor() -> None:
    notifier = Notifier()
    notifier.start(7)
    notifier.observe([], 9)
    assert notifier.compute(Ranking(), {}, {}, 9) == Round([], 9, 7)


def test_a_big_round_goes_in_chunks_and_the_last_moves_the_cursor(catalog: TestClient) -> None:
    hook = {"url": "https://hooks.example.com/x", "event_types": ["supplier.matches_open_demand"]}
    admin = {"X-Pilotmatch-Consumer": "admin", "X-Pilotmatch-Scopes": "admin"}
    assert catalog.post("/v1/webhooks", json=hook, headers=admin).status_code == 201
    bodies: list[dict[str, Any]] = []

    class Recording(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.ASGITransport(app=catalog.app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                bodies.append(orjson.loads(request.content))
            return await self.inner.handle_async_request(request)

    events = [
        Event(f"evt_{i}", SUPPLIER_MATCHES, {"demand_id": f"d{i}", "supplier_id": "p1"}, None)
        for i in range(2 * EVENTS_PER_REQUEST + 50)
    ]

    async def scenario() -> bool:
        async with httpx.AsyncClient(transport=Recording()) as http:
            loop = NotificationLoop(Notifier(), lambda: None, CatalogClient("http://catalog", http))
            answer = await loop._submit(Round(events, 5, 0))
            return answer.accepted

    assert asyncio.run(scenario()) is True
    assert [len(b["events"]) for b in bodies] == [EVENTS_PER_REQUEST, EVENTS_PER_REQUEST, 50]
    assert [b.get("cursor") for b in bodies] == [
        None,
        None,
        {"name": "matching", "expected": 0, "version": 5},
    ]
    with catalog.app.state.db.session() as session:  # type: ignore[attr-defined]
        stored = session.execute(select(func.count()).select_from(WebhookEvent)).scalar()
    assert stored == len(events)


def test_a_deleted_supplier_lets_a_newcomer_in() -> None:
    notifier, ranking = Notifier(k=2), Ranking()
    notifier.start(0)
    ranking.table = {"d1": ["p1", "p2"]}
    notifier.observe([_demand("d1", 1)], 1)
    _round(notifier, ranking, 1)
    ranking.table = {"d1": ["p2", "p3"]}
    notifier.observe([LoggedChange(2, "platform", "p1", None)], 2)
    events = _round(notifier, ranking, 2)
    assert _kinds(events) == [(DEMAND_MATCHED, "d1", None)]
    assert (events[0].data["entered"], events[0].data["left"]) == (["p3"], ["p1"])


def test_a_long_round_is_followed_by_a_pause_that_bounds_the_notifiers_share(
    catalog: TestClient,
) -> None:
    demand, snapshot = _subscribed_demand(catalog)
    ticks = iter([10.0, 12.0])  # the ranking of the round takes 2 s by this clock

    async def scenario() -> tuple[float, float, float, float]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=catalog.app)) as http:
            loop = NotificationLoop(
                Notifier(k=3), lambda: snapshot, CatalogClient("http://catalog", http),
                interval=0.5, cpu_share=0.25, clock=lambda: next(ticks),
            )  # fmt: skip
            await loop.run_once()  # reads the cursor; nothing pending, nothing ranked
            idle = loop.pause_after(loop.last_compute_seconds)
            loop.on_changes(
                [LoggedChange(1, "demand", demand["id"], demand)],
                1,
            )  # fmt: skip
            assert await loop.run_once() is True
            ranked = loop.last_compute_seconds
            busy = loop.pause_after(ranked)
            assert await loop.run_once() is False  # nothing new: no ranking, no pause
            return idle, ranked, busy, loop.pause_after(loop.last_compute_seconds)

    idle, ranked, busy, after = asyncio.run(scenario())
    assert idle == 0.5 and after == 0.5  # the interval when rounds cost nothing
    assert ranked == 2.0
    assert busy == pytest.approx(6.0)  # 2 s of 8: a quarter of the time
