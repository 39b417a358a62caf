"""Integrity of the demo catalog that `pilotmatch load-demo` loads."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import pytest

STAGES = {"概念验证", "小试", "中试", "小批量试产"}
LEVELS = {"国家级", "省级", "市级"}
CHAINS = {
    "新一代电子信息",
    "高端装备制造",
    "食品饮料",
    "纺织服装鞋帽",
    "半导体及集成电路",
    "新能源",
    "新材料",
    "生物医药及高端医疗器械",
    "软件与信息服务业",
    "下一代移动通信（6G）",
    "前沿新材料",
    "具身智能",
    "未来生命健康",
}
SUPPLIER_FIELDS = {
    "external_ref",
    "name",
    "organization",
    "district",
    "description",
    "industry_chains",
    "tags",
    "capabilities",
    "equipment",
    "stages",
    "certifications",
    "accepts_vouchers",
    "level",
}
DEMAND_FIELDS = {
    "external_ref",
    "title",
    "description",
    "industry_chains",
    "tags",
    "stage",
    "district",
    "needs_voucher",
    "required_certifications",
}
LISTS = ("platforms", "manufacturers", "demands", "equipment", "solutions")
KIND_TO_LIST = {"platform": "platforms", "manufacturer": "manufacturers"}


@cache
def _catalog() -> dict[str, list[dict[str, Any]]]:
    resource = files("services.catalog") / "demo" / "demo_catalog.json"
    return json.loads(resource.read_text(encoding="utf-8"))


def _suppliers() -> list[dict[str, Any]]:
    return _catalog()["platforms"] + _catalog()["manufacturers"]


def _by_ref(list_name: str) -> dict[str, dict[str, Any]]:
    return {item["external_ref"]: item for item in _catalog()[list_name]}


def test_has_every_list_and_nothing_else() -> None:
    assert set(_catalog()) == set(LISTS)
    for name in LISTS:
        assert _catalog()[name], name


@pytest.mark.parametrize("list_name", LISTS)
def test_external_refs_unique(list_name: str) -> None:
    refs = [item["external_ref"] for item in _catalog()[list_name]]
    assert all(isinstance(ref, str) and ref for ref in refs)
    assert len(refs) == len(set(refs))


def test_suppliers_have_contract_fields() -> None:
    for item in _suppliers():
        ref = item["external_ref"]
        assert set(item) == SUPPLIER_FIELDS, ref
        assert item["industry_chains"], ref
        assert set(item["industry_chains"]) <= CHAINS, ref
        assert set(item["stages"]) <= STAGES, ref
        assert item["stages"], ref
        assert item["level"] is None or item["level"] in LEVELS, ref
        assert isinstance(item["accepts_vouchers"], bool), ref
    for item in _catalog()["manufacturers"]:
        assert item["level"] is None, item["external_ref"]


def test_demands_have_contract_fields() -> None:
    for item in _catalog()["demands"]:
        ref = item["external_ref"]
        assert set(item) == DEMAND_FIELDS, ref
        assert item["stage"] is None or item["stage"] in STAGES, ref
        assert isinstance(item["needs_voucher"], bool), ref


def test_equipment_belongs_to_an_existing_supplier_that_lists_it() -> None:
    for item in _catalog()["equipment"]:
        supplier = item["supplier"]
        owners = _by_ref(KIND_TO_LIST[supplier["kind"]])
        assert supplier["external_ref"] in owners, item["external_ref"]
        assert item["name"] in owners[supplier["external_ref"]]["equipment"], item["external_ref"]


def test_solutions_belong_to_platforms_and_are_consistent() -> None:
    platforms = _by_ref("platforms")
    for item in _catalog()["solutions"]:
        ref = item["external_ref"]
        assert item["platform_external_ref"] in platforms, ref
        assert set(item["industry_chains"]) <= CHAINS, ref
        assert set(item["stages"]) <= STAGES, ref
        low, high = item["price_min_cny"], item["price_max_cny"]
        if low is not None and high is not None:
            assert low <= high, ref


def test_every_required_certification_is_held_by_some_supplier() -> None:
    held = {cert for item in _suppliers() for cert in item["certifications"]}
    for item in _catalog()["demands"]:
        missing = set(item["required_certifications"]) - held
        assert not missing, (item["external_ref"], missing)


def test_some_chain_lacks_a_platform_for_the_coverage_report() -> None:
    covered = {chain for item in _catalog()["platforms"] for chain in item["industry_chains"]}
    assert 1 <= len(CHAINS - covered) <= 3
