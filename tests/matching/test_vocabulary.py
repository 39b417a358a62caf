"""The process vocabulary: the shipped table is well formed and agrees with the taxonomy, a
malformed one is refused with the reason, and an alias meets its canonical term in ranking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.matching.ranking import DemandQuery, MatchIndex, SupplierDoc
from services.matching.vocabulary import (
    ProcessGroup,
    ProcessVocabulary,
    VocabularyError,
    load_process_vocabulary,
    text_synonyms,
)
from services.shared.taxonomy import Taxonomy, load_taxonomy


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


def _write(tmp_path: Path, groups: list[dict[str, Any]]) -> Path:
    path = tmp_path / "vocabulary.json"
    path.write_text(json.dumps({"version": 1, "groups": groups}, ensure_ascii=False), "utf-8")
    return path


def test_the_shipped_vocabulary_is_consistent_with_the_taxonomy(taxonomy: Taxonomy) -> None:
    vocabulary = load_process_vocabulary()
    merged = text_synonyms(taxonomy, vocabulary)
    assert vocabulary.groups
    for group in vocabulary.groups:
        for alias in group.aliases:
            assert merged[alias] == group.term
    # The taxonomy's own aliases are all still there, unchanged.
    assert taxonomy.synonyms().items() <= merged.items()


@pytest.mark.parametrize(
    ("groups", "reason"),
    [
        ([{"term": "盐雾试验", "aliases": []}], "no aliases"),
        ([{"term": "", "aliases": ["盐雾测试"]}], "empty term"),
        ([{"term": "盐雾试验", "aliases": ["盐雾试验"]}], "self alias"),
        (
            [
                {"term": "盐雾试验", "aliases": ["盐雾测试"]},
                {"term": "中性盐雾", "aliases": ["盐雾测试"]},
            ],
            "names both",
        ),
        (
            [
                {"term": "盐雾试验", "aliases": ["盐雾测试"]},
                {"term": "盐雾测试", "aliases": ["NSS"]},
            ],
            "also the term",
        ),
        (
            [
                {"term": "盐雾试验", "aliases": ["盐雾测试"]},
                {"term": "盐雾试验", "aliases": ["x1"]},
            ],
            "two groups",
        ),
        ([{"aliases": ["盐雾测试"]}], "term"),
    ],
)
def test_a_malformed_vocabulary_is_refused_with_its_reason(
    tmp_path: Path, groups: list[dict[str, Any]], reason: str
) -> None:
    with pytest.raises(VocabularyError, match=reason):
        load_process_vocabulary(_write(tmp_path, groups))


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vocabulary.json"
    path.write_text("{not json", "utf-8")
    with pytest.raises(VocabularyError, match=r"vocabulary\.json"):
        load_process_vocabulary(path)


@pytest.mark.parametrize(
    ("word", "reason"),
    [("光阻", "sub-field"), ("光刻胶", "sub-field"), ("电子信息", "names an industry chain")],
)
def test_process_words_may_not_take_the_taxonomys_words(
    taxonomy: Taxonomy, word: str, reason: str
) -> None:
    vocabulary = ProcessVocabulary((ProcessGroup("盐雾试验", (word,), "可靠性测试"),))
    with pytest.raises(VocabularyError, match=reason):
        text_synonyms(taxonomy, vocabulary)
    vocabulary = ProcessVocabulary((ProcessGroup(word, ("盐雾测试",), "可靠性测试"),))
    with pytest.raises(VocabularyError, match=reason):
        text_synonyms(taxonomy, vocabulary)


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def _chinese_pair() -> tuple[str, str]:
    """A group of the shipped table whose term and one alias are Chinese words sharing no
    character pair: a text match between them can only come from the vocabulary."""
    for group in load_process_vocabulary().groups:
        for alias in group.aliases:
            chinese = all("\u4e00" <= ch <= "\u9fff" for ch in group.term + alias)
            if chinese and not _bigrams(group.term) & _bigrams(alias):
                return group.term, alias
    raise AssertionError("the vocabulary has no Chinese pair without a shared character pair")


def test_an_alias_in_a_demand_meets_its_canonical_term_in_a_supplier(taxonomy: Taxonomy) -> None:
    term, alias = _chinese_pair()
    named = SupplierDoc(
        id="p-term", kind="platform", name="综合中试平台", description=f"提供{term}服务。"
    )
    other = SupplierDoc(
        id="p-other", kind="platform", name="综合中试平台", description="提供精密装配服务。"
    )
    index = MatchIndex.build([named, other], taxonomy, workers=0)
    matches = index.rank(DemandQuery(title=f"需要{alias}", description=f"寻找{alias}合作"))
    assert matches[0].supplier_id == "p-term"
    assert matches[0].explanation["text"]["similarity"] > 0
    words = [t["term"] for t in matches[0].explanation["text"]["matched_terms"]]
    assert any(w in term for w in words), (term, alias, words)
    # And the other way round: the term in a demand meets the alias in a supplier.
    aliased = SupplierDoc(
        id="p-alias", kind="platform", name="综合中试平台", description=f"提供{alias}服务。"
    )
    index = MatchIndex.build([aliased, other], taxonomy, workers=0)
    matches = index.rank(DemandQuery(title=f"需要{term}"))
    assert matches[0].supplier_id == "p-alias" and matches[0].explanation["text"]["similarity"] > 0


def test_tags_compare_in_canonical_form(taxonomy: Taxonomy) -> None:
    # 光阻 is the taxonomy's alias of the sub-field 光刻胶: as a demand tag, or in a demand's
    # title, it is the supplier's tag 光刻胶, with full credit.
    assert taxonomy.synonyms()["光阻"] == "光刻胶"
    resist = SupplierDoc(id="p-resist", kind="platform", name="材料平台", tags=("光刻胶",))
    other = SupplierDoc(id="p-other", kind="platform", name="材料平台", tags=("涂层",))
    index = MatchIndex.build([resist, other], taxonomy, workers=0)
    for demand in (
        DemandQuery(title="新材料验证", tags=("光阻",)),
        DemandQuery(title="光阻配方验证"),
    ):
        best = index.rank(demand)[0]
        assert best.supplier_id == "p-resist"
        tags = best.explanation["tags"]
        assert tags["matched_tags"][0]["supplier_tag"] == "光刻胶"
        assert tags["matched_tags"][0]["credit"] == 1.0
        assert tags["score"] == 1.0


def test_a_sub_field_alias_in_the_text_infers_the_chains_owning_it(taxonomy: Taxonomy) -> None:
    index = MatchIndex.build(
        [SupplierDoc(id="p", kind="platform", name="平台")], taxonomy, workers=0
    )
    chains, source = index.demand_chains(DemandQuery(title="光阻配方验证"))
    assert source == "inferred"
    assert set(chains) == set(taxonomy.chains_for_subfield("光刻胶"))
