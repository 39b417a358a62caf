"""The industry-chain taxonomy data and its label resolver."""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
from types import MappingProxyType
from typing import Any

import pytest

from services.shared import taxonomy
from services.shared.taxonomy import (
    FUZZY_THRESHOLD,
    Chain,
    Taxonomy,
    TaxonomyError,
    load_taxonomy,
    parse_chains,
)

SEED_CHAINS = {
    "pillar": ["新一代电子信息", "高端装备制造", "食品饮料", "纺织服装鞋帽"],
    "emerging": [
        "半导体及集成电路",
        "新能源",
        "新材料",
        "生物医药及高端医疗器械",
        "软件与信息服务业",
    ],
    "future": ["下一代移动通信（6G）", "前沿新材料", "具身智能", "未来生命健康"],
}

# Codes are stored by other services and in the database: renaming one breaks them.
STABLE_CODES = {
    "ELECTRONIC_INFO": "新一代电子信息",
    "HIGH_END_EQUIPMENT": "高端装备制造",
    "FOOD_BEVERAGE": "食品饮料",
    "TEXTILE_APPAREL": "纺织服装鞋帽",
    "SEMICONDUCTOR_IC": "半导体及集成电路",
    "NEW_ENERGY": "新能源",
    "NEW_MATERIALS": "新材料",
    "BIOMED_DEVICES": "生物医药及高端医疗器械",
    "SOFTWARE_IT": "软件与信息服务业",
    "NEXT_GEN_MOBILE_6G": "下一代移动通信（6G）",
    "FRONTIER_MATERIALS": "前沿新材料",
    "EMBODIED_AI": "具身智能",
    "FUTURE_LIFE_HEALTH": "未来生命健康",
}

# The probe set FUZZY_THRESHOLD was chosen on: typos as pinyin input and fast typing make them
# (homophones, dropped or swapped letters), and labels that name no chain.
TYPOS = {
    "新能原": "新能源",
    "新才料": "新材料",
    "高端装被制造": "高端装备制造",
    "半导体及集成电录": "半导体及集成电路",
    "生物医药及高端医疗器戒": "生物医药及高端医疗器械",
    "软件与信息服物业": "软件与信息服务业",
    "纺织服装鞋貌": "纺织服装鞋帽",
    "具身只能": "具身智能",
    "未来生命建康": "未来生命健康",
    "下一代移动通心": "下一代移动通信（6G）",
    "新一代电子信系": "新一代电子信息",
    "食品引料": "食品饮料",
    "前沿新才料": "前沿新材料",
    "New Enegry": "新能源",
    "Biomedcine": "生物医药及高端医疗器械",
    "Semiconducter": "半导体及集成电路",
    "Textils": "纺织服装鞋帽",
    "Embodied Inteligence": "具身智能",
    "Frontier Materails": "前沿新材料",
    "Electronic Infomation": "新一代电子信息",
    "Sofware and IT Services": "软件与信息服务业",
    "High-end Equipment Manufacture": "高端装备制造",
    "Food and Beverge": "食品饮料",
    "Future Life and Heath": "未来生命健康",
    "Advanced Meterials": "新材料",
    "New Energy Vehicels": "新能源",
}
NOT_CHAINS = [
    "低空经济", "汽车电子", "跨境电商", "智能家居", "食品安全", "纺织机械", "数字经济", "人工智能",
    "医疗美容", "生物制造", "智能穿戴", "海洋经济", "现代农业", "文化创意", "物流", "房地产",
    "金融服务", "检验检测", "工业设计", "电子商务", "AI", "5G", "ICT", "EV", "Automotive Electronics",
    "Smart Home", "Cross-border E-commerce", "Logistics", "Agriculture", "Medical Aesthetics",
    "Low-altitude Economy", "Digital Economy", "Fintech", "Cosmetics", "化妆品", "美妆", "家具", "玩具",
    "包装印刷", "新零售", "节能环保", "光伏", "固态电池", "机器人", "合成生物", "电子烟", "智慧城市",
    "新基建", "仪器仪表", "精细化工", "塑料制品", "五金", "家电", "Energy Storage", "Robotics",
    "Artificial Intelligence", "Medical Services", "Healthcare", "Education", "Tourism",
    "新能源与新材料", "生物医药与新材料", "Food Safety", "信息安全", "医疗服务", "养老服务",
    "智能网联汽车", "新型显示",
]  # fmt: skip


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    resource = importlib.resources.files("services.shared").joinpath("industry_chains.json")
    document: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return document


