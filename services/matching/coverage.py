"""The city's coverage and gap report: per industry chain and sub-field, who serves it and which
demands it leaves unserved. Plain Python, no HTTP; it reads one index snapshot.

**Rows.** One per chain of the taxonomy (``sub_field`` null: the chain as a whole) and one per
sub-field of that chain, every one listed even when all its counts are zero: zeros are the gaps.

**Who belongs where.**

- A platform or manufacturer belongs to the chains it lists (``industry_chains``, stored
  canonical by the catalog); nothing is inferred for suppliers, so "a chain without platforms"
  means exactly that no platform lists it. Within such a chain it belongs to a sub-field when
  one of its ``tags`` or ``capabilities`` names the sub-field (see ``SubfieldMatcher``).
- A demand belongs to its chains as ranking reads them: the chains it names, or, when it names
  none, those inferred from its title, tags and description (``MatchIndex.demand_chains``). It
  belongs to a sub-field of such a chain when one of its ``tags`` names it. A demand with no
  chain at all is counted under ``demands_without_chain``.

**Demand counts.**

- ``open``: demands whose ``status`` is ``open``, ``matched`` or ``in_progress`` (a demand
  without ``status`` is open).
- ``without_result``: open demands none of whose top ``RANK_DEPTH`` results scores at least
  ``threshold``. Every open demand is ranked once per index (kind ``all``), and its results are
  reused until the suppliers change.
- ``voucher_matchable``: open demands that need a voucher (``needs_voucher``) and have a result
  scoring at least ``threshold`` from a supplier that accepts vouchers.
- ``contacted`` and ``median_hours_to_first_contact``: over every demand (any status) with a
  match outcome of ``contacted`` or later (visited, contracted, completed), the hours from the
  demand's ``created_at`` to the earliest such outcome's ``recorded_at`` (its ``created_at``
  when missing), never below zero; null when no demand has one. Outcomes and demand fields are
  read defensively: a record lacking what is needed is skipped.
"""

from __future__ import annotations

import csv
import io
import statistics
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rapidfuzz import fuzz

from services.matching.index import IndexSnapshot
from services.matching.ranking import DemandQuery
from services.shared.taxonomy import Taxonomy

DEFAULT_THRESHOLD = 1.1
"""Default lowest score of a result that serves a demand. The best text match of a demand
scores 1.0 for its text part by construction (similarity is relative to the best supplier), so
a threshold above 1.0 also asks for industry-chain or sub-field agreement (chain part up to
0.2, tag part up to 0.3). On the demo catalog every demo demand's best result scores 1.2–1.42,
while a demand no supplier's chain or tags fit (婴儿奶粉配方中试) tops out at 1.0."""

RANK_DEPTH = 5
"""Results looked at per open demand (for ``without_result`` and ``voucher_matchable``). The
first needs only the best result; for the second, ranking already multiplies a supplier that
takes no vouchers by 0.5 for a demand that needs one, so above the default threshold the top
results are voucher suppliers. Cost (2,000 suppliers, this 2-core machine, shared): about
5.6 ms per open demand at depth 5 against 11.8 ms at depth 20."""

OPEN_STATUSES = frozenset({"open", "matched", "in_progress"})
CONTACT_OUTCOMES = frozenset({"contacted", "visited", "contracted", "completed"})
LEVEL_KEYS: tuple[str, ...] = ("国家级", "省级", "市级", "none")
"""Keys of ``by_level``: the three recognition levels, and ``none`` for suppliers without one."""
NO_DISTRICT = "none"
"""Key of ``by_district`` for suppliers that name no district."""

SUBFIELD_FUZZY_THRESHOLD = 88.0
"""Lowest rapidfuzz ratio (0..100) at which a label is a near-miss of a sub-field (the same as
ranking's ``tag_fuzzy_threshold``): one typo in a label of eight characters or more."""
_MIN_CONTAINED_WEIGHT = 4
"""A sub-field found inside a longer label must weigh this much (a CJK character 2, others 1),
so 固态电池 counts in 固态电池电芯试制 but AI or 5G inside unrelated words do not."""


# ------------------------------------------------------------------------------ sub-fields


