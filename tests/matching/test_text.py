"""Text analysis: normalisation, Chinese words and bigrams, English stems and abbreviations."""

from __future__ import annotations

import jieba
import pytest

from services.matching.text import BIGRAM_PREFIX, Analyzer, is_bigram
from services.shared.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer(["固态电池", "SMT贴片", "玻璃通孔", "MEMS"])


def test_traditional_and_simplified_give_the_same_terms(analyzer: Analyzer) -> None:
    assert analyzer.analyze("半導體封裝測試與固態電池") == analyzer.analyze(
        "半导体封装测试与固态电池"
    )


def test_full_width_letters_and_case_are_folded(analyzer: Analyzer) -> None:
    assert analyzer.analyze("ＳＭＴ贴片") == analyzer.analyze("smt贴片")


def test_domain_term_stays_one_word(analyzer: Analyzer) -> None:
    assert "固态电池" in analyzer.words("硫化物固态电池中试")


def test_unknown_compound_still_matches_through_bigrams(analyzer: Analyzer) -> None:
    terms = analyzer.analyze("腱绳驱动")
    assert BIGRAM_PREFIX + "腱绳" in terms
    assert BIGRAM_PREFIX + "驱动" in terms


def test_bigrams_can_be_switched_off() -> None:
    assert not any(is_bigram(t) for t in Analyzer(bigrams=False).analyze("固态电池中试"))


@pytest.mark.parametrize("word", ["TGV", "CGT", "SMT", "SiC", "MEMS", "AGV", "PCBA", "GMP"])
def test_abbreviations_are_kept_whole(analyzer: Analyzer, word: str) -> None:
    assert word.lower() in analyzer.words(f"{word} 中试平台")


def test_abbreviation_is_not_stemmed_even_in_lower_case(analyzer: Analyzer) -> None:
    assert "mems" in analyzer.words("mems sensors")


def test_english_words_are_lower_cased_and_stemmed(analyzer: Analyzer) -> None:
    assert analyzer.words("Prototypes") == analyzer.words("prototype")
    assert "prototyp" in analyzer.words("Prototyping services")


def test_a_clause_in_capitals_reads_as_in_lower_case(analyzer: Analyzer) -> None:
    """A title typed in capitals: its long words are plain words, stemmed as in lower case,
    while its short ones and the known abbreviations stay whole."""
    shouted = analyzer.words("SMART RING RELIABILITY TESTS, CNAS LAB, PCBA AND MEMS PROTOTYPES")
    quiet = analyzer.words("Smart ring reliability tests, CNAS lab, PCBA and MEMS prototypes")
    assert shouted == quiet
    assert {"reliabl", "test", "prototyp", "cnas", "pcba", "mems"} <= set(shouted)
    # Two capitals in a clause with lower case still mark an abbreviation of any length.
    assert "lidars" in analyzer.words("LIDARS for robots")
    assert "lidar" in analyzer.words("Lidars for robots")


def test_stemming_can_be_switched_off() -> None:
    assert "prototypes" in Analyzer(stem=False).words("prototypes")


def test_english_glossary_bridges_to_chinese(analyzer: Analyzer) -> None:
    assert "天线" in analyzer.words("antenna OTA measurement")
    assert "阳极" in analyzer.words("anodized enclosures") or "阳极氧化" in analyzer.words(
        "anodized enclosures"
    )


