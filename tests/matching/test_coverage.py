"""The coverage and gap report on small synthetic snapshots: counts, thresholds, medians, the
sub-field rules, caching, and the CSV form."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from services.matching.coverage import (
    CSV_COLUMNS,
    CoverageReporter,
    SubfieldMatcher,
    report_csv,
)
from services.matching.index import IndexSnapshot, demand_query
from services.matching.ranking import MatchIndex, SupplierDoc
from services.shared.taxonomy import Taxonomy, load_taxonomy

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


def supplier(sid: str, kind: str, chains: tuple[str, ...], **fields: Any) -> SupplierDoc:
    return SupplierDoc(
        id=sid, kind=kind, name=fields.pop("name", sid), industry_chains=chains, **fields
    )  # type: ignore[arg-type]


BATTERY = supplier(
    "p-battery",
    "platform",
    ("新能源",),
    name="固态电池中试平台",
    description="固态电池电芯试制、干法电极与安全测试的中试验证。",
    tags=("固态电池电芯",),
    capabilities=("安全测试",),
    district="松山湖",
    level="省级",
    accepts_vouchers=True,
    stages=("中试",),
)
STORAGE = supplier(
    "p-storage",
    "platform",
    ("新能源", "新材料"),
    name="储能系统测试平台",
    description="储能电池系统集成与测试。",
    tags=("储能",),
    district="松山湖",
    level="国家级",
    stages=("中试",),
)
CELLS = supplier(
    "m-cells",
    "manufacturer",
    ("新能源",),
    name="电芯代工厂",
    description="软包电芯小批量试产代工。",
    tags=("半固态电池",),
    district="清溪镇",
    stages=("小批量试产",),
)
GARMENTS = supplier(
    "m-garments",
    "manufacturer",
    ("纺织服装鞋帽",),
    name="服装打样厂",
    description="针织服装打样与小批量生产。",
    tags=("针织",),
    district="",
)


def demand_record(did: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": did,
        "title": "固态电池电芯中试放大",
        "description": "需要中试线试制固态电池电芯并做安全测试。",
        "industry_chains": ["新能源"],
        "tags": ["固态电池"],
        "stage": "中试",
        "district": None,
        "needs_voucher": False,
        "required_certifications": [],
        "created_at": "2026-11-01T00:00:00+00:00",
        **fields,
    }


def outcome(demand_id: str, kind: str, at: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"out-{demand_id}-{kind}-{at}",
        "demand_id": demand_id,
        "supplier_id": "p-battery",
        "outcome": kind,
        "reason": None,
        "recorded_at": at,
        "created_at": at,
        **fields,
    }


def snapshot(
    taxonomy: Taxonomy,
    suppliers: list[SupplierDoc],
    demands: list[dict[str, Any]],
    outcomes: list[dict[str, Any]] = (),  # type: ignore[assignment]
    *,
    version: int = 1,
    index: Any = None,
) -> IndexSnapshot:
    return IndexSnapshot(
        index=index if index is not None else MatchIndex.build(suppliers, taxonomy, workers=0),
        version=version,
        suppliers={s.id: s for s in suppliers},
        demands={d["id"]: demand_query(d) for d in demands},
        built_at=NOW,
        updated_at=NOW,
        records={
            "demand": {d["id"]: d for d in demands},
            "broker": {},
            "match_outcome": {o["id"]: o for o in outcomes},
        },
    )


def chain_row(report: dict[str, Any], name: str) -> dict[str, Any]:
    (row,) = [c for c in report["chains"] if c["name"] == name]
    return row


def subfield_row(report: dict[str, Any], chain: str, name: str) -> dict[str, Any]:
    (row,) = [s for s in chain_row(report, chain)["subfields"] if s["name"] == name]
    return row


def test_suppliers_are_counted_per_chain_by_level_and_district(taxonomy: Taxonomy) -> None:
    report = CoverageReporter(taxonomy, clock=lambda: NOW).report(
        snapshot(taxonomy, [BATTERY, STORAGE, CELLS, GARMENTS], []), 1.1
    )
    energy = chain_row(report, "新能源")
    assert energy["platforms"] == {
        "total": 2,
        "by_level": {"国家级": 1, "省级": 1, "市级": 0, "none": 0},
        "by_district": {"松山湖": 2},
    }
    assert energy["manufacturers"]["total"] == 1
    assert energy["manufacturers"]["by_level"]["none"] == 1
    assert chain_row(report, "新材料")["platforms"]["total"] == 1
    assert chain_row(report, "纺织服装鞋帽")["manufacturers"]["by_district"] == {"none": 1}
    covered = {"新能源", "新材料"}
    assert report["chains_without_platform"] == [
        c.name for c in taxonomy.chains if c.name not in covered
    ]
    assert "纺织服装鞋帽" in report["chains_without_platform"]
    assert "纺织服装鞋帽" not in report["chains_without_manufacturer"]
    assert report["index_version"] == 1
    assert report["generated_at"] == NOW.isoformat()
    assert report["threshold"] == 1.1
    assert len(report["chains"]) == len(taxonomy.chains)
    for chain, out in zip(taxonomy.chains, report["chains"], strict=True):
        assert [s["name"] for s in out["subfields"]] == list(dict.fromkeys(chain.subfields))


def test_subfields_come_from_tags_and_capabilities_within_the_suppliers_chains(
    taxonomy: Taxonomy,
) -> None:
    report = CoverageReporter(taxonomy).report(
        snapshot(taxonomy, [BATTERY, STORAGE, CELLS], []), 1.1
    )
    # 固态电池电芯 contains 固态电池; 半固态电池 is itself a sub-field, so not also 固态电池.
    assert subfield_row(report, "新能源", "固态电池")["platforms"]["total"] == 1
    assert subfield_row(report, "新能源", "固态电池")["manufacturers"]["total"] == 0
    assert subfield_row(report, "新能源", "半固态电池")["manufacturers"]["total"] == 1
    assert subfield_row(report, "新能源", "储能")["platforms"]["total"] == 1
    # STORAGE lists 新材料 too, but 储能 is no sub-field of 新材料.
    assert all(s["platforms"]["total"] == 0 for s in chain_row(report, "新材料")["subfields"])


def test_subfield_matcher_rules(taxonomy: Taxonomy) -> None:
    matcher = SubfieldMatcher(taxonomy)
    assert matcher.subfields("新能源", ["固態電池"]) == {"固态电池"}  # traditional form
    assert matcher.subfields("新能源", ["半固态电池"]) == {"半固态电池"}  # exact wins
    assert matcher.subfields("新能源", ["钠离子电池组装"]) == {"钠离子电池"}  # contained
    assert matcher.subfields("具身智能", ["灵巧手 "]) == {"灵巧手"}
    assert matcher.subfields("新一代电子信息", ["smt贴片"]) == {"SMT贴片"}  # case-folded
    assert matcher.subfields("软件与信息服务业", ["AIGC"]) == set()  # short terms only exact
    assert matcher.subfields("半导体及集成电路", ["Chiplett"]) == {"Chiplet"}  # near-miss
    assert matcher.subfields("食品饮料", ["固态电池"]) == set()  # not this chain's


def test_open_demands_threshold_and_vouchers(taxonomy: Taxonomy) -> None:
    demands = [
        demand_record("d-open", needs_voucher=True),  # no status: open
        demand_record("d-matched", status="matched", needs_voucher=True),
        demand_record("d-closed", status="closed", needs_voucher=True),
        demand_record("d-expired", status="expired"),
        demand_record("d-progress", status="in_progress"),
    ]
    reporter = CoverageReporter(taxonomy)
    snap = snapshot(taxonomy, [BATTERY, CELLS], demands)
    best = max(m.score for m in snap.index.rank(snap.demands["d-open"], "all", 5))
    served = chain_row(reporter.report(snap, 0.5), "新能源")["demands"]
    assert served["open"] == 3
    assert served["without_result"] == 0
    assert served["voucher_matchable"] == 2  # BATTERY takes vouchers; the closed one is out
    unserved = chain_row(reporter.report(snap, best + 0.01), "新能源")["demands"]
    assert unserved["open"] == 3
    assert unserved["without_result"] == 3
    assert unserved["voucher_matchable"] == 0
    # The sub-field row counts the same demands: their tag is 固态电池.
    assert subfield_row(reporter.report(snap, 0.5), "新能源", "固态电池")["demands"]["open"] == 3


def test_voucher_needs_a_supplier_that_accepts_vouchers(taxonomy: Taxonomy) -> None:
    no_vouchers = replace(BATTERY, accepts_vouchers=False)
    report = CoverageReporter(taxonomy).report(
        snapshot(taxonomy, [no_vouchers, CELLS], [demand_record("d", needs_voucher=True)]), 0.1
    )
    demands = chain_row(report, "新能源")["demands"]
    assert (demands["open"], demands["without_result"], demands["voucher_matchable"]) == (1, 0, 0)


def test_demand_chains_are_inferred_from_text_or_counted_apart(taxonomy: Taxonomy) -> None:
    demands = [
        demand_record("d-text", industry_chains=[], tags=[]),  # 固态电池 in the text: 新能源
        demand_record("d-none", industry_chains=[], tags=[], title="xyz", description="qqq"),
    ]
    report = CoverageReporter(taxonomy).report(snapshot(taxonomy, [BATTERY], demands), 10.0)
    assert chain_row(report, "新能源")["demands"]["open"] == 1
    assert report["demands_without_chain"]["open"] == 1
    assert report["demands_without_chain"]["without_result"] == 1


def test_median_hours_to_first_contact(taxonomy: Taxonomy) -> None:
    demands = [
        demand_record("d1", created_at="2026-11-01T00:00:00Z"),
        demand_record("d2", created_at="2026-11-01T00:00:00+00:00", status="closed"),
        demand_record("d3", created_at="2026-11-01T08:00:00+08:00"),  # = 00:00 UTC
        demand_record("d4"),  # only viewed and declined: no contact
        demand_record("d5", created_at=None),  # unreadable: skipped
    ]
    outcomes = [
        outcome("d1", "viewed", "2026-11-01T00:30:00+00:00"),
        outcome("d1", "contacted", "2026-11-01T05:00:00+00:00"),
        outcome("d1", "contracted", "2026-11-01T01:00:00+00:00"),  # later stage, earlier
        outcome("d2", "completed", "2026-11-01T03:00:00+00:00"),
        outcome("d3", "visited", "2026-11-01T10:00:00+00:00"),
        outcome("d4", "viewed", "2026-11-01T01:00:00+00:00"),
        outcome("d4", "declined", "2026-11-01T02:00:00+00:00"),
        outcome("d5", "contacted", "2026-11-01T02:00:00+00:00"),
        outcome("gone", "contacted", "2026-11-01T02:00:00+00:00"),  # demand deleted
        {"id": "junk", "outcome": "contacted"},  # no demand, no time
        outcome("d4", "contacted", "not a time", created_at=None),
    ]
    report = CoverageReporter(taxonomy).report(
        snapshot(taxonomy, [BATTERY], demands, outcomes), 1.1
    )
    demands_row = chain_row(report, "新能源")["demands"]
    assert demands_row["contacted"] == 3
    assert demands_row["median_hours_to_first_contact"] == 3.0  # of 1, 3 and 10 hours
    assert chain_row(report, "食品饮料")["demands"]["median_hours_to_first_contact"] is None


def test_report_is_cached_per_version_and_rankings_are_reused(taxonomy: Taxonomy) -> None:
    reporter = CoverageReporter(taxonomy)
    first = snapshot(taxonomy, [BATTERY], [demand_record("d1"), demand_record("d2")])
    report = reporter.report(first, 1.1)
    assert reporter.rankings == 2
    assert reporter.report(first, 1.1) is report
    assert reporter.rankings == 2
    reporter.report(first, 0.5)  # another threshold: a new report, the same rankings
    assert reporter.rankings == 2
    # A new demand on the same supplier index: only it is ranked.
    second = snapshot(
        taxonomy,
        [BATTERY],
        [demand_record("d1"), demand_record("d2"), demand_record("d3")],
        version=2,
        index=first.index,
    )
    assert chain_row(reporter.report(second, 1.1), "新能源")["demands"]["open"] == 3
    assert reporter.rankings == 3
    # New suppliers (a new index): every open demand is ranked again.
    third = snapshot(taxonomy, [BATTERY, CELLS], [demand_record("d1")], version=3)
    reporter.report(third, 1.1)
    assert reporter.rankings == 4


def test_csv_has_one_row_per_chain_and_subfield_and_escapes_text(taxonomy: Taxonomy) -> None:
    odd = replace(BATTERY, id="p-odd", district='松山湖, "东区"')
    formula = replace(STORAGE, id="p-formula", district="=HYPERLINK(1)")
    report = CoverageReporter(taxonomy).report(
        snapshot(taxonomy, [odd, formula], [demand_record("d1")]), 1.1
    )
    text = report_csv(report)
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    expected = sum(1 + len(dict.fromkeys(c.subfields)) for c in taxonomy.chains)
    assert len(rows) == 1 + expected
    assert all(len(row) == len(CSV_COLUMNS) for row in rows)
    by_key = {(row[1], row[2]): dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]}
    energy = by_key["新能源", ""]
    assert energy["chain_code"] == "NEW_ENERGY"
    assert energy["platforms"] == "2"
    assert energy["platforms_provincial"] == "1"
    assert energy["platforms_national"] == "1"
    assert energy["platforms_by_district"] in (
        '\'=HYPERLINK(1)=1; 松山湖, "东区"=1',
        '松山湖, "东区"=1; \'=HYPERLINK(1)=1',
    )
    assert energy["open_demands"] == "1"
    assert energy["median_hours_to_first_contact"] == ""
    assert by_key["纺织服装鞋帽", ""]["platforms"] == "0"
    assert by_key["新能源", "固态电池"]["platforms"] == "1"


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf"])
def test_a_threshold_that_is_not_a_finite_number_says_so(value: str) -> None:
    from pydantic import ValidationError

    from services.matching.schemas import CoverageParams

    with pytest.raises(ValidationError) as caught:
        CoverageParams(threshold=value)  # type: ignore[arg-type]
    assert "finite number" in caught.value.errors()[0]["msg"]


@pytest.mark.parametrize("value", ["1_0", " 1.1", "1.1 ", "0x1", "1,1", ""])
def test_a_threshold_must_be_a_plain_decimal_number(value: str) -> None:
    from pydantic import ValidationError

    from services.matching.schemas import CoverageParams

    with pytest.raises(ValidationError, match="decimal number"):
        CoverageParams(threshold=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "parsed"), [("1.1", 1.1), ("0", 0.0), (".5", 0.5), ("2e0", 2.0)])
def test_a_plain_decimal_threshold_is_read(value: str, parsed: float) -> None:
    from services.matching.schemas import CoverageParams

    assert CoverageParams(threshold=value).threshold == parsed  # type: ignore[arg-type]
