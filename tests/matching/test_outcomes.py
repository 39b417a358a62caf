"""Outcome evidence in ranking: the bounded factor, the counts behind it, its place in `rank`."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from services.matching.outcomes import (
    KindOutcomes,
    OutcomeCounts,
    OutcomeStats,
    demand_kind,
    outcome_factor,
)
from services.matching.ranking import DemandQuery, MatchIndex, RankingWeights
from services.shared.taxonomy import Taxonomy, load_taxonomy
from tests.matching.test_ranking import BATTERY, BATTERY_LAB, CATALOG, SOLID_STATE

W = RankingWeights()


def factor(positive: int, declined: int, weights: RankingWeights = W) -> float:
    return outcome_factor(
        positive,
        declined,
        beta=weights.outcome_beta,
        prior=weights.outcome_prior,
        max_penalty=weights.outcome_max_penalty,
        max_boost=weights.outcome_max_boost,
    )


# ---------------------------------------------------------------- the factor


def test_no_outcomes_means_factor_one() -> None:
    assert factor(0, 0) == 1.0


@pytest.mark.parametrize(
    ("positive", "declined", "expected"),
    [(0, 1, 0.90), (0, 2, 0.84), (0, 3, 0.80), (0, 5, 0.75), (0, 50, 0.75), (1, 0, 1.10)],
)
def test_the_documented_values(positive: int, declined: int, expected: float) -> None:
    assert factor(positive, declined) == pytest.approx(expected)


def test_the_factor_stays_within_its_bounds() -> None:
    for positive, declined in itertools.product(range(30), repeat=2):
        value = factor(positive, declined)
        assert 1 - W.outcome_max_penalty <= value <= 1 + W.outcome_max_boost


def test_the_factor_rises_with_positives_and_falls_with_declines() -> None:
    for positive, declined in itertools.product(range(15), repeat=2):
        assert factor(positive + 1, declined) >= factor(positive, declined)
        assert factor(positive, declined + 1) <= factor(positive, declined)
    # Strictly, away from the bounds.
    assert factor(0, 1) > factor(0, 2) > factor(0, 3)


def test_the_bounds_are_weights() -> None:
    strict = replace(W, outcome_max_penalty=0.05, outcome_max_boost=0.01)
    assert factor(0, 10, strict) == pytest.approx(0.95)
    assert factor(10, 0, strict) == pytest.approx(1.01)


def test_the_kind_of_a_demand_is_its_primary_chain() -> None:
    assert demand_kind(("新能源", "新材料")) == "新能源"
    assert demand_kind(()) == "any"


# ---------------------------------------------------------------- the counts


def outcome(demand: str, supplier: str, kind: str, at: str = "2026-11-01T00:00:00Z") -> dict:
    return {"demand_id": demand, "supplier_id": supplier, "outcome": kind, "recorded_at": at}


def counts(stats: OutcomeStats, kind: str, supplier: str) -> OutcomeCounts | None:
    found = stats.snapshot().for_kind(kind)
    return None if found is None else found.counts.get(supplier)


def test_each_demand_counts_once_with_its_latest_outcome() -> None:
    stats = OutcomeStats()
    stats.apply(outcome("d1", "s", "contacted", "2026-11-01T00:00:00Z"), "新能源", 1)
    stats.apply(outcome("d1", "s", "contracted", "2026-11-02T00:00:00Z"), "新能源", 2)
    stats.apply(outcome("d1", "s", "completed", "2026-11-03T00:00:00Z"), "新能源", 3)
    assert counts(stats, "新能源", "s") == OutcomeCounts(positive=1, declined=0)
    stats.apply(outcome("d2", "s", "contacted", "2026-11-01T00:00:00Z"), "新能源", 4)
    stats.apply(outcome("d2", "s", "declined", "2026-11-02T00:00:00Z"), "新能源", 5)
    assert counts(stats, "新能源", "s") == OutcomeCounts(positive=1, declined=1)


def test_a_backdated_outcome_does_not_override_a_later_one() -> None:
    stats = OutcomeStats()
    stats.apply(outcome("d1", "s", "declined", "2026-11-05T00:00:00Z"), "新能源", 1)
    assert not stats.apply(outcome("d1", "s", "contacted", "2026-11-01T00:00:00Z"), "新能源", 2)
    assert counts(stats, "新能源", "s") == OutcomeCounts(positive=0, declined=1)


def test_viewed_is_neutral_and_a_repeat_changes_nothing() -> None:
    stats = OutcomeStats()
    assert not stats.apply(outcome("d1", "s", "viewed"), "新能源", 1)
    assert stats.snapshot().for_kind("新能源") is None
    declined = outcome("d1", "s", "declined")
    assert stats.apply(declined, "新能源", 2)
    assert not stats.apply(declined, "新能源", 2)
    assert counts(stats, "新能源", "s") == OutcomeCounts(positive=0, declined=1)


def test_counts_are_kept_per_kind_of_demand() -> None:
    stats = OutcomeStats()
    stats.apply(outcome("d1", "s", "declined"), "新能源", 1)
    stats.apply(outcome("d2", "s", "completed"), "食品饮料", 2)
    assert counts(stats, "新能源", "s") == OutcomeCounts(positive=0, declined=1)
    assert counts(stats, "食品饮料", "s") == OutcomeCounts(positive=1, declined=0)
    assert stats.snapshot().for_kind("新一代电子信息") is None


def test_a_snapshot_does_not_change_when_later_outcomes_arrive() -> None:
    stats = OutcomeStats()
    stats.apply(outcome("d1", "s", "declined"), "新能源", 1)
    before = stats.snapshot()
    stats.apply(outcome("d2", "s", "declined"), "新能源", 2)
    assert before.for_kind("新能源").counts["s"].declined == 1  # type: ignore[union-attr]
    assert stats.snapshot().for_kind("新能源").counts["s"].declined == 2  # type: ignore[union-attr]


# ---------------------------------------------------------------- in the ranking


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="module")
def index(taxonomy: Taxonomy) -> MatchIndex:
    return MatchIndex.build(CATALOG, taxonomy)


def scores(index: MatchIndex, demand: DemandQuery, outcomes: KindOutcomes | None) -> dict:
    return {m.supplier_id: m for m in index.rank(demand, limit=100, outcomes=outcomes)}


def test_declines_lower_a_supplier_by_the_documented_factor(index: MatchIndex) -> None:
    before = scores(index, SOLID_STATE, None)
    evidence = KindOutcomes("新能源", {BATTERY.id: OutcomeCounts(positive=0, declined=3)})
    after = scores(index, SOLID_STATE, evidence)
    assert after[BATTERY.id].score == pytest.approx(before[BATTERY.id].score * 0.8, abs=1e-5)
    # Everyone else keeps their score.
    for supplier_id, match in before.items():
        if supplier_id != BATTERY.id:
            assert after[supplier_id].score == pytest.approx(match.score, abs=1e-6)
    # Without evidence there is no outcomes factor at all.
    for match in before.values():
        assert "outcomes" not in [c["name"] for c in match.explanation["constraints"]]


def test_the_explanation_shows_the_outcomes_factor_and_its_effect(index: MatchIndex) -> None:
    evidence = KindOutcomes("新能源", {BATTERY.id: OutcomeCounts(positive=1, declined=2)})
    match = scores(index, SOLID_STATE, evidence)[BATTERY.id]
    e = match.explanation
    (item,) = [c for c in e["constraints"] if c["name"] == "outcomes"]
    assert (item["kind"], item["positive"], item["declined"]) == ("新能源", 1, 2)
    assert item["factor"] == pytest.approx(factor(1, 2), abs=1e-6)
    assert item["effect"] < 0
    assert match.score == pytest.approx(e["base"] + sum(c["effect"] for c in e["constraints"]))
    # A supplier without outcomes of this kind shows factor 1 and no effect.
    other = scores(index, SOLID_STATE, evidence)[BATTERY_LAB.id].explanation["constraints"]
    (neutral,) = [c for c in other if c["name"] == "outcomes"]
    assert (neutral["factor"], neutral["effect"], neutral["declined"]) == (1.0, 0.0, 0)


def test_a_boost_is_found_by_a_short_search_too(
    taxonomy: Taxonomy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search bound includes the boost: with a boosted supplier far down the plain
    ranking, ranking the top few gives the same answer as ranking everyone."""
    import services.matching.ranking as ranking

    catalog = [
        replace(doc, id=f"{doc.id}-{i}", name=doc.name + "ABCDEFGH"[i])
        for i in range(8)
        for doc in CATALOG
    ]
    strong = replace(W, outcome_max_boost=1.0, outcome_beta=1.0, outcome_prior=0.0)
    index = MatchIndex.build(catalog, taxonomy, strong)
    plain = index.rank(SOLID_STATE, limit=100)
    # The lowest-ranked supplier that a doubled score would put first.
    boosted = [m for m in plain if 2 * m.score > plain[0].score][-1]
    assert plain.index(boosted) >= 8
    evidence = KindOutcomes("新能源", {boosted.supplier_id: OutcomeCounts(positive=5)})
    full = index.rank(SOLID_STATE, limit=100, outcomes=evidence)
    assert full[0].supplier_id == boosted.supplier_id
    monkeypatch.setattr(ranking, "SHORTLIST", 0)  # bound everything beyond 4 per result
    top = index.rank(SOLID_STATE, limit=1, outcomes=evidence)
    assert [(m.supplier_id, m.score) for m in top] == [(full[0].supplier_id, full[0].score)]


def test_a_supplier_unknown_to_the_index_changes_nothing(index: MatchIndex) -> None:
    evidence = KindOutcomes("新能源", {"gone": OutcomeCounts(declined=9)})
    with_evidence = index.rank(SOLID_STATE, limit=100, outcomes=evidence)
    assert [(m.supplier_id, m.explanation) for m in with_evidence] == [
        (m.supplier_id, m.explanation) for m in index.rank(SOLID_STATE, limit=100)
    ]