def test_english_glossary_covers_common_test_material_and_food_words(analyzer: Analyzer) -> None:
    """Everyday words of an English demand meet a Chinese catalog, matched on stems."""
    words = analyzer.words("Vibration and humidity ageing tests of rubber seals")
    assert {"振动", "湿度", "老化", "橡胶"} <= set(words)
    assert "酸奶" in analyzer.words("low sugar yogurt flavours")
    assert "风味" in analyzer.words("low sugar yogurt flavours")
    # Robotics and plastics: met as words, or as the bigram of a word jieba does not know.
    terms = set(analyzer.analyze("grasp tests, fingertip force control, obstacle avoidance"))
    assert {"抓取", "指尖", BIGRAM_PREFIX + "力控", BIGRAM_PREFIX + "避障"} <= terms
    terms = set(analyzer.analyze("halogen-free PC/ABS, twin-screw extrusion, notched impact"))
    assert {BIGRAM_PREFIX + "无卤", "双螺杆", "缺口", "冲击"} <= terms
    # The British spelling has a stem of its own (homogenis), and its own entry.
    assert {"均质", BIGRAM_PREFIX + "均质"} & set(analyzer.analyze("homogenisation"))


def test_no_bigram_spans_a_particle(analyzer: Analyzer) -> None:
    terms = analyzer.analyze("装手后的整手抓取和电池")
    bigrams = {t for t in terms if t.startswith(BIGRAM_PREFIX)}
    assert {BIGRAM_PREFIX + "整手", BIGRAM_PREFIX + "抓取", BIGRAM_PREFIX + "电池"} <= bigrams
    assert not any(ch in t for t in bigrams for ch in "的和")


def test_standard_numbers_stay_and_quantities_go(analyzer: Analyzer) -> None:
    words = analyzer.words("ISO 9001, 500 pcs")
    assert "9001" in words
    assert "500" not in words


def test_particles_and_function_words_are_dropped(analyzer: Analyzer) -> None:
    words = analyzer.words("我们需要固态电池的中试")
    assert "的" not in words
    assert "我们" not in words
    assert "需要" not in words


def test_dotted_codes_stay_whole(analyzer: Analyzer) -> None:
    assert "un38.3" in analyzer.words("UN38.3 运输测试")


def test_analysis_is_deterministic_across_instances() -> None:
    text = "MEMS传感器与SiC功率器件的小批量试产, prototypes and anodizing"
    assert Analyzer(["MEMS"]).analyze(text) == Analyzer(["MEMS"]).analyze(text)


def test_a_cleared_cache_analyses_again_with_the_same_result(analyzer: Analyzer) -> None:
    first = analyzer.analyze_clause("固态电池中试线")
    assert analyzer.analyze_clause("固态电池中试线") is first  # served from the cache
    analyzer.clear_cache()
    again = analyzer.analyze_clause("固态电池中试线")
    assert again == first
    assert again is not first  # analysed anew


def test_global_jieba_dictionary_is_left_alone() -> None:
    jieba.dt.initialize()
    Analyzer(["一个从未有过的领域词"])
    assert "一个从未有过的领域词" not in jieba.dt.FREQ


def test_worker_processes_analyse_clauses_exactly_as_in_process(analyzer: Analyzer) -> None:
    clauses = [f"第{i}批固态电池电芯SMT贴片与MEMS封装测试 prototypes {i * 1000}" for i in range(12)]
    expected = [analyzer.analyze_clause(c) for c in clauses]
    assert list(analyzer.analyze_clauses(clauses, workers=1, chunk=2)) == expected
    assert list(analyzer.analyze_clauses(clauses, workers=0, chunk=2)) == expected


def test_workers_started_ahead_analyse_clauses_exactly_as_in_process(analyzer: Analyzer) -> None:
    clauses = [f"第{i}批钠离子电池电芯试制与ToF模组标定 anodizing {i * 1000}" for i in range(12)]
    expected = [analyzer.analyze_clause(c) for c in clauses]
    with analyzer.start_workers(1) as pool:
        assert pool.running
        assert list(analyzer.analyze_clauses(clauses, chunk=2, pool=pool)) == expected
        # The pool serves more than one list while it runs.
        assert list(analyzer.analyze_clauses(clauses[::-1], chunk=3, pool=pool)) == expected[::-1]
    assert not pool.running  # shut down on leaving the block