def fresh(**overrides: Any) -> Taxonomy:
    """A taxonomy with empty caches, so patched module constants take effect."""
    return Taxonomy(load_taxonomy().chains, **overrides)


def resolved_name(tax: Taxonomy, label: str) -> str | None:
    chain = tax.resolve(label).chain
    return None if chain is None else chain.name


# -- the data -----------------------------------------------------------------------------------


def test_the_thirteen_seed_chains_are_present_in_their_categories(tax: Taxonomy) -> None:
    by_category: dict[str, list[str]] = {}
    for chain in tax.chains:
        by_category.setdefault(chain.category, []).append(chain.name)
    assert by_category == SEED_CHAINS


def test_every_chain_keeps_its_stable_code(tax: Taxonomy) -> None:
    assert {c.code: c.name for c in tax.chains} == STABLE_CODES


def test_every_chain_has_unique_code_and_english_name(tax: Taxonomy) -> None:
    assert len({c.code for c in tax.chains}) == 13
    assert len({c.name_en.casefold() for c in tax.chains}) == 13


def test_every_chain_lists_real_subfields(tax: Taxonomy) -> None:
    for chain in tax.chains:
        assert 10 <= len(chain.subfields) <= 40, chain.code
        assert len(set(chain.subfields)) == len(chain.subfields), chain.code


def test_related_weights_are_symmetric(raw: dict[str, Any]) -> None:
    related = {c["code"]: c["related"] for c in raw["chains"]}
    for code, weights in related.items():
        for other, weight in weights.items():
            assert other != code
            assert 0.0 < weight < 1.0
            assert related[other].get(code) == weight, f"{code} <-> {other}"


def test_relatedness_reads_the_weights_both_ways(tax: Taxonomy) -> None:
    assert tax.relatedness("新材料", "前沿新材料") == 0.7
    assert tax.relatedness("前沿新材料", "新材料") == 0.7
    assert tax.relatedness("半导体及集成电路", "新一代电子信息") == 0.6
    assert tax.relatedness("生物医药及高端医疗器械", "未来生命健康") == 0.6
    assert tax.relatedness("具身智能", "高端装备制造") > 0.0
    assert tax.relatedness("下一代移动通信（6G）", "新一代电子信息") > 0.0
    assert tax.relatedness("软件与信息服务业", "新一代电子信息") > 0.0


def test_relatedness_is_one_for_same_chain_and_zero_for_unrelated_or_unknown(
    tax: Taxonomy,
) -> None:
    assert tax.relatedness("新能源", "新能源") == 1.0
    assert tax.relatedness("NEW_ENERGY", "新能源") == 1.0
    assert tax.relatedness("纺织服装鞋帽", "下一代移动通信（6G）") == 0.0
    assert tax.relatedness("新能源", "低空经济") == 0.0


def test_taxonomy_refuses_an_alias_naming_two_chains(tax: Taxonomy) -> None:
    energy = tax.get("新能源")
    materials = tax.get("新材料")
    assert energy is not None and materials is not None
    clash = dataclasses.replace(materials, aliases=(*materials.aliases, "New Energy"))
    chains = [clash if c is materials else c for c in tax.chains]
    with pytest.raises(TaxonomyError, match="names both"):
        Taxonomy(chains)


def test_taxonomy_refuses_asymmetric_related_weights(tax: Taxonomy) -> None:
    energy = tax.get("新能源")
    assert energy is not None
    lopsided = dataclasses.replace(
        energy, related=MappingProxyType({**energy.related, "NEW_MATERIALS": 0.9})
    )
    chains = [lopsided if c is energy else c for c in tax.chains]
    with pytest.raises(TaxonomyError, match="symmetric"):
        Taxonomy(chains)


