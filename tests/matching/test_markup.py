"""HTML markup from rich-text editors is taken out before texts are analysed or quoted."""

from __future__ import annotations

import pytest

from services.matching.disclaimers import split_disclaimers
from services.matching.markup import plain_text
from services.matching.ranking import DemandQuery, MatchIndex, SupplierDoc
from services.matching.text import Analyzer
from services.shared.taxonomy import Taxonomy, load_taxonomy


@pytest.mark.parametrize(
    ("marked", "plain"),
    [
        ("<p>固态电池试制</p><p>安全测试</p>", "\n固态电池试制\n\n安全测试\n"),
        ("需要<strong>固态</strong>电池", "需要固态电池"),  # inline: the word stays one
        ('<span style="font-size:14px;">MEMS</span>封装<br/>测试', "MEMS封装\n测试"),
        ("<LI>盐雾&nbsp;试验 &amp; 85&#8451;</LI>", "\n盐雾\xa0试验 & 85℃\n"),
        ("粒径<10μm，温度>60℃", "粒径<10μm，温度>60℃"),  # no tag: left as written
        ("<Q235>钢板 R&D", "<Q235>钢板 R&D"),  # not an HTML element, not a reference
        ("plain text", "plain text"),
    ],
)
def test_plain_text(marked: str, plain: str) -> None:
    assert plain_text(marked) == plain


def test_the_analyzer_reads_no_markup_words() -> None:
    analyzer = Analyzer()
    marked = '<p><span style="color:red">固态电池</span>&nbsp;<b>prototypes</b></p>'
    assert analyzer.analyze(marked) == analyzer.analyze("固态电池 prototypes")
    assert not {"span", "style", "color", "red", "nbsp", "p", "b"} & set(analyzer.analyze(marked))


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


def test_suppliers_written_in_markup_do_not_match_each_other_on_it(taxonomy: Taxonomy) -> None:
    """A rich-text demand about food meets the rich-text food lab only: the battery lab,
    written with the same markup, shares no word with it."""

    def rich(text: str) -> str:
        return f'<p><span style="font-size:14px;font-family:宋体">{text}</span></p>'

    battery = SupplierDoc(
        id="p-battery", kind="platform", name="电池中试平台", description=rich("固态电池试制")
    )
    food = SupplierDoc(
        id="p-food", kind="platform", name="食品中试平台", description=rich("益生菌发酵放大")
    )
    plain = SupplierDoc(id="p-metal", kind="platform", name="材料测试平台", description="拉伸测试")
    index = MatchIndex.build([battery, food, plain], taxonomy, workers=0)
    results = index.rank(DemandQuery(title="发酵放大", description=rich("益生菌发酵放大验证")))
    assert [m.supplier_id for m in results] == ["p-food"]


def test_a_disclaimer_is_quoted_without_its_markup() -> None:
    affirmed, disclaimed = split_disclaimers(
        "<p>提供电芯试制。</p><p><b>不能</b>加工碳化硅晶圆。</p>"
    )
    assert disclaimed == "不能加工碳化硅晶圆"
    assert "<" not in affirmed and "电芯试制" in affirmed
