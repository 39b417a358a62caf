"""The index syncer against the real catalog app (in process), with a recording fake index."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi.testclient import TestClient

from services.catalog.app import create_app as create_catalog
from services.catalog.settings import CatalogSettings
from services.matching.catalog_client import CatalogClient, CatalogUnavailable
from services.matching.index import IndexSyncer, LoggedChange, demand_query
from services.matching.outcomes import KindOutcomes, OutcomeCounts
from services.matching.ranking import DemandQuery, Match, SupplierDoc
from tests.catalog.conftest import demand_body, platform_body

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class FakeIndex:
    """Records what the syncer asks of an index; ranks nothing."""

    ids: frozenset[str]
    builds: list[int] = field(default_factory=list)

    def rank(
        self,
        demand: DemandQuery,
        kind: str = "all",
        limit: int = 10,
        outcomes: KindOutcomes | None = None,
        *,
        explain: bool = True,
        language: str = "en",
    ) -> list[Match]:
        return []

    def demand_chains(self, demand: DemandQuery) -> tuple[list[str], str]:
        return list(demand.industry_chains), "given"

    def similar(self, supplier_id: str, limit: int = 10, *, language: str = "en") -> list[Match]:
        return []

    def with_changes(self, upserts: Sequence[SupplierDoc], deletes: Sequence[str]) -> FakeIndex:
        return FakeIndex((self.ids - set(deletes)) | {doc.id for doc in upserts}, self.builds)

    def __len__(self) -> int:
        return len(self.ids)


class Builder:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay

    def __call__(self, docs: Sequence[SupplierDoc]) -> FakeIndex:
        import time

        self.calls += 1
        time.sleep(self.delay)
        return FakeIndex(frozenset(doc.id for doc in docs))


class Switch(httpx.AsyncBaseTransport):
    """Routes to the catalog app, or fails like a dead catalog when switched off."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.up = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
def catalog(sqlite_url: str) -> Iterator[TestClient]:
    app = create_catalog(CatalogSettings(database_url=sqlite_url, environment="test"))
    with TestClient(app) as client:
        yield client


@pytest.fixture
async def switch(catalog: TestClient) -> AsyncIterator[Switch]:
    yield Switch(httpx.ASGITransport(app=catalog.app))


def make_syncer(switch: Switch, builder: Builder, **options: object) -> IndexSyncer:
    """A syncer that treats every catalog as large (incremental updates) unless told."""
    client = CatalogClient("http://catalog", httpx.AsyncClient(transport=switch))
    options.setdefault("small_index", 0)
    return IndexSyncer(client, builder, page_size=2, **options)  # type: ignore[arg-type]


async def test_first_sync_reads_the_whole_log_and_builds_once(
    catalog: TestClient, switch: Switch
) -> None:
    ids = [catalog.post("/v1/platforms", json=platform_body()).json()["id"] for _ in range(5)]
    demand = catalog.post("/v1/demands", json=demand_body()).json()
    builder = Builder()
    syncer = make_syncer(switch, builder)
    assert not syncer.ready
    assert await syncer.sync_once()
    assert syncer.ready
    snapshot = syncer.snapshot
    assert snapshot is not None
    assert snapshot.version == 6
    assert set(snapshot.suppliers) == set(ids)
    assert list(snapshot.demands) == [demand["id"]]
    assert builder.calls == 1
    assert syncer.status.catalog_version == 6


async def test_the_hook_gets_every_change_read_with_record_data_but_not_supplier_data(
    catalog: TestClient, switch: Switch
) -> None:
    """The notifier needs a demand's data, and only a supplier's id: the syncer holds the
    supplier as its SupplierDoc, so the hook is not handed the raw record too."""
    platform = catalog.post("/v1/platforms", json=platform_body()).json()
    demand = catalog.post("/v1/demands", json=demand_body()).json()
    told: list[tuple[list[LoggedChange], int]] = []
    syncer = make_syncer(switch, Builder())
    syncer.on_changes = lambda changes, version: told.append((list(changes), version))
    await syncer.sync_once()
    catalog.delete(f"/v1/demands/{demand['id']}")
    await syncer.sync_once()
    first, second = told
    assert [(c.version, c.resource, c.id) for c in first[0]] == [
        (1, "platform", platform["id"]),
        (2, "demand", demand["id"]),
    ]
    assert first[1] == 2
    assert first[0][0].data is None, "a supplier's data stays in its SupplierDoc"
    assert first[0][1].data is not None and first[0][1].data["title"] == demand["title"]
    assert [(c.resource, c.id, c.data) for c in second[0]] == [("demand", demand["id"], None)]
    assert syncer.snapshot is not None
    assert syncer.snapshot.suppliers[platform["id"]].name == platform["name"]


