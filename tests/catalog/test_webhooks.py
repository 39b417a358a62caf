"""Webhooks: registration and ownership, the outbox written in the change's transaction,
fan-out, the retry schedule, signatures, the delivery log and redelivery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook as StandardWebhook

from services.catalog import schemas as s
from services.catalog.app import create_app
from services.catalog.db import Database
from services.catalog.delivery import DeliveryWorker
from services.catalog.models import Webhook, WebhookDelivery, WebhookEvent
from services.catalog.repository import CatalogRepository
from services.catalog.service import CatalogService, random_id, utcnow
from services.catalog.webhooks import (
    CHANGES_LISTED,
    AttemptOutcome,
    RetrySchedule,
    WebhookService,
    check_url,
    message_body,
    record_attempt,
    refused_target,
    signed_headers,
)
from services.shared.caller import INTERNAL, Caller
from services.shared.errors import InvalidInputError, NotFoundError
from services.shared.taxonomy import load_taxonomy
from tests.catalog.conftest import catalog_settings, demand_body, platform_body
from tests.webhook_receiver import Receiver

ALICE = {"X-Pilotmatch-Consumer": "csm_alice", "X-Pilotmatch-Scopes": "catalog:read"}
BOB = {"X-Pilotmatch-Consumer": "csm_bob", "X-Pilotmatch-Scopes": "catalog:read catalog:write"}
ADMIN = {"X-Pilotmatch-Consumer": "admin", "X-Pilotmatch-Scopes": "admin catalog:read"}
HOOK = "https://hooks.example.com/pilotmatch"


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    # No worker: these tests look at the outbox and the log; delivery has its own tests.
    settings = catalog_settings(database_url, webhook_delivery_enabled=False)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _register(client: TestClient, who: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body = {"url": HOOK, "event_types": ["catalog.changed"], **overrides}
    response = client.post("/v1/webhooks", json=body, headers=who)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _db(client: TestClient) -> Database:
    return client.app.state.db  # type: ignore[attr-defined,no-any-return]


def _events(client: TestClient) -> list[WebhookEvent]:
    with _db(client).session() as session:
        return list(session.execute(select(WebhookEvent).order_by(WebhookEvent.pk)).scalars())


def _deliveries(client: TestClient) -> list[WebhookDelivery]:
    with _db(client).session() as session:
        stmt = select(WebhookDelivery).order_by(WebhookDelivery.pk)
        return list(session.execute(stmt).scalars())


# ---------------------------------------------------------------- registration and ownership


def test_the_secret_is_shown_on_creation_and_never_listed(client: TestClient) -> None:
    created = _register(client, ALICE, description="企业服务平台")
    assert created["secret"].startswith("whsec_")
    assert created["owner_id"] == "csm_alice"
    assert created["enabled"] is True
    read = client.get(f"/v1/webhooks/{created['id']}", headers=ALICE).json()
    assert "secret" not in read
    assert read["description"] == "企业服务平台"
    listed = client.get("/v1/webhooks", headers=ALICE).json()["items"]
    assert [w["id"] for w in listed] == [created["id"]]
    assert all("secret" not in w for w in listed)


def test_a_consumer_sees_only_its_own_webhooks_and_admin_sees_all(client: TestClient) -> None:
    alice = _register(client, ALICE)
    bob = _register(client, BOB)
    assert [w["id"] for w in client.get("/v1/webhooks", headers=ALICE).json()["items"]] == [
        alice["id"]
    ]
    assert {w["id"] for w in client.get("/v1/webhooks", headers=ADMIN).json()["items"]} == {
        alice["id"],
        bob["id"],
    }
    # Bob's webhook does not exist for Alice, whatever she tries.
    path = f"/v1/webhooks/{bob['id']}"
    assert client.get(path, headers=ALICE).status_code == 404
    assert client.patch(path, json={"enabled": False}, headers=ALICE).status_code == 404
    assert client.delete(path, headers=ALICE).status_code == 404
    assert client.get(path + "/deliveries", headers=ALICE).status_code == 404
    assert client.post(path + "/rotate-secret", headers=ALICE).status_code == 404
    assert client.get(path, headers=BOB).status_code == 200
    assert client.get(path, headers=ADMIN).status_code == 200


def test_patch_rotate_and_delete(client: TestClient) -> None:
    created = _register(client, ALICE)
    path = f"/v1/webhooks/{created['id']}"
    patched = client.patch(
        path,
        json={"enabled": False, "event_types": ["demand.matched", "demand.matched"]},
        headers=ALICE,
    ).json()
    assert patched["enabled"] is False
    assert patched["event_types"] == ["demand.matched"]
    assert client.patch(path, json={"url": None}, headers=ALICE).status_code == 422
    rotated = client.post(path + "/rotate-secret", headers=ALICE).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert client.delete(path, headers=ALICE).status_code == 204
    assert client.get(path, headers=ALICE).status_code == 404


def test_an_id_with_a_control_character_is_404_not_a_query(client: TestClient) -> None:
    # PostgreSQL text cannot hold NUL: looking such an id up was a 500 there.
    webhook = _register(client, ALICE)
    for bad in ("%00", "whk_%00", "whk%01x"):
        for method, path in (
            ("GET", f"/v1/webhooks/{bad}"),
            ("PATCH", f"/v1/webhooks/{bad}"),
            ("DELETE", f"/v1/webhooks/{bad}"),
            ("POST", f"/v1/webhooks/{bad}/rotate-secret"),
            ("GET", f"/v1/webhooks/{bad}/deliveries"),
            ("POST", f"/v1/webhooks/{webhook['id']}/deliveries/{bad}/redeliver"),
        ):
            body = {"enabled": False} if method == "PATCH" else None
            response = client.request(method, path, json=body, headers=ALICE)
            assert response.status_code == 404, (method, path, response.text)
    assert client.get(f"/v1/webhooks/{webhook['id']}", headers=ALICE).json()["enabled"] is True


def test_webhooks_are_paginated(client: TestClient) -> None:
    ids = [_register(client, ALICE)["id"] for _ in range(3)]
    first = client.get("/v1/webhooks", params={"limit": 2}, headers=ALICE).json()
    second = client.get(
        "/v1/webhooks", params={"limit": 2, "cursor": first["next_cursor"]}, headers=ALICE
    ).json()
    assert [w["id"] for w in first["items"] + second["items"]] == ids
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://hooks.example.com/x", "event_types": ["catalog.changed"]},
        {"url": "https://user:pw@hooks.example.com/x", "event_types": ["catalog.changed"]},
        {"url": "https://@hooks.example.com/x", "event_types": ["catalog.changed"]},
        {"url": "https://:@hooks.example.com/x", "event_types": ["catalog.changed"]},
        {"url": HOOK, "event_types": []},
        {"url": HOOK, "event_types": ["demand.created"]},
    ],
)
def test_bad_registrations_are_422(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/v1/webhooks", json=body, headers=ALICE)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_an_at_sign_in_the_path_or_query_is_no_credential(client: TestClient) -> None:
    url = "https://hooks.example.com/x@y?to=ops@example.com"
    created = client.post(
        "/v1/webhooks", json={"url": url, "event_types": ["catalog.changed"]}, headers=ALICE
    )
    assert created.status_code == 201, created.text
    assert created.json()["url"] == url


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/x",  # was a 500: urlsplit raises on the unclosed bracket
        "http://[v1.x]/x",
        "https://hooks.example.com:99999/x",
        "https://hooks.example.com:-1/x",
        "https://hooks.example.com:0/x",  # no connection can be made to port 0
        "https://🚀.example.com/x",  # not valid IDNA
        "https://xn--.example.com/x",
    ],
)
def test_urls_the_sender_could_not_parse_are_422_on_create_and_patch(
    client: TestClient, url: str
) -> None:
    # Stored, each would fail every delivery attempt before any request was made.
    created = client.post(
        "/v1/webhooks", json={"url": url, "event_types": ["catalog.changed"]}, headers=ALICE
    )
    assert created.status_code == 422, created.text
    assert created.json()["errors"][0]["type"] == "url_invalid"
    webhook = _register(client, ALICE)
    patched = client.patch(f"/v1/webhooks/{webhook['id']}", json={"url": url}, headers=ALICE)
    assert patched.status_code == 422, patched.text
    assert client.get(f"/v1/webhooks/{webhook['id']}", headers=ALICE).json()["url"] == HOOK


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://192.168.0.7/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://internal.example.org/x",  # resolves to a private address
    ],
)
def test_production_refuses_private_targets(url: str) -> None:
    def resolve(host: str) -> list[str]:
        return ["10.0.0.8"] if host == "internal.example.org" else ["93.184.216.34"]

    with pytest.raises(InvalidInputError):
        check_url(url, allow_private=False, resolve=resolve)
    check_url(url, allow_private=True, resolve=resolve)  # development and test allow them


def test_public_targets_pass_the_ssrf_check() -> None:
    assert refused_target("https://hooks.example.com/x", lambda _h: ["93.184.216.34"]) is None


def test_production_setting_decides_private_targets(database_url: str) -> None:
    body = {"url": "http://127.0.0.1:9/x", "event_types": ["catalog.changed"]}
    strict = catalog_settings(database_url, webhook_delivery_enabled=False)
    strict = strict.model_copy(update={"environment": "production"})
    with TestClient(create_app(strict)) as test_client:
        assert test_client.post("/v1/webhooks", json=body, headers=ALICE).status_code == 422
    allowed = strict.model_copy(update={"webhook_allow_private_targets": True})
    with TestClient(create_app(allowed)) as test_client:
        assert test_client.post("/v1/webhooks", json=body, headers=ALICE).status_code == 201


# ---------------------------------------------------------------- the outbox


def test_a_write_adds_one_catalog_changed_event_per_transaction(client: TestClient) -> None:
    webhook = _register(client, ALICE)
    platform = client.post("/v1/platforms", json=platform_body()).json()
    items = [
        platform_body(external_ref=f"p{i}", name=f"平台{i}") for i in range(CHANGES_LISTED + 5)
    ]
    report = client.post(
        "/v1/import", json={"platforms": items, "demands": [demand_body(external_ref="d1")]}
    )
    assert report.status_code == 200
    events = _events(client)
    assert [e.type for e in events] == ["catalog.changed", "catalog.changed"]
    single, bulk = events[0].data, events[1].data
    assert single["from_version"] == single["to_version"] == platform["version"]
    assert single["changes"] == [
        {"version": 1, "resource": "platform", "id": platform["id"], "op": "upsert"}
    ]
    assert bulk["from_version"] == platform["version"] + 1
    assert bulk["to_version"] == report.json()["version"]
    # The demand (created from inside: no owner) is private: it reaches admin webhooks only,
    # in an event of its own, so Alice's event counts the shared platforms alone.
    assert bulk["counts"] == {"platform": {"upsert": CHANGES_LISTED + 5}}
    assert len(bulk["changes"]) == CHANGES_LISTED and bulk["truncated"] is True
    assert [(d.webhook_id, d.status) for d in _deliveries(client)] == [
        (webhook["id"], "pending"),
        (webhook["id"], "pending"),
    ]


def test_a_write_that_changes_nothing_adds_no_event(client: TestClient) -> None:
    _register(client, ALICE)
    body = {"platforms": [platform_body(external_ref="p1")]}
    client.post("/v1/import", json=body)
    client.post("/v1/import", json=body)
    assert len(_events(client)) == 1


def test_without_subscribers_no_event_is_written(client: TestClient) -> None:
    _register(client, ALICE, event_types=["demand.matched"])
    client.post("/v1/platforms", json=platform_body())
    assert _events(client) == []


def test_a_failed_write_leaves_no_event(client: TestClient) -> None:
    _register(client, ALICE)
    db = _db(client)
    with db.session(write=True) as session:
        service = CatalogService(CatalogRepository(session), load_taxonomy())
        service.create("platform", s.SupplierCreate.model_validate(platform_body()))
        assert session.execute(select(func.count()).select_from(WebhookEvent)).scalar() == 1
        session.rollback()  # what a request that fails after the write does
    assert _events(client) == [] and _deliveries(client) == []
    # And through HTTP: a conflict rolls the whole write back, event included.
    client.post("/v1/platforms", json=platform_body(external_ref="x"))
    assert client.post("/v1/platforms", json=platform_body(external_ref="x")).status_code == 409
    assert len(_events(client)) == 1


def test_events_reach_only_webhooks_that_existed_and_were_enabled(client: TestClient) -> None:
    early = _register(client, ALICE)
    disabled = _register(client, BOB)
    client.patch(f"/v1/webhooks/{disabled['id']}", json={"enabled": False}, headers=BOB)
    _register(client, BOB, event_types=["demand.matched"])
    client.post("/v1/platforms", json=platform_body())
    late = _register(client, ADMIN)
    assert [d.webhook_id for d in _deliveries(client)] == [early["id"]]
    client.post("/v1/platforms", json=platform_body(name="另一个平台"))
    assert sorted(d.webhook_id for d in _deliveries(client)[1:]) == sorted(
        [early["id"], late["id"]]
    )


def test_demand_changes_reach_only_the_owner_and_admin(client: TestClient) -> None:
    alice = _register(client, ALICE)
    bob = _register(client, BOB)
    admin = _register(client, ADMIN)
    writer = {**ALICE, "X-Pilotmatch-Scopes": "catalog:read catalog:write"}
    demand = client.post("/v1/demands", json=demand_body(), headers=writer).json()
    deliveries = _deliveries(client)
    assert sorted(d.webhook_id for d in deliveries) == sorted([alice["id"], admin["id"]])
    assert bob["id"] not in {d.webhook_id for d in deliveries}
    (event,) = _events(client)
    assert event.data["changes"] == [
        {"version": demand["version"], "resource": "demand", "id": demand["id"], "op": "upsert"}
    ]
    # A write of shared and private items is split: Bob learns of the platform only.
    client.post(
        "/v1/import",
        json={"platforms": [platform_body(external_ref="p1")], "demands": [demand_body()]},
        headers=writer,
    )
    to_bob = [d.event_id for d in _deliveries(client) if d.webhook_id == bob["id"]]
    (bobs,) = [e for e in _events(client) if e.id in to_bob]
    assert bobs.data["counts"] == {"platform": {"upsert": 1}}
    to_alice = {d.event_id for d in _deliveries(client) if d.webhook_id == alice["id"]}
    counts = [e.data["counts"] for e in _events(client) if e.id in to_alice]
    assert {"demand": {"upsert": 1}} in counts and {"platform": {"upsert": 1}} in counts


def _event(event_id: str, owner: str | None, event_type: str = "demand.matched") -> dict[str, Any]:
    data = {"demand_id": "dmd_1", "top": [{"supplier_id": "plt_1", "rank": 1, "score": 0.9}]}
    return {"id": event_id, "type": event_type, "data": data, "owner": owner}


def test_demand_events_go_to_the_owner_and_admin_only(client: TestClient) -> None:
    alice = _register(client, ALICE, event_types=["demand.matched"])
    _register(client, BOB, event_types=["demand.matched"])
    admin = _register(client, ADMIN, event_types=["demand.matched"])
    answer = client.post("/internal/events", json={"events": [_event("e1", "csm_alice")]})
    assert answer.json() == {
        "accepted": True,
        "inserted": 1,
        "duplicates": 0,
        "cursor": None,
        "subscribed_event_types": ["demand.matched"],
    }
    assert sorted(d.webhook_id for d in _deliveries(client)) == sorted([alice["id"], admin["id"]])
    # A demand without an owner (created before ownership existed) reaches admin only.
    client.post("/internal/events", json={"events": [_event("e2", None)]})
    assert [d.webhook_id for d in _deliveries(client) if d.event_id == "e2"] == [admin["id"]]


def test_internal_events_are_stored_once_by_id(client: TestClient) -> None:
    _register(client, ADMIN, event_types=["supplier.matches_open_demand"])
    batch = {"events": [_event("e1", None, "supplier.matches_open_demand")]}
    assert client.post("/internal/events", json=batch).json()["inserted"] == 1
    again = client.post("/internal/events", json=batch).json()
    assert (again["inserted"], again["duplicates"]) == (0, 1)
    assert len(_events(client)) == 1 and len(_deliveries(client)) == 1
    subscriptions = client.get("/internal/events/subscriptions").json()
    assert subscriptions == {
        "subscribed_event_types": ["supplier.matches_open_demand"],
        "cursor": None,
    }


def test_events_move_the_producer_cursor_by_compare_and_set(client: TestClient) -> None:
    _register(client, ADMIN, event_types=["demand.matched"])
    cursor = client.get("/internal/events/subscriptions", params={"cursor": "matching"}).json()
    assert cursor["cursor"] == 0
    first = {
        "events": [_event("e1", None)],
        "cursor": {"name": "matching", "expected": 0, "version": 7},
    }
    assert client.post("/internal/events", json=first).json()["cursor"] == 7
    # A second replica that worked from 0 too is refused, and writes nothing.
    late = {
        "events": [_event("e2", None)],
        "cursor": {"name": "matching", "expected": 0, "version": 9},
    }
    refused = client.post("/internal/events", json=late).json()
    assert (refused["accepted"], refused["inserted"], refused["cursor"]) == (False, 0, 7)
    assert [e.id for e in _events(client)] == ["e1"]
    assert (
        client.get("/internal/events/subscriptions", params={"cursor": "matching"}).json()["cursor"]
        == 7
    )


# ---------------------------------------------------------------- schedule and signatures


def test_the_retry_schedule_follows_standard_webhooks_and_gives_up() -> None:
    schedule = RetrySchedule(jitter=0)
    delays = [schedule.delay_after(n) for n in range(1, schedule.max_attempts)]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert sum(d for d in delays if d is not None) > 24 * 3600  # far beyond an hour's outage
    assert schedule.delay_after(schedule.max_attempts) is None
    scaled = RetrySchedule(scale=0.001, jitter=0)
    assert scaled.delay_after(2) == pytest.approx(0.3)
    jittered = RetrySchedule(jitter=0.1)
    assert jittered.delay_after(1, rand=lambda: 0.0) == pytest.approx(4.5)
    assert jittered.delay_after(1, rand=lambda: 1.0) == pytest.approx(5.5)


def test_signatures_verify_with_the_standard_webhooks_library() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    now = datetime.now(UTC)
    body = message_body("catalog.changed", now, {"from_version": 1, "to_version": 1})
    headers = signed_headers(secret, "msg_1", now, body)
    payload = StandardWebhook(secret).verify(body, headers)
    assert payload["type"] == "catalog.changed"
    assert payload["data"] == {"from_version": 1, "to_version": 1}
    tampered = body.replace(b'"to_version":1', b'"to_version":2')
    with pytest.raises(Exception, match="signature"):
        StandardWebhook(secret).verify(tampered, headers)


# ---------------------------------------------------------------- attempts, log, redelivery


def test_failed_attempts_are_logged_and_rescheduled_until_given_up(client: TestClient) -> None:
    webhook = _register(client, ALICE)
    client.post("/v1/platforms", json=platform_body())
    delivery_id = _deliveries(client)[0].id
    schedule = RetrySchedule(jitter=0)
    now = utcnow()
    with _db(client).transaction() as session:
        row = record_attempt(
            CatalogRepository(session), delivery_id, AttemptOutcome(503, None, 12), now, schedule
        )
        assert row is not None and row.next_attempt_at == now + timedelta(seconds=5)
    log = client.get(f"/v1/webhooks/{webhook['id']}/deliveries", headers=ALICE).json()["items"]
    assert log[0]["status"] == "pending"
    assert (log[0]["attempts"], log[0]["last_status_code"], log[0]["last_duration_ms"]) == (
        1,
        503,
        12,
    )
    assert log[0]["last_error"] == "receiver answered 503"
    with _db(client).transaction() as session:
        repo = CatalogRepository(session)
        for _ in range(schedule.max_attempts - 1):
            outcome = AttemptOutcome(None, "ConnectError: refused", 1)
            row = record_attempt(repo, delivery_id, outcome, now, schedule)
    log = client.get(
        f"/v1/webhooks/{webhook['id']}/deliveries", params={"status": "failed"}, headers=ALICE
    ).json()["items"]
    assert log[0]["status"] == "failed" and log[0]["attempts"] == schedule.max_attempts
    assert log[0]["next_attempt_at"] is None and log[0]["last_error"] == "ConnectError: refused"
    # Manual redelivery makes it due again.
    redelivered = client.post(
        f"/v1/webhooks/{webhook['id']}/deliveries/{delivery_id}/redeliver", headers=ALICE
    )
    assert redelivered.status_code == 202
    assert redelivered.json()["status"] == "pending"
    assert redelivered.json()["next_attempt_at"] is not None
    other = f"/v1/webhooks/{webhook['id']}/deliveries/dlv_missing/redeliver"
    assert client.post(other, headers=ALICE).status_code == 404
    mine = f"/v1/webhooks/{webhook['id']}/deliveries/{delivery_id}/redeliver"
    assert client.post(mine, headers=BOB).status_code == 404


def test_the_worker_signs_sends_and_records(client: TestClient) -> None:
    webhook = _register(client, ALICE)
    client.post("/v1/platforms", json=platform_body())
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if len(seen) == 1 else 204)

    async def run() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
            worker = DeliveryWorker(
                _db(client), http, RetrySchedule(scale=0.0, jitter=0), clock=utcnow
            )
            return [await worker.run_once(), await worker.run_once(), await worker.run_once()]

    assert asyncio.run(run()) == [1, 1, 0]
    assert len(seen) == 2
    assert seen[0].headers["webhook-id"] == seen[1].headers["webhook-id"]
    for request in seen:
        payload = StandardWebhook(webhook["secret"]).verify(request.content, dict(request.headers))
        assert payload["type"] == "catalog.changed"
    (delivery,) = _deliveries(client)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 204)


def test_a_url_the_client_cannot_send_to_fails_its_attempt_not_the_round(
    client: TestClient,
) -> None:
    # Stored before the URL check refused such URLs: httpx raises InvalidURL (no HTTPError)
    # while building the request. That used to fail the whole round, unrecorded, every round.
    good = _register(client, ALICE)
    bad = _register(client, ALICE, url="https://hooks.example.com/placeholder")
    with _db(client).transaction() as session:
        row = CatalogRepository(session).get(Webhook, bad["id"])
        assert row is not None
        row.url = "https://🚀.example.com/x"
    client.post("/v1/platforms", json=platform_body())
    seen: list[str] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(204)

    async def run() -> int:
        async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
            worker = DeliveryWorker(_db(client), http, RetrySchedule(jitter=0), clock=utcnow)
            return await worker.run_once()

    assert asyncio.run(run()) == 2
    assert seen == [HOOK]
    outcomes = {d.webhook_id: d for d in _deliveries(client)}
    assert (outcomes[good["id"]].status, outcomes[good["id"]].attempts) == ("delivered", 1)
    failed = outcomes[bad["id"]]
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert failed.last_error is not None and failed.last_error.startswith("InvalidURL: ")


def test_a_claimed_delivery_is_not_claimed_again_while_leased(client: TestClient) -> None:
    _register(client, ALICE)
    client.post("/v1/platforms", json=platform_body())
    now = utcnow()
    with _db(client).transaction() as session:
        first = CatalogRepository(session).claim_due_deliveries(now, now + timedelta(minutes=1), 10)
    with _db(client).transaction() as session:
        again = CatalogRepository(session).claim_due_deliveries(now, now, 10)
        later = CatalogRepository(session).claim_due_deliveries(
            now + timedelta(minutes=2), now + timedelta(minutes=3), 10
        )
    assert len(first) == 1 and again == [] and len(later) == 1


def test_production_sends_webhooks_through_pinned_connections(database_url: str) -> None:
    from services.catalog.pinning import PinnedTransport

    settings = catalog_settings(database_url, webhook_delivery_enabled=False)
    for environment, pinned in (("production", True), ("test", False)):
        app = create_app(settings.model_copy(update={"environment": environment}))
        with TestClient(app) as test_client:
            client = test_client.app.state.delivery_worker.client  # type: ignore[attr-defined]
            # httpx keeps the transport it was given privately; this is the wiring under test.
            assert isinstance(client._transport, PinnedTransport) is pinned


def test_a_consumer_may_hold_a_bounded_number_of_webhooks(database_url: str) -> None:
    settings = catalog_settings(
        database_url, webhook_delivery_enabled=False, webhook_max_per_consumer=2
    )
    with TestClient(create_app(settings)) as test_client:
        first = _register(test_client, ALICE)
        _register(test_client, ALICE)
        body = {"url": HOOK, "event_types": ["catalog.changed"]}
        refused = test_client.post("/v1/webhooks", json=body, headers=ALICE)
        assert refused.status_code == 409, refused.text
        assert "2 webhooks" in refused.json()["detail"]
        assert len(test_client.get("/v1/webhooks", headers=ALICE).json()["items"]) == 2
        _register(test_client, BOB)  # the cap is per consumer
        assert test_client.delete(f"/v1/webhooks/{first['id']}", headers=ALICE).status_code == 204
        _register(test_client, ALICE)  # room again


def test_one_url_may_be_registered_twice(client: TestClient) -> None:
    # Ids are random: two registrations of one URL are two webhooks (a receiver may want both).
    with _db(client).transaction() as session:
        service = WebhookService(CatalogRepository(session), utcnow, random_id)
        body = s.WebhookCreate(url=HOOK, event_types=["catalog.changed"])
        ids = {service.create(Caller("csm_alice", False), body).id for _ in range(2)}
    assert len(ids) == 2


def test_an_internal_caller_manages_webhooks_as_the_anonymous_consumer(client: TestClient) -> None:
    # Inside the system (no consumer header) is not an admin for webhooks: what it registers
    # belongs to "anonymous", and it cannot see or change a consumer's webhooks.
    with _db(client).transaction() as session:
        service = WebhookService(CatalogRepository(session), utcnow, random_id)
        body = s.WebhookCreate(url=HOOK, event_types=["catalog.changed"])
        alices = service.create(Caller("csm_alice", False), body)
        internal = service.create(INTERNAL, body)
        assert internal.owner_id == "anonymous"
        listed = service.list_page(INTERNAL, s.WebhookFilters()).items
        assert [w.id for w in listed] == [internal.id]
        with pytest.raises(NotFoundError):
            service.get(INTERNAL, alices.id)
        assert service.get(Caller("anonymous"), internal.id).id == internal.id


def test_old_settled_events_are_swept_and_pending_ones_kept(client: TestClient) -> None:
    _register(client, ALICE)
    for i in range(2):
        client.post("/v1/platforms", json=platform_body(external_ref=f"p{i}"))
    settled, pending = _deliveries(client)
    with _db(client).transaction() as session:
        outcome = AttemptOutcome(200, None, 3)
        record_attempt(CatalogRepository(session), settled.id, outcome, utcnow(), RetrySchedule())
    worker = DeliveryWorker(
        _db(client),
        httpx.AsyncClient(),
        RetrySchedule(),
        clock=lambda: utcnow() + timedelta(days=31),
    )
    assert worker.sweep() == 1
    assert [e.id for e in _events(client)] == [pending.event_id]
    assert [d.id for d in _deliveries(client)] == [pending.id]  # the delivery went with it


def test_shutdown_cuts_off_an_attempt_in_flight_and_loses_nothing(database_url: str) -> None:
    receiver = Receiver(hang_seconds=30).start()
    try:
        settings = catalog_settings(database_url, webhook_poll_interval_seconds=0.05)
        with TestClient(create_app(settings)) as test_client:
            _register(test_client, ALICE, url=receiver.url)
            test_client.post("/v1/platforms", json=platform_body())
            deadline = time.monotonic() + 20
            while not receiver.requests:
                assert time.monotonic() < deadline, "the worker never sent the delivery"
                time.sleep(0.02)
            stopping = time.monotonic()
        stopped_in = time.monotonic() - stopping
        assert stopped_in < 10  # the 30 s answer was not waited for
        checking = Database(database_url)
        try:
            with checking.session() as session:
                (delivery,) = session.execute(select(WebhookDelivery)).scalars()
        finally:
            checking.dispose()
        # Not recorded as an attempt: still pending, due again when its lease ends.
        assert (delivery.status, delivery.attempts) == ("pending", 0)
        assert delivery.next_attempt_at is not None and delivery.next_attempt_at > utcnow()
    finally:
        receiver.stop()
