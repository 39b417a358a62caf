"""Object-level authorization (OWASP API1): a demand belongs to the consumer whose key created it.

Through the whole stack, on both databases: consumer keys are issued by the admin, and each
test checks that one consumer's key can neither reach nor learn of another consumer's demands,
while the admin key sees them all (docs/security.md points here).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tests.catalog.conftest import demand_body, platform_body
from tests.stack import call_upstream, in_process_stack

SCOPES = ["catalog:read", "catalog:write", "match:read"]


@dataclass(frozen=True)
class Consumer:
    id: str
    headers: dict[str, str]


@pytest.fixture
def api(database_url: str) -> Iterator[TestClient]:
    with in_process_stack(database_url) as client:
        yield client


def consumer(api: TestClient, name: str, scopes: list[str] = SCOPES) -> Consumer:
    issued = api.post("/v1/admin/keys", json={"label": name, "consumer": name, "scopes": scopes})
    assert issued.status_code == 201, issued.text
    return Consumer(issued.json()["consumer_id"], {"X-API-Key": issued.json()["key"]})


def create_demand(api: TestClient, who: Consumer, **overrides: object) -> dict[str, object]:
    created = api.post("/v1/demands", json=demand_body(**overrides), headers=who.headers)
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_a_demand_records_the_consumer_that_created_it(api: TestClient) -> None:
    alice = consumer(api, "alice")
    demand = create_demand(api, alice)
    assert demand["owner"] == alice.id
    assert api.get(f"/v1/demands/{demand['id']}", headers=alice.headers).json()["owner"] == alice.id
    by_admin = api.post("/v1/demands", json=demand_body()).json()
    assert by_admin["owner"] == "admin", "the bootstrap key's consumer is `admin`"


def test_another_consumers_demand_is_404_as_if_it_did_not_exist(api: TestClient) -> None:
    alice, bob = consumer(api, "alice"), consumer(api, "bob")
    demand = create_demand(api, alice)
    path = f"/v1/demands/{demand['id']}"
    missing = "/v1/demands/dmd_0000000000000000"
    version = demand["version"]
    attempts = {
        "GET": lambda p: api.get(p, headers=bob.headers),
        "PATCH": lambda p: api.patch(p, json={"title": "taken"}, headers=bob.headers),
        "DELETE": lambda p: api.delete(p, headers=bob.headers),
        "matches": lambda p: api.get(
            f"{p}/matches", params={"min_version": version}, headers=bob.headers
        ),
    }
    for name, attempt in attempts.items():
        refused, absent = attempt(path), attempt(missing)
        assert refused.status_code == 404, (name, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        # The same answer as for an id that names nothing: existence does not leak.
        assert refused.json()["detail"].replace(str(demand["id"]), "ID") == absent.json()[
            "detail"
        ].replace("dmd_0000000000000000", "ID"), name
    mine = api.get(path, headers=alice.headers)
    assert mine.status_code == 200
    assert mine.json()["title"] == demand["title"] and mine.json()["version"] == version
    matches = api.get(f"{path}/matches", params={"min_version": version}, headers=alice.headers)
    assert matches.status_code == 200, matches.text
    assert matches.json()["demand_id"] == demand["id"]
    assert api.delete(path, headers=alice.headers).status_code == 200


def test_the_admin_key_sees_and_changes_every_consumers_demand(api: TestClient) -> None:
    alice = consumer(api, "alice")
    demand = create_demand(api, alice)
    path = f"/v1/demands/{demand['id']}"
    assert api.get(path).status_code == 200
    patched = api.patch(path, json={"title": "由管理员修改"})
    assert patched.status_code == 200
    assert patched.json()["owner"] == alice.id, "an admin's change keeps the owner"
    matches = api.get(f"{path}/matches", params={"min_version": patched.json()["version"]})
    assert matches.status_code == 200, matches.text
    assert api.get(path, headers=alice.headers).json()["title"] == "由管理员修改"
    # A consumer key with the admin scope sees every demand too.
    auditor = consumer(api, "auditor", ["catalog:read", "match:read", "admin"])
    assert api.get(path, headers=auditor.headers).status_code == 200
    assert api.delete(path).status_code == 200


def test_lists_hold_only_the_callers_own_demands(api: TestClient) -> None:
    alice, bob = consumer(api, "alice"), consumer(api, "bob")
    alices = {str(create_demand(api, alice, title=f"电芯中试 {i}")["id"]) for i in range(3)}
    bobs = {str(create_demand(api, bob, title="电芯中试 bob")["id"])}
    internal = call_upstream(api, "catalog", "GET", "/v1/demands?limit=100")
    assert internal.status_code == 200

    def listed(headers: dict[str, str] | None = None, **params: object) -> set[str]:
        ids: set[str] = set()
        cursor = None
        while True:
            query = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
            page = api.get("/v1/demands", params=query, headers=headers).json()
            ids |= {item["id"] for item in page["items"]}
            if not (cursor := page["next_cursor"]):
                return ids

    assert listed(alice.headers) == alices
    assert listed(bob.headers) == bobs
    assert listed(bob.headers, q="电芯中试") == bobs, "filters do not widen the list"
    assert listed(bob.headers, chain="新能源", district="松山湖") == bobs
    assert listed() == alices | bobs, "the admin key lists every consumer's demands"


def test_the_change_log_shows_a_consumer_only_its_own_demands(api: TestClient) -> None:
    alice, bob = consumer(api, "alice"), consumer(api, "bob")
    kept = create_demand(api, alice)
    gone = create_demand(api, alice)
    assert (
        api.patch(
            f"/v1/demands/{kept['id']}", json={"tags": ["改"]}, headers=alice.headers
        ).status_code
        == 200
    )
    assert api.delete(f"/v1/demands/{gone['id']}", headers=alice.headers).status_code == 200
    bobs = create_demand(api, bob)
    platform = api.post("/v1/platforms", json=platform_body()).json()
    alice_ids = {kept["id"], gone["id"]}

    def entries(headers: dict[str, str] | None = None) -> list[dict[str, object]]:
        page = api.get("/v1/changes", params={"limit": 1000}, headers=headers)
        assert page.status_code == 200, page.text
        return list(page.json()["items"])

    seen_by_bob = entries(bob.headers)
    assert not [e for e in seen_by_bob if e["id"] in alice_ids], "no upsert, no delete"
    assert {e["id"] for e in seen_by_bob} == {bobs["id"], platform["id"]}
    seen_by_alice = entries(alice.headers)
    assert [(e["id"], e["op"]) for e in seen_by_alice if e["resource"] == "demand"] == [
        (kept["id"], "upsert"),
        (gone["id"], "upsert"),
        (kept["id"], "upsert"),
        (gone["id"], "delete"),
    ]
    assert platform["id"] in {e["id"] for e in seen_by_alice}, "suppliers are shared"
    everything = entries()
    assert {e["id"] for e in everything} >= alice_ids | {bobs["id"], platform["id"]}
    # Matching reads the log from inside (no consumer header): every change, owners included.
    internal = call_upstream(api, "catalog", "GET", "/v1/changes?limit=1000").json()["items"]
    assert [e["version"] for e in internal] == [e["version"] for e in everything]
    owners = {e["id"]: e["data"]["owner"] for e in internal if e["data"] and "owner" in e["data"]}
    assert owners[kept["id"]] == alice.id and owners[bobs["id"]] == bob.id


def test_an_import_cannot_take_over_another_consumers_demand(api: TestClient) -> None:
    alice, bob = consumer(api, "alice"), consumer(api, "bob")
    first = api.post(
        "/v1/import",
        json={"demands": [demand_body(external_ref="D-1", title="alice 的需求")]},
        headers=alice.headers,
    ).json()
    assert first["created"]["demands"] == 1
    taken = api.post(
        "/v1/import",
        json={"demands": [demand_body(external_ref="D-1", title="bob 想改掉它")]},
        headers=bob.headers,
    )
    assert taken.status_code == 200, taken.text
    assert taken.json()["created"]["demands"] == 1, "bob's own D-1, not an update of alice's"
    assert taken.json()["updated"]["demands"] == 0
    (alices,) = api.get("/v1/demands", headers=alice.headers).json()["items"]
    assert (alices["external_ref"], alices["title"]) == ("D-1", "alice 的需求")
    assert alices["version"] == first["version"], "alice's demand did not change"
    (bobs,) = api.get("/v1/demands", headers=bob.headers).json()["items"]
    assert (bobs["external_ref"], bobs["owner"]) == ("D-1", bob.id)
    # Within one consumer external_ref stays unique: a second D-1 of alice's is a conflict,
    # and her own re-import updates her demand.
    again = api.post("/v1/demands", json=demand_body(external_ref="D-1"), headers=alice.headers)
    assert again.status_code == 409
    rename = api.patch(
        f"/v1/demands/{bobs['id']}", json={"external_ref": "D-2"}, headers=bob.headers
    )
    assert rename.status_code == 200
    assert (
        api.patch(
            f"/v1/demands/{bobs['id']}", json={"external_ref": "D-1"}, headers=bob.headers
        ).status_code
        == 200
    ), "D-1 is free among bob's demands"
    update = api.post(
        "/v1/import",
        json={"demands": [demand_body(external_ref="D-1", title="alice 改了")]},
        headers=alice.headers,
    ).json()
    assert (update["created"]["demands"], update["updated"]["demands"]) == (0, 1)
    assert api.get(f"/v1/demands/{bobs['id']}", headers=bob.headers).json()["title"] == (
        "bob 想改掉它"
    )


def test_client_sent_consumer_and_scope_headers_are_ignored(api: TestClient) -> None:
    alice, bob = consumer(api, "alice"), consumer(api, "bob")
    demand = create_demand(api, alice)
    disguised = {**bob.headers, "X-Pilotmatch-Consumer": alice.id, "X-Pilotmatch-Scopes": "admin"}
    assert api.get(f"/v1/demands/{demand['id']}", headers=disguised).status_code == 404
    assert api.get("/v1/demands", headers=disguised).json()["items"] == []
    assert (
        api.get(
            f"/v1/demands/{demand['id']}/matches",
            params={"min_version": demand["version"]},
            headers=disguised,
        ).status_code
        == 404
    )
    created = api.post("/v1/demands", json=demand_body(), headers=disguised)
    assert created.json()["owner"] == bob.id


def test_server_fields_of_a_demand_cannot_be_mass_assigned(api: TestClient) -> None:
    alice, bob = consumer(api, "alice"), consumer(api, "bob")
    server_fields = {
        "id": "dmd_0000000000000000",
        "version": 999,
        "owner": alice.id,
        "owner_consumer_id": alice.id,
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z",
    }
    refused = api.post("/v1/demands", json=demand_body(**server_fields), headers=bob.headers)
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == set(server_fields)
    demand = create_demand(api, bob)
    for field, value in server_fields.items():
        patched = api.patch(f"/v1/demands/{demand['id']}", json={field: value}, headers=bob.headers)
        assert patched.status_code == 422, field
        assert [e["field"] for e in patched.json()["errors"]] == [field]
    report = api.post(
        "/v1/import",
        json={"demands": [demand_body(external_ref="D-9", owner=alice.id)]},
        headers=bob.headers,
    ).json()
    assert report["created"]["demands"] == 0
    assert [e["field"] for e in report["rejected"][0]["errors"]] == ["owner"]
    assert api.get("/v1/demands", headers=alice.headers).json()["items"] == []
    assert api.get(f"/v1/demands/{demand['id']}", headers=bob.headers).json()["owner"] == bob.id


def test_lifecycle_and_outcomes_of_another_consumers_demand_are_404(api: TestClient) -> None:
    alice, bob = consumer(api, "alice"), consumer(api, "bob")
    supplier = api.post("/v1/platforms", json=platform_body()).json()
    demand = create_demand(api, alice)
    path = f"/v1/demands/{demand['id']}"
    outcome = {"supplier_id": supplier["id"], "outcome": "contacted"}
    for sub, body in (("/close", {}), ("/renew", {}), ("/outcomes", outcome)):
        refused = api.post(path + sub, json=body, headers=bob.headers)
        assert refused.status_code == 404, (sub, refused.text)
    assert api.get(path + "/outcomes", headers=bob.headers).status_code == 404
    # Nothing happened to Alice's demand.
    assert api.get(path, headers=alice.headers).json()["status"] == "open"
    recorded = api.post(path + "/outcomes", json=outcome, headers=alice.headers)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["demand_status"] == "matched"

    # A supplier's outcomes are shared data only as far as the caller's own demands go.
    listing = f"/v1/platforms/{supplier['id']}/outcomes"
    assert [o["demand_id"] for o in api.get(listing, headers=alice.headers).json()["items"]] == [
        demand["id"]
    ]
    assert api.get(listing, headers=bob.headers).json()["items"] == []
    assert len(api.get(listing).json()["items"]) == 1  # the admin sees all

    # The change log shows the outcome to Alice and the admin, not to Bob.
    def logged(headers: dict[str, str] | None = None) -> set[str]:
        page = api.get("/v1/changes", params={"limit": 1000}, headers=headers)
        return {c["resource"] for c in page.json()["items"]}

    assert "match_outcome" in logged(alice.headers)
    assert "match_outcome" in logged()
    assert "match_outcome" not in logged(bob.headers)


def test_the_index_status_counts_only_the_callers_own_demands(api: TestClient) -> None:
    alice, bob = consumer(api, "alice"), consumer(api, "bob")
    create_demand(api, alice, external_ref="a1")
    create_demand(api, alice, external_ref="a2")
    last = create_demand(api, bob, external_ref="b1")
    version = last["version"]
    # The catalog's version reached the index: wait for it through a match of a known demand.
    waited = api.get(
        f"/v1/demands/{last['id']}/matches", params={"min_version": version}, headers=bob.headers
    )
    assert waited.status_code == 200, waited.text
    counts = {
        name: api.get("/v1/index", headers=who.headers).json()
        for name, who in (("alice", alice), ("bob", bob))
    }
    admin = api.get("/v1/index").json()
    assert (counts["alice"]["demands"], counts["bob"]["demands"], admin["demands"]) == (2, 1, 3)
    assert counts["alice"]["last_error"] is None and counts["alice"]["version"] >= version