class SubfieldMatcher:
    """Which of a chain's sub-fields a list of labels names.

    A label names a sub-field when, compared by the taxonomy's normal form (NFKC, traditional
    to simplified, case-folded, letters and digits only):

    1. exact:     it equals the sub-field;
    2. contained: otherwise, it contains the sub-field (固态电池电芯 names 固态电池), the
                  sub-field weighing at least 4 (a CJK character weighs 2);
    3. near:      otherwise, rapidfuzz ``ratio`` >= ``SUBFIELD_FUZZY_THRESHOLD`` (a typo).

    An exact hit ends the search for that label, so 半固态电池 names only 半固态电池, not also
    固态电池 inside it.
    """

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self._subfields: dict[str, tuple[tuple[str, str], ...]] = {
            chain.name: tuple(
                dict.fromkeys((name, taxonomy.normalize(name)) for name in chain.subfields)
            )
            for chain in taxonomy.chains
        }
        self._cache: dict[tuple[str, str], tuple[str, ...]] = {}

    def subfields(self, chain: str, labels: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for label in labels:
            if isinstance(label, str):
                found.update(self._of_label(chain, label))
        return found

    def _of_label(self, chain: str, label: str) -> tuple[str, ...]:
        cached = self._cache.get((chain, label))
        if cached is not None:
            return cached
        key = self.taxonomy.normalize(label)
        candidates = self._subfields.get(chain, ())
        exact = tuple(name for name, sub in candidates if sub and sub == key)
        if exact or not key:
            result = exact
        else:
            result = tuple(
                name
                for name, sub in candidates
                if sub
                and (
                    (sub in key and _weight(sub) >= _MIN_CONTAINED_WEIGHT)
                    or (
                        len(key) >= 3
                        and len(sub) >= 3
                        and fuzz.ratio(key, sub) >= SUBFIELD_FUZZY_THRESHOLD
                    )
                )
            )
        if len(self._cache) < 100_000:
            self._cache[chain, label] = result
        return result


def _weight(text: str) -> int:
    return sum(2 if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" else 1 for ch in text)


# ------------------------------------------------------------------------------ counting


@dataclass
class SupplierTally:
    total: int = 0
    by_level: Counter[str] = field(default_factory=Counter)
    by_district: Counter[str] = field(default_factory=Counter)

    def add(self, level: Any, district: Any) -> None:
        self.total += 1
        self.by_level[level if level in LEVEL_KEYS else "none"] += 1
        self.by_district[district if isinstance(district, str) and district else NO_DISTRICT] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_level": {key: self.by_level[key] for key in LEVEL_KEYS},
            "by_district": dict(_by_count(self.by_district)),
        }


@dataclass
class DemandTally:
    open: int = 0
    without_result: int = 0
    voucher_matchable: int = 0
    hours_to_contact: list[float] = field(default_factory=list)

    def add(self, facts: _DemandFacts) -> None:
        if facts.open:
            self.open += 1
            self.without_result += int(not facts.served)
            self.voucher_matchable += int(facts.voucher_matchable)
        if facts.hours_to_contact is not None:
            self.hours_to_contact.append(facts.hours_to_contact)

    def as_dict(self) -> dict[str, Any]:
        hours = self.hours_to_contact
        return {
            "open": self.open,
            "without_result": self.without_result,
            "voucher_matchable": self.voucher_matchable,
            "contacted": len(hours),
            "median_hours_to_first_contact": round(statistics.median(hours), 2) if hours else None,
        }


@dataclass
class _Row:
    platforms: SupplierTally = field(default_factory=SupplierTally)
    manufacturers: SupplierTally = field(default_factory=SupplierTally)
    demands: DemandTally = field(default_factory=DemandTally)


@dataclass(frozen=True)
class _DemandFacts:
    chains: tuple[str, ...]
    open: bool
    served: bool
    voucher_matchable: bool
    hours_to_contact: float | None


@dataclass(frozen=True)
class RankedDemand:
    """What the report needs from ranking one demand: its chains and its top results."""

    chains: tuple[str, ...]
    results: tuple[tuple[float, str], ...]  # (score, supplier id), best first


def _by_count(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


# ------------------------------------------------------------------------------ the report


class CoverageReporter:
    """Builds coverage reports and keeps the last few, per index version and threshold.

    Thread-safe: reports are built in worker threads, one at a time, so two requests for the
    same report rank the demands once. Each demand's ranking is kept while the suppliers stay
    the same (the same ranking index object), so a new demand or outcome costs one ranking.
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cache_size: int = 4,
    ) -> None:
        self.taxonomy = taxonomy
        self.clock = clock
        self.cache_size = cache_size
        self.subfields = SubfieldMatcher(taxonomy)
        self._lock = threading.Lock()
        self._reports: dict[tuple[int, float], dict[str, Any]] = {}
        self._ranked_index: object | None = None
        self._ranked: dict[str, tuple[DemandQuery, RankedDemand]] = {}
        self.rankings = 0  # demands ranked so far (tests and metrics read it)

    def report(self, snapshot: IndexSnapshot, threshold: float) -> dict[str, Any]:
        key = (snapshot.version, threshold)
        with self._lock:
            cached = self._reports.get(key)
            if cached is not None:
                return cached
            built = self._build(snapshot, threshold)
            self._reports[key] = built
            while len(self._reports) > self.cache_size:
                self._reports.pop(next(iter(self._reports)))
            return built

    # -- building -------------------------------------------------------------------------

    def _build(self, snapshot: IndexSnapshot, threshold: float) -> dict[str, Any]:
        chains = [chain.name for chain in self.taxonomy.chains]
        rows: dict[tuple[str, str | None], _Row] = {}
        for chain in self.taxonomy.chains:
            rows[chain.name, None] = _Row()
            for subfield in dict.fromkeys(chain.subfields):
                rows[chain.name, subfield] = _Row()

        for supplier in snapshot.suppliers.values():
            labels = (*supplier.tags, *supplier.capabilities)
            for name in dict.fromkeys(supplier.industry_chains):
                if (name, None) not in rows:
                    continue
                for sub in (None, *sorted(self.subfields.subfields(name, labels))):
                    tally = getattr(rows[name, sub], f"{supplier.kind}s", None)
                    if isinstance(tally, SupplierTally):
                        tally.add(supplier.level, supplier.district)

        unclassified = DemandTally()
        for facts, tags in self._demand_facts(snapshot, threshold):
            if not facts.chains:
                unclassified.add(facts)
            for name in facts.chains:
                for sub in (None, *sorted(self.subfields.subfields(name, tags))):
                    rows[name, sub].demands.add(facts)

        out_chains = []
        for chain in self.taxonomy.chains:
            out_chains.append(
                {
                    "code": chain.code,
                    "name": chain.name,
                    **_row_dict(rows[chain.name, None]),
                    "subfields": [
                        {"name": subfield, **_row_dict(rows[chain.name, subfield])}
                        for subfield in dict.fromkeys(chain.subfields)
                    ],
                }
            )
        return {
            "index_version": snapshot.version,
            "generated_at": self.clock().isoformat(),
            "threshold": threshold,
            "rank_depth": RANK_DEPTH,
            "chains_without_platform": [
                name for name in chains if rows[name, None].platforms.total == 0
            ],
            "chains_without_manufacturer": [
                name for name in chains if rows[name, None].manufacturers.total == 0
            ],
            "demands_without_chain": unclassified.as_dict(),
            "chains": out_chains,
        }

    def _demand_facts(
        self, snapshot: IndexSnapshot, threshold: float
    ) -> list[tuple[_DemandFacts, tuple[str, ...]]]:
        records = snapshot.records.get("demand", {})
        first_contact = _first_contacts(snapshot.records.get("match_outcome", {}).values())
        if self._ranked_index is not snapshot.index:
            self._ranked_index = snapshot.index
            self._ranked = {}
        self._ranked = {k: v for k, v in self._ranked.items() if k in snapshot.demands}
        out = []
        for demand_id, demand in snapshot.demands.items():
            record = records.get(demand_id, {})
            is_open = _status(record) in OPEN_STATUSES
            ranked = self._ranking(snapshot, demand_id, demand, rank=is_open)
            good = [sid for score, sid in ranked.results if score >= threshold]
            vouchers = demand.needs_voucher and any(
                (s := snapshot.suppliers.get(sid)) is not None and s.accepts_vouchers
                for sid in good
            )
            facts = _DemandFacts(
                chains=ranked.chains,
                open=is_open,
                served=bool(good),
                voucher_matchable=bool(vouchers),
                hours_to_contact=_hours_between(
                    _parse_time(record.get("created_at")), first_contact.get(demand_id)
                ),
            )
            out.append((facts, demand.tags))
        return out

    def _ranking(
        self, snapshot: IndexSnapshot, demand_id: str, demand: DemandQuery, *, rank: bool
    ) -> RankedDemand:
        cached = self._ranked.get(demand_id)
        if cached is not None and cached[0] == demand:
            return cached[1]
        chains, _ = snapshot.index.demand_chains(demand)
        results: tuple[tuple[float, str], ...] = ()
        if rank:
            self.rankings += 1
            results = tuple(
                (float(m.score), m.supplier_id)
                for m in snapshot.index.rank(demand, "all", RANK_DEPTH)
            )
        ranked = RankedDemand(tuple(chains), results)
        if rank:  # unranked, a closed demand's entry would say "no results" once reopened
            self._ranked[demand_id] = (demand, ranked)
        return ranked


def _row_dict(row: _Row) -> dict[str, Any]:
    return {
        "platforms": row.platforms.as_dict(),
        "manufacturers": row.manufacturers.as_dict(),
        "demands": row.demands.as_dict(),
    }


def _status(record: Mapping[str, Any]) -> str:
    status = record.get("status")
    return status if isinstance(status, str) and status else "open"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _hours_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds() / 3600, 0.0)


def _first_contacts(outcomes: Iterable[Mapping[str, Any]]) -> dict[str, datetime]:
    """Demand id -> the earliest outcome of ``contacted`` or later."""
    first: dict[str, datetime] = {}
    for outcome in outcomes:
        demand_id = outcome.get("demand_id")
        if not isinstance(demand_id, str) or outcome.get("outcome") not in CONTACT_OUTCOMES:
            continue
        when = _parse_time(outcome.get("recorded_at")) or _parse_time(outcome.get("created_at"))
        if when is not None and (demand_id not in first or when < first[demand_id]):
            first[demand_id] = when
    return first


# ------------------------------------------------------------------------------ CSV

CSV_COLUMNS: tuple[str, ...] = (
    "chain_code",
    "chain",
    "sub_field",
    "platforms",
    "platforms_national",
    "platforms_provincial",
    "platforms_municipal",
    "platforms_no_level",
    "platforms_by_district",
    "manufacturers",
    "manufacturers_national",
    "manufacturers_provincial",
    "manufacturers_municipal",
    "manufacturers_no_level",
    "manufacturers_by_district",
    "open_demands",
    "open_demands_without_result",
    "voucher_matchable_demands",
    "contacted_demands",
    "median_hours_to_first_contact",
)
"""Columns of the CSV form, one row per chain (``sub_field`` empty) and per sub-field. Levels:
national 国家级, provincial 省级, municipal 市级; ``*_by_district`` is ``district=count`` pairs
joined by ``; ``, most first."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    # A spreadsheet runs a cell starting with = + - @ as a formula: catalog text is caller
    # text, so such a cell gets a leading apostrophe (OWASP's advice on CSV injection).
    return "'" + text if text.startswith(_FORMULA_START) else text


def _districts(tally: Mapping[str, int]) -> str:
    return "; ".join(f"{name}={count}" for name, count in tally.items())


def _supplier_cells(tally: Mapping[str, Any]) -> list[Any]:
    levels = tally["by_level"]
    return [
        tally["total"],
        levels["国家级"],
        levels["省级"],
        levels["市级"],
        levels["none"],
        _cell(_districts(tally["by_district"])),
    ]


def _csv_row(code: str, chain: str, sub: str, row: Mapping[str, Any]) -> list[Any]:
    demands = row["demands"]
    median = demands["median_hours_to_first_contact"]
    return [
        code,
        chain,
        _cell(sub),
        *_supplier_cells(row["platforms"]),
        *_supplier_cells(row["manufacturers"]),
        demands["open"],
        demands["without_result"],
        demands["voucher_matchable"],
        demands["contacted"],
        "" if median is None else median,
    ]


def report_csv(report: Mapping[str, Any]) -> str:
    """The report's rows as CSV (RFC 4180 quoting by the ``csv`` module, CRLF line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for chain in report["chains"]:
        writer.writerow(_csv_row(chain["code"], chain["name"], "", chain))
        for sub in chain["subfields"]:
            writer.writerow(_csv_row(chain["code"], chain["name"], sub["name"], sub))
    return buffer.getvalue()


def csv_headers(report: Mapping[str, Any]) -> dict[str, str]:
    """The report's header fields, which a CSV body has no place for, as HTTP headers."""
    return {
        "X-Index-Version": str(report["index_version"]),
        "X-Report-Generated-At": report["generated_at"],
        "X-Report-Threshold": str(report["threshold"]),
        "Content-Disposition": f'attachment; filename="coverage-{report["index_version"]}.csv"',
    }


__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_THRESHOLD",
    "RANK_DEPTH",
    "CoverageReporter",
    "SubfieldMatcher",
    "csv_headers",
    "report_csv",
]