def test_taxonomy_refuses_a_subfield_that_is_another_chains_alias(tax: Taxonomy) -> None:
    food = tax.get("食品饮料")
    assert food is not None
    bad = dataclasses.replace(food, subfields=(*food.subfields, "芯片"))
    with pytest.raises(TaxonomyError, match="sub-field"):
        Taxonomy([bad if c is food else c for c in tax.chains])


def test_parse_chains_builds_read_only_related_maps(raw: dict[str, Any]) -> None:
    chains = parse_chains(raw)
    assert isinstance(chains[0], Chain)
    with pytest.raises(TypeError):
        chains[0].related["X"] = 0.5  # type: ignore[index]


def test_load_taxonomy_is_built_once(tax: Taxonomy) -> None:
    assert load_taxonomy() is tax


# -- exact and alias resolution -----------------------------------------------------------------


def test_every_name_alias_code_and_traditional_form_resolves_to_its_chain(tax: Taxonomy) -> None:
    for chain in tax.chains:
        for label in (chain.name, chain.name_en, chain.code, *chain.aliases, *chain.traditional):
            resolution = tax.resolve(label)
            assert resolution.chain is chain, label
            assert resolution.method in ("exact", "alias")
            assert resolution.score == 1.0


def test_canonical_name_resolves_exactly(tax: Taxonomy) -> None:
    resolution = tax.resolve("半导体及集成电路")
    assert resolution.method == "exact"
    assert resolution.suggestions == ()


def test_ascii_parentheses_and_spacing_match_the_full_width_canonical_name(tax: Taxonomy) -> None:
    for label in ("下一代移动通信(6G)", " 下一代移动通信 （6g） ", "下一代移动通信（６Ｇ）"):
        resolution = tax.resolve(label)
        assert resolution.method == "exact", label
        assert resolved_name(tax, label) == "下一代移动通信（6G）"


def test_traditional_characters_resolve_like_simplified(tax: Taxonomy) -> None:
    assert tax.resolve("半導體及集成電路").method == "exact"
    assert resolved_name(tax, "生物醫藥") == "生物医药及高端医疗器械"
    assert resolved_name(tax, "紡織服裝鞋帽") == "纺织服装鞋帽"


def test_taiwan_wording_resolves_through_phrase_conversion(tax: Taxonomy) -> None:
    # 軟體/資訊 are Taiwan words, not just traditional characters, and the data lists neither
    # spelling: character conversion alone would leave them a fuzzy near miss at best.
    for label in ("軟體與資訊服務", "軟體資訊服務"):
        resolution = tax.resolve(label)
        assert resolution.method == "alias", label
        assert resolved_name(tax, label) == "软件与信息服务业"


def test_english_alias_resolves_to_canonical_name(tax: Taxonomy) -> None:
    assert resolved_name(tax, "New Energy") == "新能源"
    assert resolved_name(tax, "  biomedicine ") == "生物医药及高端医疗器械"
    assert resolved_name(tax, "Software & IT Services") == "软件与信息服务业"
    assert resolved_name(tax, "Embodied AI") == "具身智能"
    assert tax.resolve("New Energy").method == "alias"


def test_short_abbreviation_resolves_by_alias(tax: Taxonomy) -> None:
    assert resolved_name(tax, "IC") == "半导体及集成电路"
    assert resolved_name(tax, "ＩＣ") == "半导体及集成电路"  # full-width letters
    assert resolved_name(tax, "6G") == "下一代移动通信（6G）"


def test_conjunction_variants_resolve_to_the_same_chain(tax: Taxonomy) -> None:
    for label in ("半导体与集成电路", "半导体和集成电路", "半导体集成电路"):
        assert resolved_name(tax, label) == "半导体及集成电路", label
    assert resolved_name(tax, "生物医药和高端医疗器械") == "生物医药及高端医疗器械"
    assert resolved_name(tax, "Food & Beverage") == "食品饮料"


def test_generic_industry_suffix_is_ignored(tax: Taxonomy) -> None:
    assert resolved_name(tax, "新能源产业") == "新能源"
    assert resolved_name(tax, "集成电路行业") == "半导体及集成电路"
    assert resolved_name(tax, "New Energy Industry") == "新能源"


