"""What happened to earlier matches, as evidence for ranking: plain Python, no HTTP.

The catalog records match outcomes (``viewed``, ``contacted``, ``visited``, ``contracted``,
``completed``, ``declined``) and writes each to its change log as resource ``match_outcome``;
the ``IndexSyncer`` feeds them here, in log order.

**Kind of demand.** Evidence is kept per supplier and per kind of demand, the kind being the
demand's primary industry chain (its first canonical chain), or ``any`` when it names none. A
supplier that keeps declining 新能源 demands sinks for 新能源 demands only.

**Counting.** Per (demand, supplier) pair only the latest outcome counts (by ``recorded_at``,
then by catalog version), so a match that went contacted → contracted → completed is one
positive, and one first contacted then declined is one decline. ``viewed`` is neutral: it says
nothing about fit. Positive: contacted, visited, contracted, completed. The pair's kind is the
demand's kind when the outcome arrives. An outcome of a demand matching never saw (cannot happen
with a full change log: a demand is logged before its outcomes) is ignored.

**Factor** (weights in ``RankingWeights``)::

    factor = 1 + clamp(outcome_beta * (positive - declined) / (positive + declined + outcome_prior),
                       -outcome_max_penalty, +outcome_max_boost)

With the defaults (beta 0.4, prior 3, penalty 0.25, boost 0.10): one decline gives 0.90, two
0.84, three 0.80, four 0.771, five or more 0.75; one positive gives the full boost, 1.10. The
prior keeps a single outcome from counting as much as a track record; the clamp keeps outcomes a
nudge next to relevance: a supplier never gains more than 10 % or loses more than 25 % of its
score. A supplier with no outcome of the demand's kind keeps factor 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ANY_KIND = "any"
POSITIVE = frozenset({"contacted", "visited", "contracted", "completed"})
DECLINED = "declined"


def demand_kind(industry_chains: tuple[str, ...] | list[str]) -> str:
    """The kind of a demand for outcome evidence: its primary (first) chain, or ``any``."""
    return industry_chains[0] if industry_chains else ANY_KIND


def outcome_factor(
    positive: int,
    declined: int,
    *,
    beta: float,
    prior: float,
    max_penalty: float,
    max_boost: float,
) -> float:
    """The bounded ranking factor of a supplier's outcome counts (see the module doc)."""
    total = positive + declined
    if total == 0:
        return 1.0
    raw = beta * (positive - declined) / (total + prior)
    return 1.0 + max(-max_penalty, min(max_boost, raw))


@dataclass(frozen=True)
class OutcomeCounts:
    positive: int = 0
    declined: int = 0


@dataclass(frozen=True)
class KindOutcomes:
    """The evidence ranking needs for one demand: the counts of its kind, per supplier."""

    kind: str
    counts: Mapping[str, OutcomeCounts]


@dataclass(frozen=True)
class OutcomeSnapshot:
    """Immutable counts per kind and supplier, served with an index snapshot."""

    by_kind: Mapping[str, Mapping[str, OutcomeCounts]] = field(default_factory=dict)
    outcomes: int = 0  # outcomes counted (pairs with a positive or declined latest outcome)

    def for_kind(self, kind: str) -> KindOutcomes | None:
        counts = self.by_kind.get(kind)
        return KindOutcomes(kind, counts) if counts else None


@dataclass(frozen=True)
class _Latest:
    kind: str
    supplier_id: str
    positive: bool
    order: tuple[float, int]  # (recorded_at as a POSIX timestamp, catalog version)


class OutcomeStats:
    """The running counts, fed outcome by outcome; ``snapshot()`` freezes them."""

    def __init__(self) -> None:
        self._latest: dict[tuple[str, str], _Latest] = {}
        self._counts: dict[str, dict[str, list[int]]] = {}  # kind -> supplier -> [pos, decl]
        self._snapshot: OutcomeSnapshot | None = OutcomeSnapshot()

    def apply(self, data: Mapping[str, Any], kind: str, version: int) -> bool:
        """Count one outcome (change-log ``data``) of a demand of ``kind``; True if counts
        changed. Applying the same outcome twice changes nothing the second time."""
        outcome = data.get("outcome")
        if outcome != DECLINED and outcome not in POSITIVE:
            return False  # viewed, or something newer than this code: neutral
        demand_id, supplier_id = data.get("demand_id"), data.get("supplier_id")
        if not isinstance(demand_id, str) or not isinstance(supplier_id, str):
            return False
        latest = _Latest(
            kind, supplier_id, outcome in POSITIVE, (_timestamp(data.get("recorded_at")), version)
        )
        key = (demand_id, supplier_id)
        previous = self._latest.get(key)
        if previous is not None:
            if previous.order > latest.order or previous == latest:
                return False
            self._count(previous, -1)
        self._latest[key] = latest
        self._count(latest, +1)
        self._snapshot = None
        return True

    def _count(self, latest: _Latest, delta: int) -> None:
        suppliers = self._counts.setdefault(latest.kind, {})
        counts = suppliers.setdefault(latest.supplier_id, [0, 0])
        counts[0 if latest.positive else 1] += delta
        if counts == [0, 0]:
            del suppliers[latest.supplier_id]
            if not suppliers:
                del self._counts[latest.kind]

    def snapshot(self) -> OutcomeSnapshot:
        if self._snapshot is None:
            self._snapshot = OutcomeSnapshot(
                by_kind={
                    kind: {sid: OutcomeCounts(c[0], c[1]) for sid, c in suppliers.items()}
                    for kind, suppliers in self._counts.items()
                },
                outcomes=len(self._latest),
            )
        return self._snapshot


def _timestamp(value: Any) -> float:
    """``recorded_at`` (ISO 8601 text from the change log) as seconds; 0 when unreadable."""
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return 0.0
