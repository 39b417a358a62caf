"""Concurrency and no loss: 32 clients write through the real gateway; nothing acknowledged is
lost and nothing else appears (``bench/load.py`` in a short, bounded form).

The checker itself is tested first, on made-up answers and change logs, so that a green load
test means the services agreed, not that the checker could not tell.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from bench.load import (
    LoadRecord,
    Outcome,
    Stack,
    check_writes,
    run_and_verify,
    server_errors,
    unexpected_refusals,
)

# --- the checker ------------------------------------------------------------------------------


def platform(item_id: str, name: str, version: int) -> dict[str, Any]:
    return {"id": item_id, "name": name, "external_ref": item_id, "version": version}


def entry(version: int, item_id: str, data: dict[str, Any] | None) -> dict[str, Any]:
    op = "delete" if data is None else "upsert"
    return {"version": version, "resource": "platform", "id": item_id, "op": op, "data": data}


def answered(kind: str, item_id: str, marker: str, version: int, **fields: Any) -> Outcome:
    data = None if kind == "delete" else platform(item_id, f"负载平台 {marker}", version)
    return Outcome(
        kind, "platform", marker, item_id, status=200, version=version, data=data, **fields
    )


def history() -> tuple[LoadRecord, list[dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    """Create p1, update it, create p2 (sent twice with one key), delete p2."""
    p1_created = platform("p1", "负载平台 p1", 1)
    p1_updated = platform("p1", "负载平台 u1", 2)
    p2 = platform("p2", "负载平台 p2", 3)
    record = LoadRecord(
        outcomes=[
            answered("create", "p1", "p1", 1),
            answered("update", "p1", "u1", 2),
            answered("create", "p2", "p2", 3, idempotency_key="k2"),
            answered("create", "p2", "p2", 3, idempotency_key="k2", replayed=True),
            answered("delete", "p2", "d2", 4),
        ]
    )
    entries = [entry(1, "p1", p1_created), entry(2, "p1", p1_updated)]
    entries += [entry(3, "p2", p2), entry(4, "p2", None)]
    return record, entries, {("platform", "p1"): p1_updated}


def test_checker_accepts_a_consistent_history() -> None:
    record, entries, catalog = history()
    result = check_writes(record, entries, catalog, current_version=4)
    assert result.disagreements == []
    assert result.found == 5
    assert result.live == {"platform": 1, "manufacturer": 0, "demand": 0}


def test_checker_leaves_what_was_there_before_the_run_alone() -> None:
    earlier = platform("p0", "演示平台", 1)
    record = LoadRecord(outcomes=[answered("create", "p1", "p1", 2)], start_version=1)
    entries = [entry(1, "p0", earlier), entry(2, "p1", platform("p1", "负载平台 p1", 2))]
    catalog = {("platform", "p0"): earlier, ("platform", "p1"): platform("p1", "负载平台 p1", 2)}
    result = check_writes(record, entries, catalog, current_version=2)
    assert result.disagreements == []
    catalog.pop(("platform", "p0"))
    assert check_writes(record, entries, catalog, current_version=2).disagreements


def test_checker_sees_an_acknowledged_write_missing_from_the_catalog() -> None:
    record, entries, _catalog = history()
    result = check_writes(record, entries, {}, current_version=4)
    assert any("p1 expected but missing" in d for d in result.disagreements)


def test_checker_sees_a_gap_and_a_lost_change_log_entry() -> None:
    record, entries, catalog = history()
    del entries[1]
    result = check_writes(record, entries, catalog, current_version=4)
    assert any("not gapless" in d for d in result.disagreements)
    assert any("acknowledged at v2: no entry" in d for d in result.disagreements)


def test_checker_sees_a_write_no_client_made() -> None:
    record, entries, catalog = history()
    entries.append(entry(5, "p9", platform("p9", "幽灵", 5)))
    catalog[("platform", "p9")] = platform("p9", "幽灵", 5)
    result = check_writes(record, entries, catalog, current_version=5)
    assert any("v5" in d and "matches no write" in d for d in result.disagreements)
    assert any("p9 in the catalog but not expected" in d for d in result.disagreements)


def test_checker_sees_a_refused_write_that_was_applied() -> None:
    record, entries, catalog = history()
    record.outcomes.append(Outcome("update", "platform", "u9", "p1", status=503))
    applied = platform("p1", "负载平台 u9", 5)
    entries.append(entry(5, "p1", applied))
    catalog[("platform", "p1")] = applied
    result = check_writes(record, entries, catalog, current_version=5)
    assert any("was refused ([503])" in d for d in result.disagreements)


def test_checker_reconciles_unknown_outcomes_from_the_change_log() -> None:
    record, entries, catalog = history()
    record.outcomes.append(Outcome("update", "platform", "u8", "p1", status=502))
    record.outcomes.append(Outcome("create", "platform", "p7", None, status=None))
    applied = platform("p1", "负载平台 u8", 5)
    entries.append(entry(5, "p1", applied))
    catalog[("platform", "p1")] = applied
    result = check_writes(record, entries, catalog, current_version=5)
    assert result.disagreements == []
    assert (result.unknown_applied, result.unknown_not_applied) == (1, 1)


def test_checker_credits_a_delete_to_the_unknown_request_not_the_refused_one() -> None:
    # Two clients delete p1 as the catalog dies: one request is cut off (502), the other is
    # refused (503). The delete in the log is the cut-off one's, whatever the order of the list.
    record, entries, _catalog = history()
    record.outcomes.append(Outcome("delete", "platform", "d5", "p1", status=503))
    record.outcomes.append(Outcome("delete", "platform", "d6", "p1", status=502))
    entries.append(entry(5, "p1", None))
    result = check_writes(record, entries, {}, current_version=5)
    assert result.disagreements == []
    assert result.unknown_applied == 1


def test_checker_sees_two_writes_answered_with_one_version() -> None:
    record, entries, catalog = history()
    record.outcomes.append(answered("update", "p1", "u1", 2))
    result = check_writes(record, entries, catalog, current_version=4)
    assert any("version 2 answered to two writes" in d for d in result.disagreements)


def test_checker_sees_replays_that_differ_from_the_first_answer() -> None:
    record, entries, catalog = history()
    record.outcomes[3] = answered("create", "p2", "p2", 4, idempotency_key="k2", replayed=True)
    result = check_writes(record, entries, catalog, current_version=4)
    assert any("key k2: repeated answers differ" in d for d in result.disagreements)


# --- the real thing ---------------------------------------------------------------------------

CLIENTS = 32
OPS = 240


def test_concurrent_clients_lose_no_acknowledged_write(database_url: str, tmp_path: Path) -> None:
    with Stack(database_url, tmp_path) as stack:
        record, result = asyncio.run(
            run_and_verify(
                stack.gateway_url, stack.admin_key, clients=CLIENTS, ops=OPS, seed=7, timeout=30
            )
        )
        logs = {name: stack.log(name) for name in ("catalog", "matching", "gateway")}
    assert len(record.outcomes) == OPS
    assert result.disagreements == [], logs
    assert server_errors(record) == 0, record.statuses()
    assert not unexpected_refusals(record)
    acknowledged = record.count(lambda o: o.acknowledged)
    assert result.found == acknowledged > OPS * 0.8
    # The run exercised what it claims to: every kind of write, and idempotent repeats.
    kinds = Counter(o.kind for o in record.outcomes if o.acknowledged)
    assert kinds["create"] > 0 and kinds["update"] > 0 and kinds["delete"] > 0
    assert record.count(lambda o: o.replayed) > 0
    assert result.index["version"] >= result.catalog_version
    assert result.probes > sum(result.live.values())
