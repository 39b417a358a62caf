"""Reasons in English and Chinese, and the Accept-Language negotiation that picks one."""

from __future__ import annotations

import re
import string

import pytest

from services.matching.messages import LANGUAGES, REASONS, join, kind_name, negotiate, say
from services.matching.ranking import DemandQuery, MatchIndex, SupplierDoc
from services.shared.taxonomy import Taxonomy, load_taxonomy


def fields_of(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("key", sorted(REASONS))
def test_every_reason_has_every_language_with_the_same_fields(key: str) -> None:
    templates = REASONS[key]
    assert set(templates) == set(LANGUAGES)
    assert len({frozenset(fields_of(t)) for t in templates.values()}) == 1, templates
    assert not re.search(r"[\u4e00-\u9fff]", templates["en"].replace("{", "").replace("}", ""))
    assert re.search(r"[\u4e00-\u9fff]", templates["zh"])


def test_say_join_and_kind_names() -> None:
    assert say("stage_offered", "en", stage="中试") == "offers the stage 中试"
    assert say("stage_offered", "zh", stage="中试") == "提供中试阶段服务"
    assert join(["CNAS", "CMA"], "en") == "CNAS, CMA" and join(["CNAS", "CMA"], "zh") == "CNAS、CMA"
    assert kind_name("manufacturer", "zh") == "中试代工厂" and kind_name("other", "zh") == "other"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("en;q=0.5, zh-Hans;q=0.8", "zh"),
        ("fr-FR, de", "en"),  # neither: the default
        ("fr, zh;q=0.3", "zh"),
        ("*", "en"),
        ("zh;q=0, en", "en"),  # q=0 refuses
        ("zh;q=0", "en"),
        ("ZH-TW", "zh"),
        ("zh;q=abc, en;q=0.1", "en"),  # an unreadable weight counts as a refusal
        ("en;q=0.8, zh;q=0.8", "en"),  # equal weights: the first
        (";;,, ,zh", "zh"),
    ],
)
def test_accept_language_is_negotiated(header: str | None, language: str) -> None:
    assert negotiate(header) == language


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


def test_a_ranking_in_chinese_says_every_reason_in_chinese(taxonomy: Taxonomy) -> None:
    """Stage, voucher, district, kind and disclaimer, each in Chinese; the figures are the
    same as in English."""
    lab = SupplierDoc(
        id="p-lab",
        kind="platform",
        name="固态电池材料实验室",
        district="松山湖",
        description="固态电解质材料小试。不能做软包电芯试产。",
        industry_chains=("新能源",),
        stages=("小试",),
    )
    factory = SupplierDoc(
        id="m-cells",
        kind="manufacturer",
        name="电芯试产代工厂",
        district="清溪镇",
        description="软包电芯小批量试产代工。",
        industry_chains=("新能源",),
        stages=("小批量试产",),
        accepts_vouchers=True,
    )
    index = MatchIndex.build([lab, factory], taxonomy, workers=0)
    demand = DemandQuery(
        title="固态电池软包电芯小批量试产",
        district="清溪镇",
        needs_voucher=True,
        stage="小批量试产",
        required_certifications=(),
    )
    english = index.rank(demand, limit=10)
    chinese = index.rank(demand, limit=10, language="zh")
    assert [m.supplier_id for m in chinese] == [m.supplier_id for m in english]
    for en, zh in zip(english, chinese, strict=True):
        assert en.score == zh.score
        en_constraints, zh_constraints = (
            en.explanation["constraints"],
            zh.explanation["constraints"],
        )
        assert [c["name"] for c in en_constraints] == [c["name"] for c in zh_constraints]
        for e, z in zip(en_constraints, zh_constraints, strict=True):
            assert {k: v for k, v in e.items() if k != "reason"} == {
                k: v for k, v in z.items() if k != "reason"
            }
            assert re.search(r"[\u4e00-\u9fff]", z["reason"]) and e["reason"] != z["reason"]
            assert not re.search(r"\b(offers|demand|supplier|the)\b", z["reason"]), z["reason"]
    reasons = {c["name"]: c["reason"] for c in chinese[1].explanation["constraints"]}
    assert chinese[1].supplier_id == "p-lab"
    assert reasons["stage"].startswith("提供小试阶段服务，与需求的小批量试产阶段相差")
    assert reasons["voucher"] == "需求需使用中试服务券，该供给方不接受服务券"
    assert reasons["kind"].endswith("该供给方为中试平台")
    assert reasons["disclaimer"].startswith("声明不做需求所要求的内容：")