def test_workers_that_cannot_start_leave_the_work_in_process(analyzer: Analyzer) -> None:
    """A worker whose analyzer fails to build breaks the pool: nothing is lost, the caller
    does the work."""
    from services.matching.text import WorkerPool

    clauses = [f"第{i}批固态电池与MEMS封装 prototypes" for i in range(10)]
    with WorkerPool({}, 1) as broken:  # no spec: each worker's start-up fails
        assert list(analyzer.analyze_clauses(clauses, chunk=2, pool=broken)) == [
            analyzer.analyze_clause(c) for c in clauses
        ]


def test_a_pool_without_workers_leaves_the_work_in_process(analyzer: Analyzer) -> None:
    clauses = [f"第{i}批固态电池与MEMS封装" for i in range(10)]
    pool = analyzer.start_workers(0)
    assert not pool.running
    assert list(analyzer.analyze_clauses(clauses, chunk=2, pool=pool)) == [
        analyzer.analyze_clause(c) for c in clauses
    ]


# -- synonyms (sub-field aliases) ---------------------------------------------------------------

SYNONYMS = {
    "抗蚀剂": "光刻胶",
    "光阻": "光刻胶",
    "Photoresist": "光刻胶",
    "线路板": "印制电路板",
    "锂电": "锂离子电池",
    "IC设计": "芯片设计",
    "Lyophilization": "冻干",
    "Cobots": "协作机器人",
    "MiniLED": "Mini LED",
}


@pytest.fixture(scope="module")
def synonym_analyzer() -> Analyzer:
    return Analyzer(["锂电设备"], synonyms=SYNONYMS)


@pytest.fixture(scope="module")
def taxonomy_analyzer() -> Analyzer:
    tax = load_taxonomy()
    terms = [t for c in tax.chains for t in (c.name, *c.aliases, *c.subfields)]
    return Analyzer(terms, synonyms=tax.synonyms())


def test_chinese_alias_segments_whole(synonym_analyzer: Analyzer) -> None:
    assert "抗蚀剂" not in Analyzer().words("抗蚀剂涂布工艺")
    assert "抗蚀剂" in synonym_analyzer.words("抗蚀剂涂布工艺")
    assert "ic设计" in synonym_analyzer.words("IC设计服务")


def test_alias_emits_the_canonical_terms_words(synonym_analyzer: Analyzer) -> None:
    words = synonym_analyzer.words("抗蚀剂涂布工艺")
    assert "光刻胶" in words
    assert "芯片设计" in synonym_analyzer.words("IC设计服务")
    assert {"印制电路板", "电路板"} <= set(synonym_analyzer.words("线路板打样"))


def test_alias_and_canonical_term_meet_on_the_canonical_words(
    synonym_analyzer: Analyzer,
) -> None:
    supplier = set(synonym_analyzer.words("光刻胶涂布与显影"))
    demand = set(synonym_analyzer.words("需要抗蚀剂涂布验证"))
    assert "光刻胶" in supplier & demand


def test_canonical_term_itself_is_not_expanded_again(synonym_analyzer: Analyzer) -> None:
    assert synonym_analyzer.words("光刻胶") == Analyzer(["光刻胶"]).words("光刻胶")
    words = synonym_analyzer.words("线路板 印制电路板")
    assert words.count("印制电路板") == 1


def test_alias_counts_once_per_clause(synonym_analyzer: Analyzer) -> None:
    assert synonym_analyzer.words("抗蚀剂和光阻").count("光刻胶") == 1


def test_traditional_form_of_an_alias_expands(synonym_analyzer: Analyzer) -> None:
    assert "光刻胶" in synonym_analyzer.words("抗蝕劑塗布")
    assert "印制电路板" in synonym_analyzer.words("線路板打樣")


