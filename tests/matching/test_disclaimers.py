"""What a supplier says it does not do: the split of its text into affirmed and disclaimed."""

from __future__ import annotations

import pytest

from services.matching.disclaimers import DISCLAIMER_CUES, split_disclaimers


def test_a_text_without_any_cue_is_returned_whole() -> None:
    text = "提供碳化硅MOSFET工程批流片与双脉冲测试，支持6英寸晶圆。"
    assert split_disclaimers(text) == (text, "")


def test_sentence_parts_with_a_cue_are_disclaimed_and_the_rest_affirmed() -> None:
    affirmed, disclaimed = split_disclaimers(
        "产线为硅工艺设计，没有高温离子注入设备，不能加工碳化硅晶圆。可承接工程批流片"
    )
    assert affirmed == "产线为硅工艺设计。可承接工程批流片"
    assert disclaimed == "没有高温离子注入设备。不能加工碳化硅晶圆"


def test_an_enumeration_stays_inside_its_disclaiming_sentence() -> None:
    _, disclaimed = split_disclaimers("企业只做外延片，不具备离子注入、栅氧和金属化等前道工艺")
    assert disclaimed == "不具备离子注入、栅氧和金属化等前道工艺"


@pytest.mark.parametrize("cue", DISCLAIMER_CUES)
def test_every_chinese_cue_disclaims(cue: str) -> None:
    affirmed, disclaimed = split_disclaimers(f"提供注塑打样；{cue}模具开发")
    assert (affirmed, disclaimed) == ("提供注塑打样", f"{cue}模具开发")


@pytest.mark.parametrize(
    "text",
    [
        "提供不锈钢冲压与无铅焊接",  # 不 and 无 inside ordinary words
        "面向未来通信的天线测试",
        "提供不含卤素的阻燃配方开发",  # halogen-free is a claim
        "帮助客户解决传统工艺无法量产的难题",  # solving an inability is a claim
        "样品没有最低起订量限制",  # no minimum is a claim
        "Not only SMT but also BGA rework",
        "Normal and notebook housings, CNC machining",  # "no" inside words
    ],
)
def test_positive_claims_are_not_disclaimers(text: str) -> None:
    assert split_disclaimers(text)[1] == ""


def test_english_disclaimers() -> None:
    affirmed, disclaimed = split_disclaimers(
        "We run SMT lines. We do not offer BGA rework, and cannot do X-ray. Neither potting"
        " nor coating"
    )
    assert affirmed == "We run SMT lines"
    assert (
        disclaimed
        == "We do not offer BGA rework。 and cannot do X-ray。Neither potting nor coating"
    )


def test_decimal_points_and_standard_numbers_do_not_split() -> None:
    affirmed, disclaimed = split_disclaimers("按UN38.3测试0.1mm极片，不能做IEC 62619")
    assert affirmed == "按UN38.3测试0.1mm极片"
    assert disclaimed == "不能做IEC 62619"