def test_label_whose_parts_agree_resolves(tax: Taxonomy) -> None:
    assert resolved_name(tax, "新能源（New Energy）") == "新能源"
    assert resolved_name(tax, "食品、饮料") == "食品饮料"
    # A part that is one of the chain's own sub-fields does not spoil the agreement.
    assert resolved_name(tax, "新能源/储能") == "新能源"


def test_label_whose_parts_disagree_stays_unresolved_with_both_suggested(tax: Taxonomy) -> None:
    resolution = tax.resolve("新能源、新材料")
    assert resolution.chain is None
    assert resolution.suggestions[:2] == ("新能源", "新材料")
    # 光伏 belongs to 新能源 only, so 光伏/半导体 is not a semiconductor label.
    assert tax.resolve("光伏/半导体").chain is None


def test_get_accepts_canonical_name_or_code_but_not_alias(tax: Taxonomy) -> None:
    assert tax.get("新能源") is tax.get("NEW_ENERGY") is not None
    assert tax.get("下一代移动通信(6G)") is tax.get("下一代移动通信（6G）") is not None
    assert tax.get("New Energy") is None
    assert tax.get("低空经济") is None


# -- fuzzy resolution and its threshold ---------------------------------------------------------


@pytest.mark.parametrize(("label", "expected"), sorted(TYPOS.items()))
def test_typo_above_threshold_resolves(tax: Taxonomy, label: str, expected: str) -> None:
    resolution = tax.resolve(label)
    assert resolution.method == "fuzzy"
    assert resolved_name(tax, label) == expected
    assert FUZZY_THRESHOLD <= resolution.score < 1.0


@pytest.mark.parametrize("label", NOT_CHAINS)
def test_label_naming_no_chain_does_not_resolve(tax: Taxonomy, label: str) -> None:
    resolution = tax.resolve(label)
    assert resolution.chain is None
    assert resolution.method == "none"


def test_threshold_above_the_weakest_typo_would_reject_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 新能原 (one character of three) scores 0.83: the threshold must stay below that.
    assert fresh().resolve("新能原").method == "fuzzy"
    monkeypatch.setattr(taxonomy, "FUZZY_THRESHOLD", 0.85)
    assert fresh().resolve("新能原").method == "none"


def test_threshold_below_the_closest_non_chain_would_admit_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 生物医药与新材料 names two chains and scores 0.79 against 生物医药: just below the line.
    closest = fresh().resolve("生物医药与新材料")
    assert closest.method == "none"
    assert FUZZY_THRESHOLD - 0.05 < closest.score < FUZZY_THRESHOLD
    monkeypatch.setattr(taxonomy, "FUZZY_THRESHOLD", 0.78)
    assert fresh().resolve("生物医药与新材料").method == "fuzzy"


def test_short_abbreviation_never_fuzzy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Even with a threshold low enough for "5G" ~ "6G" (0.5), short labels stay exact-only,
    # while a longer label does go fuzzy under the same threshold.
    monkeypatch.setattr(taxonomy, "FUZZY_THRESHOLD", 0.5)
    lax = fresh()
    for label in ("5G", "AI", "EV", "ICT", "芯皮"):
        assert lax.resolve(label).method == "none", label
    assert lax.resolve("IC").method == "alias"
    assert lax.resolve("新能量").method == "fuzzy"


def test_english_word_swap_is_not_a_typo(tax: Taxonomy) -> None:
    # "Medical Services" is 0.87 similar to the alias "Medical Devices" but swaps a word.
    resolution = tax.resolve("Medical Services")
    assert resolution.chain is None
    assert resolution.score < FUZZY_THRESHOLD


def test_label_equally_near_two_chains_is_not_guessed(tax: Taxonomy) -> None:
    # 新一代电子通信 is two edits from 新一代电子信息 and from 新一代移动通信 alike.
    resolution = tax.resolve("新一代电子通信")
    assert resolution.chain is None
    assert resolution.score >= FUZZY_THRESHOLD
    assert set(resolution.suggestions[:2]) == {"新一代电子信息", "下一代移动通信（6G）"}


