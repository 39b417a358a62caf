"""Text analysis: normalisation, Chinese words and bigrams, English stems and abbreviations."""

from __future__ import annotations

import jieba
import pytest

from services.matching.text import BIGRAM_PREFIX, Analyzer, is_bigram


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


def test_stemming_can_be_switched_off() -> None:
    assert "prototypes" in Analyzer(stem=False).words("prototypes")


def test_english_glossary_bridges_to_chinese(analyzer: Analyzer) -> None:
    assert "天线" in analyzer.words("antenna OTA measurement")
    assert "阳极" in analyzer.words("anodized enclosures") or "阳极氧化" in analyzer.words(
        "anodized enclosures"
    )


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


def test_global_jieba_dictionary_is_left_alone() -> None:
    jieba.dt.initialize()
    Analyzer(["一个从未有过的领域词"])
    assert "一个从未有过的领域词" not in jieba.dt.FREQ


def test_worker_processes_analyse_clauses_exactly_as_in_process(analyzer: Analyzer) -> None:
    clauses = [f"第{i}批固态电池电芯SMT贴片与MEMS封装测试 prototypes {i * 1000}" for i in range(12)]
    expected = [analyzer.analyze_clause(c) for c in clauses]
    assert list(analyzer.analyze_clauses(clauses, workers=1, chunk=2)) == expected
    assert list(analyzer.analyze_clauses(clauses, workers=0, chunk=2)) == expected