async def test_later_writes_are_applied_incrementally(catalog: TestClient, switch: Switch) -> None:
    first = catalog.post("/v1/platforms", json=platform_body()).json()
    builder = Builder()
    syncer = make_syncer(switch, builder)
    await syncer.sync_once()
    second = catalog.post("/v1/manufacturers", json=platform_body(level=None)).json()
    catalog.delete(f"/v1/platforms/{first['id']}")
    catalog.patch(f"/v1/manufacturers/{second['id']}", json={"name": "改名后的代工厂"})
    assert await syncer.sync_once()
    snapshot = syncer.snapshot
    assert snapshot is not None
    assert isinstance(snapshot.index, FakeIndex)
    assert snapshot.index.ids == {second["id"]}
    assert snapshot.suppliers[second["id"]].name == "改名后的代工厂"
    assert snapshot.suppliers[second["id"]].kind == "manufacturer"
    assert builder.calls == 1, "no full refit for a few changes"
    assert syncer.status.incremental_updates == 1
    assert not await syncer.sync_once(), "nothing new, nothing published"


async def test_wait_for_returns_once_the_version_is_served(
    catalog: TestClient, switch: Switch
) -> None:
    syncer = make_syncer(switch, Builder())
    await syncer.sync_once()
    assert await syncer.wait_for(0, timeout=0.1)
    assert not await syncer.wait_for(1, timeout=0.1)
    version = catalog.post("/v1/demands", json=demand_body()).json()["version"]
    waiter = asyncio.create_task(syncer.wait_for(version, timeout=5))
    await asyncio.sleep(0.05)
    await syncer.sync_once()
    assert await waiter


async def test_unreachable_catalog_keeps_the_last_index_and_catches_up(
    catalog: TestClient, switch: Switch
) -> None:
    catalog.post("/v1/platforms", json=platform_body())
    syncer = make_syncer(switch, Builder(), poll_interval=0.01, max_backoff=0.02)
    await syncer.sync_once()
    before = syncer.snapshot
    switch.up = False
    with pytest.raises(CatalogUnavailable):
        await syncer.sync_once()
    runner = asyncio.create_task(syncer.run())
    await asyncio.sleep(0.1)
    assert not syncer.status.catalog_reachable
    assert syncer.snapshot is before, "the last index keeps serving"
    written = [catalog.post("/v1/demands", json=demand_body()).json() for _ in range(3)]
    switch.up = True
    assert await syncer.wait_for(written[-1]["version"], timeout=2)
    runner.cancel()
    assert syncer.status.catalog_reachable
    assert syncer.snapshot is not None
    assert set(syncer.snapshot.demands) == {d["id"] for d in written}


async def test_many_changes_trigger_a_background_refit_that_loses_nothing(
    catalog: TestClient, switch: Switch
) -> None:
    builder = Builder(delay=0.2)
    syncer = make_syncer(switch, builder, rebuild_after_changes=3)
    await syncer.sync_once()
    for _ in range(3):
        catalog.post("/v1/platforms", json=platform_body())
    await syncer.sync_once()  # 3 incremental changes: schedules a refit
    late = catalog.post("/v1/platforms", json=platform_body()).json()
    await syncer.sync_once()  # applied while the refit runs
    for _ in range(50):
        if builder.calls == 2 and syncer._rebuild is None:
            break
        await asyncio.sleep(0.02)
    assert builder.calls == 2
    snapshot = syncer.snapshot
    assert snapshot is not None
    assert isinstance(snapshot.index, FakeIndex)
    assert late["id"] in snapshot.index.ids, "a change made during the refit is in the new index"
    assert snapshot.index.ids == set(snapshot.suppliers)
    assert syncer._since_build == 1, "the change applied after the refit counts towards the next"


async def test_small_catalog_is_refit_on_every_change(catalog: TestClient, switch: Switch) -> None:
    builder = Builder()
    syncer = make_syncer(switch, builder, small_index=100)
    await syncer.sync_once()
    catalog.post("/v1/platforms", json=platform_body())
    await syncer.sync_once()
    assert builder.calls == 2, "a small index is refit exactly rather than patched"
    catalog.post("/v1/demands", json=demand_body())
    await syncer.sync_once()
    assert builder.calls == 2, "a demand does not change the supplier index"


async def test_an_overdue_refit_runs_even_without_new_changes(
    catalog: TestClient, switch: Switch
) -> None:
    builder = Builder()
    syncer = make_syncer(switch, builder, rebuild_interval=0.0, poll_interval=0.01)
    await syncer.sync_once()
    catalog.post("/v1/platforms", json=platform_body())
    runner = asyncio.create_task(syncer.run())
    for _ in range(100):
        if builder.calls >= 2:
            break
        await asyncio.sleep(0.02)
    runner.cancel()
    assert builder.calls >= 2