def test_alias_inside_a_longer_word_does_not_expand(synonym_analyzer: Analyzer) -> None:
    # 锂电设备 is equipment, not a battery: its sub-word 锂电 is not a mention of the alias.
    words = synonym_analyzer.words("锂电设备调试")
    assert "锂电设备" in words
    assert "锂离子电池" not in words
    assert "锂离子电池" in synonym_analyzer.words("锂电 pack 测试")


def test_english_alias_expands_to_the_chinese_canonical_term(synonym_analyzer: Analyzer) -> None:
    assert "冻干" in synonym_analyzer.words("lyophilization of probiotics")
    # Matched on stems, like the glossary: the singular meets the alias written as a plural.
    assert "协作机器人" in synonym_analyzer.words("Cobot integration")
    assert {"mini", "led"} <= set(synonym_analyzer.words("MiniLED backlight"))


def test_synonym_bigrams_are_optional() -> None:
    plain = Analyzer(synonyms={"线路板": "印制电路板"})
    with_bigrams = Analyzer(synonyms={"线路板": "印制电路板"}, synonym_bigrams=True)
    assert BIGRAM_PREFIX + "印制" not in plain.analyze("线路板")
    assert BIGRAM_PREFIX + "印制" in with_bigrams.analyze("线路板")


def test_no_taxonomy_alias_expands_into_an_unrelated_chain(
    taxonomy_analyzer: Analyzer,
) -> None:
    tax = load_taxonomy()
    synonyms = tax.synonyms()
    # The same dictionary without expansion: what the alias and its sub-field say by themselves.
    chinese = [t for t in (*synonyms, *synonyms.values()) if any(ch >= "\u4e00" for ch in t)]
    plain = Analyzer(
        [*(t for c in tax.chains for t in (c.name, *c.aliases, *c.subfields)), *chinese]
    )
    for alias, term in synonyms.items():
        added = set(taxonomy_analyzer.analyze(alias)) - set(plain.analyze(alias))
        # What an alias adds is its own sub-field's words, or those of another alias written
        # inside it (AI药物研发 holds AI): nothing the text does not name.
        named = [t for a, t in synonyms.items() if a.lower() in alias.lower()]
        assert added <= set().union(*(plain.analyze(t) for t in named)), alias
        assert set(tax.chains_for_subfield(term)) <= set(tax.chains_for_subfield(alias)), alias


def test_every_taxonomy_alias_reaches_its_subfield(taxonomy_analyzer: Analyzer) -> None:
    tax = load_taxonomy()
    synonyms = tax.synonyms()
    # The sub-field's own words (no glossary, no synonyms) are what an alias brings.
    bare = Analyzer([t for c in tax.chains for t in c.subfields], glossary={})
    for alias, term in synonyms.items():
        words = set(taxonomy_analyzer.words(alias))
        assert set(bare.words(term)) <= words, (alias, term)


def test_worker_processes_expand_synonyms_as_in_process(synonym_analyzer: Analyzer) -> None:
    clauses = [f"第{i}批抗蚀剂与线路板 photoresist 锂电设备" for i in range(6)]
    expected = [synonym_analyzer.analyze_clause(c) for c in clauses]
    assert any("光刻胶" in terms for terms in expected)
    assert list(synonym_analyzer.analyze_clauses(clauses, workers=1, chunk=1)) == expected


def test_expansion_adds_only_the_words_the_clause_lacks(synonym_analyzer: Analyzer) -> None:
    words = synonym_analyzer.words("IC设计服务")
    assert words.count("设计") == 1
    assert {"芯片", "芯片设计"} <= set(words)


def test_cached_clauses_share_one_copy_of_each_term() -> None:
    """The clause cache lives as long as the matching process: a term many clauses hold is
    stored once (interned), not once per clause."""
    analyzer = Analyzer()
    first = analyzer.analyze_clause("固态电池安全测试")
    second = analyzer.analyze_clause("电芯循环寿命测试")
    shared = set(first) & set(second)
    assert "测试" in shared
    for term in shared:
        assert first[first.index(term)] is second[second.index(term)]
