"""Technology brokers (技术经纪人) to suggest beside a demand's matches. Plain Python, no HTTP.

Brokers come from the catalog's change log as it sent them (``IndexSnapshot.records``) and are
read defensively: a missing field takes its default. A broker is suggested when it is active and
covers at least one of the demand's industry chains (named, or inferred from its text as
ranking does). Order: more of the demand's chains covered, then the higher title (高级, 中级,
初级, none), then a broker in the demand's district, then broker id, so the same input gives the
same order. The broker assigned to the demand, if it still exists, comes first whatever it
covers and is marked ``assigned``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MAX_BROKERS = 3
"""Brokers listed beside one demand's matches, the assigned one included."""

LEVEL_ORDER: Mapping[str, int] = {"高级": 3, "中级": 2, "初级": 1}
"""技术经纪人 titles, higher first; a broker without a title ranks below all three."""


def suggest_brokers(
    brokers: Iterable[Mapping[str, Any]],
    demand_chains: Sequence[str],
    district: str | None,
    assigned_id: str | None = None,
    limit: int = MAX_BROKERS,
) -> list[dict[str, Any]]:
    """Up to ``limit`` brokers for a demand, best first, each saying why."""
    wanted = set(demand_chains)
    assigned: dict[str, Any] | None = None
    candidates: list[tuple[tuple[int, int, int, str], dict[str, Any]]] = []
    for broker in brokers:
        broker_id = str(broker.get("id", ""))
        if not broker_id:
            continue
        covered = [c for c in broker.get("industry_chains") or () if c in wanted]
        same_district = bool(district) and broker.get("district") == district
        entry = _entry(broker, covered, same_district, broker_id == assigned_id)
        if broker_id == assigned_id:
            assigned = entry
            continue
        if not covered or not broker.get("active", True):
            continue
        level = LEVEL_ORDER.get(broker.get("certification_level") or "", 0)
        candidates.append(((-len(covered), -level, -int(same_district), broker_id), entry))
    candidates.sort(key=lambda item: item[0])
    chosen = [entry for _, entry in candidates]
    if assigned is not None:
        chosen.insert(0, assigned)
    return chosen[:limit]


def _entry(
    broker: Mapping[str, Any], covered: list[str], same_district: bool, assigned: bool
) -> dict[str, Any]:
    return {
        "broker_id": broker["id"],
        "name": broker.get("name", ""),
        "organization": broker.get("organization", ""),
        "district": broker.get("district", ""),
        "certification_level": broker.get("certification_level"),
        "work_email": broker.get("work_email"),
        "work_phone": broker.get("work_phone"),
        "assigned": assigned,
        "matched_chains": covered,
        "same_district": same_district,
    }