async def test_demand_owners_follow_the_log_and_guard_the_matches(
    catalog: TestClient, switch: Switch
) -> None:
    from services.matching.service import MatchingService
    from services.shared.caller import INTERNAL, Caller
    from services.shared.errors import NotFoundError
    from services.shared.taxonomy import load_taxonomy

    def as_consumer(consumer_id: str) -> dict[str, str]:
        # What the gateway sends on behalf of a verified key.
        return {"X-Pilotmatch-Consumer": consumer_id, "X-Pilotmatch-Scopes": "catalog:write"}

    alices = catalog.post("/v1/demands", json=demand_body(), headers=as_consumer("csm_a")).json()
    gone = catalog.post("/v1/demands", json=demand_body(), headers=as_consumer("csm_a")).json()
    unowned = catalog.post("/v1/demands", json=demand_body()).json()
    syncer = make_syncer(switch, Builder())
    await syncer.sync_once()
    catalog.delete(f"/v1/demands/{gone['id']}", headers=as_consumer("csm_a"))
    await syncer.sync_once()
    snapshot = syncer.snapshot
    assert snapshot is not None
    assert dict(snapshot.demand_owners) == {alices["id"]: "csm_a", unowned["id"]: None}

    service = MatchingService(syncer, load_taxonomy())
    for caller in (Caller("csm_a"), Caller("csm_b", is_admin=True), INTERNAL):
        result = await service.matches_for_demand(alices["id"], "all", 5, None, caller)
        assert b'"demand_id":"' + alices["id"].encode() in result.body
    for demand_id in (alices["id"], unowned["id"]):
        with pytest.raises(NotFoundError):
            await service.matches_for_demand(demand_id, "all", 5, None, Caller("csm_b"))


async def test_outcomes_are_counted_per_kind_on_full_and_incremental_sync(
    catalog: TestClient, switch: Switch
) -> None:
    supplier = catalog.post("/v1/platforms", json=platform_body()).json()["id"]
    energy = [
        catalog.post("/v1/demands", json=demand_body(industry_chains=["新能源", "新材料"])).json()
        for _ in range(3)
    ]
    food = catalog.post("/v1/demands", json=demand_body(industry_chains=["食品饮料"])).json()

    def record(demand: dict, outcome: str) -> None:
        body = {"supplier_id": supplier, "outcome": outcome, "reason": "不做"}
        if outcome != "declined":
            del body["reason"]
        assert catalog.post(f"/v1/demands/{demand['id']}/outcomes", json=body).status_code == 201

    record(energy[0], "declined")
    record(food, "completed")
    builder = Builder()
    syncer = make_syncer(switch, builder)
    await syncer.sync_once()
    snapshot = syncer.snapshot
    assert snapshot is not None
    # Completing closed the food demand: the log ends with that change, and the snapshot
    # serves the whole log.
    assert snapshot.version == catalog.get("/v1/changes").json()["current_version"]
    energy_evidence = snapshot.outcomes_for(demand_query({"industry_chains": ["新能源"]}))
    assert energy_evidence is not None and energy_evidence.kind == "新能源"
    assert energy_evidence.counts[supplier] == OutcomeCounts(positive=0, declined=1)
    food_evidence = snapshot.outcomes_for(demand_query({"industry_chains": ["食品饮料"]}))
    assert food_evidence is not None
    assert food_evidence.counts[supplier] == OutcomeCounts(positive=1, declined=0)
    assert snapshot.outcomes_for(demand_query({"industry_chains": []})) is None

    # Later outcomes arrive incrementally, without refitting the index.
    record(energy[1], "declined")
    record(energy[2], "viewed")
    assert await syncer.sync_once()
    later = syncer.snapshot
    assert later is not None and later.index is snapshot.index
    evidence = later.outcomes_for(demand_query({"industry_chains": ["新能源"]}))
    assert evidence is not None
    assert evidence.counts[supplier] == OutcomeCounts(positive=0, declined=2)
    assert builder.calls == 1


def test_only_admins_and_internal_callers_read_the_syncers_last_error() -> None:
    from types import SimpleNamespace

    from services.matching.index import SyncStatus
    from services.matching.service import MatchingService
    from services.shared.caller import INTERNAL, Caller
    from services.shared.taxonomy import load_taxonomy

    error = "ConnectError: catalog.internal:8001 refused"
    syncer = SimpleNamespace(snapshot=None, status=SyncStatus(last_error=error))
    service = MatchingService(syncer, load_taxonomy())  # type: ignore[arg-type]
    assert service.status(INTERNAL).last_error == error
    assert service.status(Caller("admin", is_admin=True)).last_error == error
    assert service.status(Caller("alice")).last_error is None


