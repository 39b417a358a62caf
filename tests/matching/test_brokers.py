"""Which technology brokers are suggested beside a demand's matches, and in what order."""

from __future__ import annotations

from typing import Any

from services.matching.brokers import suggest_brokers


def broker(broker_id: str, chains: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "id": broker_id,
        "name": f"broker {broker_id}",
        "organization": "",
        "district": "",
        "industry_chains": chains,
        "certification_level": None,
        "active": True,
        **fields,
    }


def ids(suggestions: list[dict[str, Any]]) -> list[str]:
    return [s["broker_id"] for s in suggestions]


def test_more_covered_chains_beat_a_higher_title() -> None:
    brokers = [
        broker("b1", ["新能源"], certification_level="高级"),
        broker("b2", ["新能源", "新材料"], certification_level="初级"),
    ]
    suggestions = suggest_brokers(brokers, ["新能源", "新材料"], None)
    assert ids(suggestions) == ["b2", "b1"]
    assert suggestions[0]["matched_chains"] == ["新能源", "新材料"]
    assert suggestions[1]["matched_chains"] == ["新能源"]


def test_title_then_district_then_id_break_ties() -> None:
    brokers = [
        broker("b4", ["新能源"], certification_level="中级", district="松山湖"),
        broker("b3", ["新能源"], certification_level="中级", district="松山湖"),
        broker("b2", ["新能源"], certification_level="中级", district="长安镇"),
        broker("b1", ["新能源"]),
        broker("b0", ["新能源"], certification_level="高级", district="长安镇"),
    ]
    suggestions = suggest_brokers(brokers, ["新能源"], "松山湖", limit=5)
    assert ids(suggestions) == ["b0", "b3", "b4", "b2", "b1"]
    assert [s["same_district"] for s in suggestions] == [False, True, True, False, False]


def test_inactive_and_non_covering_brokers_are_not_suggested_and_three_at_most() -> None:
    brokers = [
        broker("off", ["新能源"], active=False, certification_level="高级"),
        broker("other", ["食品饮料"], certification_level="高级"),
        *(broker(f"b{i}", ["新能源"]) for i in range(5)),
    ]
    assert ids(suggest_brokers(brokers, ["新能源"], None)) == ["b0", "b1", "b2"]
    assert suggest_brokers(brokers, [], None) == []


def test_assigned_broker_comes_first_and_is_marked_even_if_it_covers_nothing() -> None:
    brokers = [
        broker("b1", ["新能源"], certification_level="高级"),
        broker("b2", ["新能源"]),
        broker("b3", ["新能源"]),
        broker("mine", ["食品饮料"], active=False),
    ]
    suggestions = suggest_brokers(brokers, ["新能源"], None, assigned_id="mine")
    assert ids(suggestions) == ["mine", "b1", "b2"]
    assert [s["assigned"] for s in suggestions] == [True, False, False]
    assert suggestions[0]["matched_chains"] == []


def test_assigned_id_naming_no_broker_is_ignored_and_fields_are_read_defensively() -> None:
    sparse = {"id": "b1", "industry_chains": ["新能源"]}  # no name, level, active …
    (suggestion,) = suggest_brokers([sparse, {"name": "no id"}], ["新能源"], "松山湖", "gone")
    assert suggestion["broker_id"] == "b1"
    assert suggestion["assigned"] is False
    assert suggestion["certification_level"] is None
    assert suggestion["same_district"] is False
