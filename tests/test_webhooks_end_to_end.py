"""Webhooks end to end, through the gateway: a real receiver on loopback that is down for the
first deliveries later holds every event exactly once by ``webhook-id``, each validly signed."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook as StandardWebhook

from tests.catalog.conftest import demand_body, platform_body
from tests.stack import in_process_stack
from tests.webhook_receiver import Receiver

FAILURES = 4


@pytest.fixture
def api(database_url: str) -> Iterator[TestClient]:
    fast = {"webhook_poll_interval_seconds": 0.05, "webhook_retry_scale": 0.0002}
    with in_process_stack(database_url, key_cache_seconds=0, catalog_settings=fast) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(fail_first=FAILURES).start()
    yield running
    running.stop()


def _key(api: TestClient, consumer: str, *scopes: str) -> dict[str, str]:
    body = {"label": consumer, "consumer": consumer, "scopes": list(scopes)}
    response = api.post("/v1/admin/keys", json=body)
    assert response.status_code == 201, response.text
    return {"X-API-Key": response.json()["key"]}


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the condition"
        time.sleep(0.02)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_receiver_down_at_first_gets_every_event_once_signed(
    api: TestClient, receiver: Receiver
) -> None:
    alice = _key(api, "alice", "catalog:read")
    bob = _key(api, "bob", "catalog:read")
    webhook = api.post(
        "/v1/webhooks",
        json={"url": receiver.url, "event_types": ["catalog.changed"]},
        headers=alice,
    ).json()
    unreachable = api.post(
        "/v1/webhooks",
        json={"url": f"http://127.0.0.1:{_closed_port()}/x", "event_types": ["catalog.changed"]},
        headers=bob,
    ).json()
    # Ownership: Bob sees his webhook only; Alice's does not exist for him.
    assert [w["id"] for w in api.get("/v1/webhooks", headers=bob).json()["items"]] == [
        unreachable["id"]
    ]
    assert api.get(f"/v1/webhooks/{webhook['id']}", headers=bob).status_code == 404
    # Headers a caller sends to pass for someone else, or for admin, never reach the catalog.
    spoofed = {**bob, "X-Pilotmatch-Scopes": "admin", "X-Pilotmatch-Consumer": "admin"}
    listed = api.get("/v1/webhooks", headers=spoofed).json()["items"]
    assert [w["id"] for w in listed] == [unreachable["id"]]
    everyone = api.get("/v1/webhooks").json()["items"]  # the admin key sees all
    assert {w["id"] for w in everyone} == {webhook["id"], unreachable["id"]}
    assert api.get(f"/v1/webhooks/{webhook['id']}/deliveries", headers=bob).status_code == 404

    # Five writes of shared resources, five transactions: five events. (Demands are private
    # to their owner; tests/catalog/test_webhooks.py covers where their events go.)
    platform = api.post("/v1/platforms", json=platform_body()).json()
    api.post("/v1/manufacturers", json=platform_body(name="东莞精密代工厂"))
    imported = {"platforms": [platform_body(external_ref=f"p{i}") for i in range(30)]}
    assert api.post("/v1/import", json=imported).status_code == 200
    api.patch(f"/v1/platforms/{platform['id']}", json={"district": "东城"})
    last = api.delete(f"/v1/platforms/{platform['id']}").json()["version"]

    deliveries = f"/v1/webhooks/{webhook['id']}/deliveries"

    def delivery_log() -> list[dict[str, Any]]:
        return list(api.get(deliveries, headers=alice).json()["items"])

    # Once the log says delivered, the worker sends nothing more for those deliveries.
    _wait_for(lambda: [d["status"] for d in delivery_log()] == ["delivered"] * 5)
    accepted = receiver.accepted()
    ids = Counter(r.headers["webhook-id"] for r in accepted)
    assert len(ids) == 5 and set(ids.values()) == {1}
    assert len(receiver.requests) == 5 + FAILURES  # each refusal was retried, nothing more
    verifier = StandardWebhook(webhook["secret"])
    covered: set[int] = set()
    for request in receiver.requests:
        payload: dict[str, Any] = verifier.verify(request.body, request.headers)
        assert payload == orjson.loads(request.body)
        assert payload["type"] == "catalog.changed"
        covered.update(range(payload["data"]["from_version"], payload["data"]["to_version"] + 1))
    assert covered == set(range(1, last + 1))  # the events account for every change

    log = delivery_log()
    assert sum(d["attempts"] for d in log) == 5 + FAILURES
    assert {d["event_id"] for d in log} == set(ids)

    # The unreachable endpoint keeps its events, retried, with the error in the log.
    path = f"/v1/webhooks/{unreachable['id']}/deliveries"
    _wait_for(lambda: all(d["attempts"] >= 2 for d in api.get(path, headers=bob).json()["items"]))
    pending = api.get(path, headers=bob).json()["items"]
    assert len(pending) == 5 and {d["status"] for d in pending} == {"pending"}
    assert all("ConnectError" in d["last_error"] for d in pending)

    # Manual redelivery sends the same message again, under the same webhook-id.
    chosen = log[0]
    answer = api.post(
        f"/v1/webhooks/{webhook['id']}/deliveries/{chosen['id']}/redeliver", headers=alice
    )
    assert answer.status_code == 202
    _wait_for(lambda: len(receiver.accepted()) == 6)
    again = receiver.accepted()[-1]
    assert again.headers["webhook-id"] == chosen["event_id"]
    verifier.verify(again.body, again.headers)


def test_matching_tells_demand_results_and_reverse_matches(
    api: TestClient, receiver: Receiver
) -> None:
    alice = _key(api, "alice", "catalog:read")
    types = ["demand.matched", "supplier.matches_open_demand"]
    # The admin's webhook sees every demand's events; Alice's only her own demands'.
    webhook = api.post("/v1/webhooks", json={"url": receiver.url, "event_types": types}).json()
    other = Receiver().start()
    try:
        api.post("/v1/webhooks", json={"url": other.url, "event_types": types}, headers=alice)
        first = api.post("/v1/platforms", json=platform_body()).json()
        demand = api.post("/v1/demands", json=demand_body()).json()

        def of_type(event_type: str) -> list[dict[str, Any]]:
            bodies = [orjson.loads(r.body) for r in receiver.accepted()]
            return [b for b in bodies if b["type"] == event_type]

        _wait_for(lambda: bool(of_type("demand.matched")))
        (matched,) = of_type("demand.matched")
        assert matched["data"]["demand_id"] == demand["id"]
        assert matched["data"]["reason"] == "first_computed"
        assert [r["supplier_id"] for r in matched["data"]["results"]] == [first["id"]]

        second = api.post(
            "/v1/platforms", json=platform_body(name="固态电池中试线", external_ref="p2")
        ).json()
        _wait_for(lambda: bool(of_type("supplier.matches_open_demand")))
        (reverse,) = of_type("supplier.matches_open_demand")
        assert reverse["data"]["demand_id"] == demand["id"]
        assert reverse["data"]["supplier_id"] == second["id"]
        _wait_for(lambda: len(of_type("demand.matched")) == 2)
        assert second["id"] in of_type("demand.matched")[1]["data"]["entered"]

        verifier = StandardWebhook(webhook["secret"])
        for request in receiver.requests:
            verifier.verify(request.body, request.headers)
        ids = Counter(r.headers["webhook-id"] for r in receiver.accepted())
        assert set(ids.values()) == {1}
        # The demand has no owner (demands gain owners elsewhere): Alice is told nothing.
        assert other.requests == []
    finally:
        other.stop()