# ------------------------------------------------------------------ reading pages ahead


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests to the catalog, records each ``after`` asked for, and can strip the
    page headers (an older catalog), fail from the n-th request on (a catalog going away) or
    hold it without an answer (a slow one)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, headers: bool = True) -> None:
        self.inner = inner
        self.headers = headers
        self.asked: list[int] = []
        self.fail_from: int | None = None
        self.hold_from: int | None = None
        self.new_request = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(int(request.url.params["after"]))
        self.new_request.set()
        if self.fail_from is not None and len(self.asked) >= self.fail_from:
            raise httpx.ConnectError("connection refused", request=request)
        if self.hold_from is not None and len(self.asked) >= self.hold_from:
            await asyncio.Event().wait()
        response = await self.inner.handle_async_request(request)
        if not self.headers:
            await response.aread()
            headers = [(k, v) for k, v in response.headers.items() if not k.startswith("x-")]
            return httpx.Response(response.status_code, headers=headers, content=response.content)
        return response


@pytest.fixture
def seven_changes(catalog: TestClient) -> None:
    for _ in range(7):
        catalog.post("/v1/platforms", json=platform_body())


async def read_pages(client: CatalogClient, on_page: object = None) -> list[list[int]]:
    import contextlib

    versions: list[list[int]] = []
    async with contextlib.aclosing(client.pages(0, limit=3)) as pages:
        async for page in pages:
            versions.append([c.version for c in page.items])
            if callable(on_page):
                await on_page()
    return versions


async def test_pages_ask_for_the_next_page_before_the_reader_is_done_with_this_one(
    catalog: TestClient, seven_changes: None
) -> None:
    recorder = Recorder(httpx.ASGITransport(app=catalog.app))
    client = CatalogClient("http://catalog", httpx.AsyncClient(transport=recorder))
    seen_when_handed: list[list[int]] = []

    async def on_page() -> None:
        # The reader is still busy with the page: the next read must already be under way.
        recorder.new_request.clear()
        if len(seen_when_handed) < 2:
            async with asyncio.timeout(5):
                while len(recorder.asked) < len(seen_when_handed) + 2:
                    await recorder.new_request.wait()
                    recorder.new_request.clear()
        seen_when_handed.append(list(recorder.asked))

    assert await read_pages(client, on_page) == [[1, 2, 3], [4, 5, 6], [7]]
    assert seen_when_handed[:2] == [[0, 3], [0, 3, 6]]
    assert recorder.asked == [0, 3, 6]  # the last page (reaching version 7) asks for no more


async def test_pages_without_the_headers_are_read_one_after_the_other(
    catalog: TestClient, seven_changes: None
) -> None:
    recorder = Recorder(httpx.ASGITransport(app=catalog.app), headers=False)
    client = CatalogClient("http://catalog", httpx.AsyncClient(transport=recorder))
    asked_when_handed: list[int] = []

    async def on_page() -> None:
        await asyncio.sleep(0.05)
        asked_when_handed.append(len(recorder.asked))

    assert await read_pages(client, on_page) == [[1, 2, 3], [4, 5, 6], [7]]
    assert asked_when_handed == [1, 2, 3] and recorder.asked == [0, 3, 6]


async def test_a_reader_stopping_early_leaves_no_read_running(
    catalog: TestClient, seven_changes: None
) -> None:
    import contextlib

    recorder = Recorder(httpx.ASGITransport(app=catalog.app))
    recorder.hold_from = 2  # the read ahead never gets an answer
    client = CatalogClient("http://catalog", httpx.AsyncClient(transport=recorder))

    def reads() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if "_changes_response" in repr(t.get_coro())]

    async with contextlib.aclosing(client.pages(0, limit=3)) as pages:
        async for _page in pages:
            async with asyncio.timeout(5):
                while len(recorder.asked) < 2:
                    await asyncio.sleep(0.01)
            assert reads()  # the read ahead is waiting for its answer
            break
    await asyncio.sleep(0.05)
    assert not reads()


async def test_a_catalog_failing_on_a_page_read_ahead_fails_the_read(
    catalog: TestClient, seven_changes: None
) -> None:
    recorder = Recorder(httpx.ASGITransport(app=catalog.app))
    recorder.fail_from = 2
    client = CatalogClient("http://catalog", httpx.AsyncClient(transport=recorder))
    got: list[list[int]] = []

    async def on_page() -> None:
        got.append([])

    with pytest.raises(CatalogUnavailable):
        await read_pages(client, on_page)
    assert len(got) == 1  # the first page was handed over, then the failure surfaced