# -- sub-fields and suggestions -----------------------------------------------------------------


def test_subfield_label_does_not_resolve_but_suggests_its_parent_first(tax: Taxonomy) -> None:
    resolution = tax.resolve("固态电池")
    assert resolution.method == "none"
    assert resolution.suggestions[0] == "新能源"


def test_every_subfield_suggests_one_of_its_parents_first(tax: Taxonomy) -> None:
    for chain in tax.chains:
        for term in chain.subfields:
            resolution = tax.resolve(term)
            parents = tax.chains_for_subfield(term)
            assert resolution.chain is None, term
            assert chain.name in parents, term
            assert resolution.suggestions[0] in parents, term


def test_subfield_shared_by_two_chains_suggests_both(tax: Taxonomy) -> None:
    assert set(tax.chains_for_subfield("合成生物")) == {"食品饮料", "未来生命健康"}
    assert set(tax.resolve("合成生物").suggestions[:2]) == {"食品饮料", "未来生命健康"}


def test_chains_for_subfield_normalises_the_term(tax: Taxonomy) -> None:
    assert tax.chains_for_subfield("固態電池") == ["新能源"]
    assert tax.chains_for_subfield(" tgv ") == ["半导体及集成电路"]
    assert tax.chains_for_subfield("新能源") == []


def test_unknown_label_gets_suggestions(tax: Taxonomy) -> None:
    assert tax.resolve("低空经济").suggestions[0] == "高端装备制造"
    assert tax.resolve("汽车电子").suggestions[0] == "新一代电子信息"
    assert tax.resolve("跨境电商").suggestions[0] == "软件与信息服务业"
    assert tax.resolve("Energy Storage").suggestions[0] == "新能源"
    assert tax.resolve("固态电池中试线").suggestions[0] == "新能源"


def test_unrelated_label_gets_no_suggestions(tax: Taxonomy) -> None:
    for label in ("房地产", "Tourism", "文化创意"):
        assert tax.resolve(label).suggestions == (), label


def test_resolved_label_has_no_suggestions(tax: Taxonomy) -> None:
    assert tax.resolve("新能原").suggestions == ()


# -- resolve_all and caching ----------------------------------------------------------------------


def test_resolve_all_deduplicates_in_input_order_and_reports_unresolved(tax: Taxonomy) -> None:
    result = tax.resolve_all(["IC", "新能源", "低空经济", "半导体", "  ", "", "New Energy"])
    assert result.chains == ["半导体及集成电路", "新能源"]
    assert [r.label for r in result.unresolved] == ["低空经济"]


def test_resolution_keeps_the_original_label(tax: Taxonomy) -> None:
    assert tax.resolve("  ＩＣ ").label == "  ＩＣ "


def test_repeated_labels_are_answered_from_the_cache() -> None:
    # Speed itself is measured in bench/, not asserted here; this checks the cache is used.
    cold = fresh()
    first = cold.resolve("New Enegry")
    assert cold.resolve("New Enegry") is first


# -- sub-field aliases --------------------------------------------------------------------------


def _with_aliases(tax: Taxonomy, code: str, aliases: dict[str, tuple[str, ...]]) -> list[Chain]:
    chain = next(c for c in tax.chains if c.code == code)
    changed = dataclasses.replace(
        chain, subfield_aliases=MappingProxyType({**chain.subfield_aliases, **aliases})
    )
    return [changed if c is chain else c for c in tax.chains]


def test_every_chain_gives_aliases_for_most_of_its_subfields(tax: Taxonomy) -> None:
    for chain in tax.chains:
        assert len(chain.subfield_aliases) >= len(chain.subfields) // 2, chain.code
        for term, aliases in chain.subfield_aliases.items():
            assert term in chain.subfields, (chain.code, term)
            assert aliases and len(set(aliases)) == len(aliases), (chain.code, term)


