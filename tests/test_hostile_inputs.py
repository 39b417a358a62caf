"""Every case of ``tests/hostile_inputs.json`` through the gateway, on SQLite and PostgreSQL.

The corpus records what each case must get (its ``format`` says how); this test only replays it.
All cases run against one stack per backend, and every failure is collected, so one run names
every case that misbehaves.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.shared.problems import PROBLEM_JSON
from tests.stack import in_process_stack

CORPUS_PATH = Path(__file__).with_name("hostile_inputs.json")
CORPUS: dict[str, Any] = json.loads(CORPUS_PATH.read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = CORPUS["cases"]
COLLECTIONS = ("platforms", "manufacturers", "demands", "equipment", "solutions", "brokers")
CATEGORIES_REQUIRED = {
    "oversized",
    "deep nesting",
    "wrong type",
    "NUL",
    "invalid UTF-8",
    "bidi / zero-width",
    "emoji",
    "injection",
    "limit",
    "cursor",
    "unknown query parameter",
    "duplicate JSON keys",
    "big numbers",
    "NaN/Infinity",
    "content type",
    "empty body",
    "mass assignment",
}


def test_corpus_is_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert {case["category"] for case in CASES} >= CATEGORIES_REQUIRED
    for case in CASES:
        assert set(case) <= {
            "id",
            "category",
            "method",
            "path",
            "query",
            "headers",
            "body",
            "expect",
            "note",
        }, case["id"]
        assert case["path"].startswith("/v1/"), case["id"]
        expect = case["expect"]
        assert expect["outcome"] in ("rejected", "accepted", "read"), case["id"]
        if expect["outcome"] == "rejected" and expect["status"] == 200:
            assert case["path"] == "/v1/import", case["id"]
        elif expect["outcome"] == "rejected":
            assert 400 <= expect["status"] < 500, case["id"]
        if expect["outcome"] == "accepted":
            assert expect["round_trip"], case["id"]
        body = case["body"]
        assert body is None or (
            len(body) == 1
            and next(iter(body))
            in (
                "json",
                "text",
                "base64",
                "repeat",
            )
        ), case["id"]


def _body_bytes(body: dict[str, Any] | None, ids: dict[str, str]) -> bytes | None:
    if body is None:
        return None
    if "json" in body:
        raw = json.dumps(body["json"], ensure_ascii=False).encode()
    elif "text" in body:
        raw = body["text"].encode()
    elif "base64" in body:
        return base64.b64decode(body["base64"])
    else:
        raw = "".join(text * times for text, times in body["repeat"]).encode()
    for name, value in ids.items():
        raw = raw.replace(f"{{{name}}}".encode(), value.encode())
    return raw


def _sent_json(case: dict[str, Any], ids: dict[str, str]) -> Any:
    raw = _body_bytes(case["body"], ids)
    assert raw is not None
    return json.loads(raw)


def _state(client: TestClient) -> dict[str, Any]:
    """What "nothing stored" compares: the catalog version, every collection's items, the API
    keys and the webhooks."""
    state: dict[str, Any] = {
        "version": client.get("/v1/changes", params={"limit": 1}).json()["current_version"]
    }
    for collection in COLLECTIONS:
        page = client.get(f"/v1/{collection}", params={"limit": 100}).json()
        assert page["next_cursor"] is None  # the test keeps the catalog small
        state[collection] = page["items"]
    keys = client.get("/v1/admin/keys", params={"limit": 100, "include_revoked": True}).json()
    state["keys"] = keys["items"]
    # Webhooks are not in the change log: compare them whole. The admin key lists every
    # consumer's; `updated_at` moves on any change, a rotated secret included.
    webhooks = client.get("/v1/webhooks", params={"limit": 100}).json()
    assert webhooks["next_cursor"] is None
    state["webhooks"] = webhooks["items"]
    return state


def _seed(client: TestClient) -> dict[str, str]:
    platform = client.post("/v1/platforms", json={"name": "种子平台", "tags": ["种子"]})
    demand = client.post("/v1/demands", json={"title": "种子需求", "tags": ["种子"]})
    broker = client.post("/v1/brokers", json={"name": "种子经纪人", "industry_chains": ["新能源"]})
    # Disabled, so no event is ever queued for it: deliveries would change the stored state on
    # their own. The port is discard's, in case one were.
    webhook = client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/seed", "event_types": ["catalog.changed"]}
    )
    assert platform.status_code == demand.status_code == broker.status_code == 201
    assert webhook.status_code == 201, webhook.text
    disabled = client.patch(f"/v1/webhooks/{webhook.json()['id']}", json={"enabled": False})
    assert disabled.status_code == 200, disabled.text
    # Matching routes need a built index that has seen the seeds.
    version = demand.json()["version"]
    ready = client.get(
        f"/v1/demands/{demand.json()['id']}/matches", params={"min_version": version}
    )
    assert ready.status_code == 200, ready.text
    return {
        "platform_id": platform.json()["id"],
        "demand_id": demand.json()["id"],
        "broker_id": broker.json()["id"],
        "webhook_id": webhook.json()["id"],
    }


def _send(client: TestClient, case: dict[str, Any], ids: dict[str, str]) -> httpx.Response:
    path = case["path"]
    for name, value in ids.items():
        path = path.replace(f"{{{name}}}", value)
    query = "&".join(
        f"{httpx.QueryParams({k: v})}" for k, v in case["query"].items()
    )  # encoded here, so NUL and the like reach the service as %00
    url = f"{path}?{query}" if query else path
    # `path` is sent as written: percent-encoding and dot segments must reach the gateway.
    request = client.build_request(
        case["method"], url, content=_body_bytes(case["body"], ids), headers=case["headers"]
    )
    request.url = request.url.copy_with(raw_path=url.encode())
    if "content-type" not in {k.lower() for k in case["headers"]}:
        request.headers.pop("content-type", None)
    return client.send(request)


def _check(client: TestClient, case: dict[str, Any], ids: dict[str, str]) -> list[str]:
    expect = case["expect"]
    before = _state(client)
    response = _send(client, case, ids)
    problems: list[str] = []
    if response.status_code >= 500:
        return [f"{response.status_code} (never a 5xx): {response.text[:300]}"]
    if response.status_code != expect["status"]:
        problems.append(f"status {response.status_code}, expected {expect['status']}")
    outcome = expect["outcome"]
    if outcome == "rejected" and expect["status"] != 200:
        if response.headers.get("content-type") != PROBLEM_JSON:
            problems.append(f"content-type {response.headers.get('content-type')}")
        else:
            body = response.json()
            missing = {"type", "title", "status", "detail"} - set(body)
            if missing or body["status"] != response.status_code:
                problems.append(f"not a problem document: {body}")
    if outcome == "rejected" and expect["status"] == 200 and response.status_code == 200:
        report = response.json()
        sent = _sent_json(case, ids)
        received = sum(len(sent.get(k, [])) for k in ("platforms", "manufacturers", "demands"))
        if len(report["rejected"]) != received:
            problems.append(f"import kept items: {report}")
    if outcome in ("rejected", "read") and _state(client) != before:
        problems.append("something was stored")
    read_items = len(response.json()["items"]) if outcome == "read" and response.is_success else 0
    if outcome == "read" and response.is_success and read_items != expect["items"]:
        problems.append(f"{len(response.json()['items'])} items, expected {expect['items']}")
    if outcome == "accepted" and response.status_code == expect["status"]:
        created = response.json()
        stored = client.get(f"{case['path']}/{created['id']}").json()
        for field, value in expect["round_trip"].items():
            if created.get(field) != value or stored.get(field) != value:
                problems.append(f"{field}: sent {value!r}, got {created.get(field)!r}")
        client.delete(f"{case['path']}/{created['id']}")
    return problems


def test_hostile_inputs_get_the_recorded_answer_and_store_nothing(database_url: str) -> None:
    failures: dict[str, list[str]] = {}
    with in_process_stack(database_url) as client:
        ids = _seed(client)
        for case in CASES:
            problems = _check(client, case, ids)
            if problems:
                failures[case["id"]] = problems
        # The seeds are untouched and the stack still answers normally.
        for name, collection in (
            ("platform_id", "platforms"),
            ("demand_id", "demands"),
            ("broker_id", "brokers"),
            ("webhook_id", "webhooks"),
        ):
            assert client.get(f"/v1/{collection}/{ids[name]}").status_code == 200
    assert not failures, json.dumps(failures, ensure_ascii=False, indent=1)


@pytest.mark.parametrize("case", [c for c in CASES if c["body"] and "base64" in c["body"]])
def test_raw_byte_cases_really_are_not_utf8_json(case: dict[str, Any]) -> None:
    """The corpus's raw cases stay what they claim: bytes a strict UTF-8 JSON parser refuses."""
    raw = base64.b64decode(case["body"]["base64"])
    with pytest.raises(ValueError):
        json.loads(raw.decode("utf-8"))
