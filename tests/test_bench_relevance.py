"""bench/relevance.py's weight overrides (``--set NAME=VALUE``): the figures it prints for a
changed ranker must be those of the weights asked for."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from services.matching.ranking import RankingWeights


@pytest.fixture(scope="module")
def relevance() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "relevance.py"
    spec = importlib.util.spec_from_file_location("bench_relevance", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_overrides_are_read_as_each_fields_type(relevance: ModuleType) -> None:
    weights = relevance.weights_from(["batch_mismatch=0.15", "neighbour_chains=3", "chain = 0.25"])
    assert weights == RankingWeights(batch_mismatch=0.15, neighbour_chains=3, chain=0.25)
    assert isinstance(weights.neighbour_chains, int)
    assert relevance.weights_from([]) == RankingWeights()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("no_such_weight=1", "NAME one of"),
        ("batch_mismatch", "NAME one of"),
        ("batch_mismatch=lots", "takes a number"),
        ("neighbour_chains=2.5", "takes a whole number"),
    ],
)
def test_a_bad_override_is_refused_with_its_reason(
    relevance: ModuleType, override: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        relevance.weights_from([override])


def test_substitutes_are_suppliers_good_for_the_same_demands(relevance: ModuleType) -> None:
    demands = [
        {"relevance": {"P1": 3, "P2": 2, "P3": 1}},
        {"relevance": {"P1": 2, "P2": 3, "M1": 3}},
    ]
    like = relevance.substitutes(demands)
    assert like["P1"] == {"P2": 2, "M1": 2}  # min of the pair, best over the demands
    assert like["P2"] == {"P1": 2, "M1": 3}
    assert "P3" not in like and "P3" not in like["P1"]  # a partial match is nobody's substitute