def test_synonyms_map_each_alias_to_its_subfield(tax: Taxonomy) -> None:
    synonyms = tax.synonyms()
    assert synonyms["抗蚀剂"] == "光刻胶"
    assert synonyms["Photoresist"] == "光刻胶"
    assert synonyms["线路板"] == "印制电路板"
    assert synonyms["锂电池"] == "锂离子电池"
    assert synonyms["无纺布"] == "非织造布"
    # English names of sub-fields an English demand may use for a Chinese catalog's words.
    assert synonyms["recycled fiber"] == "再生纤维"
    assert synonyms["semi-solid-state battery"] == "半固态电池"
    assert synonyms["5G-Advanced"] == "5G-A"
    assert len(synonyms) == sum(len(a) for c in tax.chains for a in c.subfield_aliases.values())


def test_every_alias_stands_for_the_chains_of_its_subfield_and_resolves_none(
    tax: Taxonomy,
) -> None:
    for alias, term in tax.synonyms().items():
        parents = tax.chains_for_subfield(term)
        # An alias that is a sub-field itself (AI, of 具身智能 too) keeps its own chains.
        own = {c.name for c in tax.chains if alias in c.subfields}
        assert parents, term
        assert set(tax.chains_for_subfield(alias)) == set(parents) | own, alias
        resolution = tax.resolve(alias)
        assert resolution.chain is None, alias
        assert resolution.suggestions[0] in parents, alias


def test_traditional_spelling_of_an_alias_finds_its_chain(tax: Taxonomy) -> None:
    assert tax.chains_for_subfield("抗蝕劑") == ["半导体及集成电路"]
    assert tax.chains_for_subfield("無紡布") == ["纺织服装鞋帽"]


def test_alias_of_a_subfield_listed_by_two_chains_names_both(tax: Taxonomy) -> None:
    assert set(tax.chains_for_subfield("Synthetic Biology")) == {"食品饮料", "未来生命健康"}


def test_taxonomy_refuses_an_alias_naming_two_subfields(tax: Taxonomy) -> None:
    chains = _with_aliases(tax, "NEW_ENERGY", {"光伏": ("抗蚀剂",)})
    with pytest.raises(TaxonomyError, match="names both"):
        Taxonomy(chains)


def test_taxonomy_refuses_aliases_of_a_term_that_is_not_a_subfield(tax: Taxonomy) -> None:
    chains = _with_aliases(tax, "NEW_ENERGY", {"光刻胶": ("光阻胶",)})
    with pytest.raises(TaxonomyError, match="not a sub-field"):
        Taxonomy(chains)


def test_taxonomy_refuses_an_alias_that_is_a_chain_name(tax: Taxonomy) -> None:
    chains = _with_aliases(tax, "FOOD_BEVERAGE", {"冷链": ("芯片",)})
    with pytest.raises(TaxonomyError, match="sub-field"):
        Taxonomy(chains)


def test_taxonomy_refuses_an_alias_with_aliases_of_its_own(tax: Taxonomy) -> None:
    # 光伏 has aliases; as an alias of 风电 it would send text on to a third term.
    chains = _with_aliases(tax, "NEW_ENERGY", {"风电": ("光伏",)})
    with pytest.raises(TaxonomyError, match="aliases of its own"):
        Taxonomy(chains)


def test_json_without_subfield_aliases_still_loads(raw: dict[str, Any]) -> None:
    stripped = {
        **raw,
        "chains": [{k: v for k, v in c.items() if k != "subfield_aliases"} for c in raw["chains"]],
    }
    tax = Taxonomy(parse_chains(stripped))
    assert tax.synonyms() == {}
    assert tax.chains_for_subfield("抗蚀剂") == []


@pytest.mark.parametrize(
    ("label", "names"),
    [
        ("电子信息", True),  # an alias
        ("新一代電子信息", True),  # traditional form of the name
        ("Next-Generation Electronic Information", True),
        ("电子新息", False),  # a typo resolve() would correct fuzzily: not an exact name
        ("光刻胶", False),  # a sub-field, not a chain
        ("", False),
    ],
)
def test_names_chain_is_exact_or_alias_only(tax: Taxonomy, label: str, names: bool) -> None:
    assert tax.names_chain(label) is names
