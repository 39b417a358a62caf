"""Batch sizes read from descriptions: suppliers' limits, demands' quantities, their mismatch."""

from __future__ import annotations

import math

import pytest

from services.matching.quantities import (
    Batch,
    Span,
    batch_mismatch,
    demand_quantities,
    supplier_batch,
)


def limits(description: str) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    batch = supplier_batch(description)
    return (
        None if batch.count is None else (batch.count.low, batch.count.high),
        None if batch.amount is None else (batch.amount.low, batch.amount.high),
    )


@pytest.mark.parametrize(
    ("description", "count"),
    [
        ("PCBA快板，5片起做，最快24小时交付。", (5, math.inf)),
        ("承接百片起的样品与小批量订单。", (100, math.inf)),
        ("面向品牌客户，三千袋起订。", (3000, math.inf)),
        ("可承接几百只起的工程批和小批量订单。", (200, math.inf)),  # vague: 2 to 9 hundred
        ("单款订单起订量为1万片。", (10000, math.inf)),
        ("最小起订量一万瓶，可提供包材采购。", (10000, math.inf)),
        ("工程批需整片晶圆投产且每款起订5万颗。", (50000, math.inf)),
        ("单批100至2000只，交期两周。", (100, 2000)),
        ("可承接50至5000台的小批量订单。", (50, 5000)),
        ("可承接几十到数千套的小批量订单。", (20, 9000)),
        ("样板5至30片起做。", (5, math.inf)),  # a minimum of 5 to 30: the smallest
        ("We take orders from 50 pcs to 2,000 pcs per batch.", (50, 2000)),
        ("设备只能小批量试产，无法提供千片以上的小批量供货。", (0, 1000)),  # a refusal: a maximum
    ],
)
def test_a_suppliers_count_limits(description: str, count: tuple[float, float]) -> None:
    assert limits(description) == (count, None)


@pytest.mark.parametrize(
    ("description", "amount"),
    [
        ("UHT和无菌灌装生产线，单批最低3吨。", (3e6, math.inf)),
        ("单批次可在200至1000升之间调整。", (200e3, 1000e3)),
        ("批量从1公斤到100公斤。", (1e3, 100e3)),
        ("实验室每批出粉量在百克级。", (100, 1000)),  # an order of magnitude
        ("Batch sizes 20-200 kg.", (20e3, 200e3)),
    ],
)
def test_a_suppliers_amount_limits_in_grams_one_litre_a_kilogram(
    description: str, amount: tuple[float, float]
) -> None:
    assert limits(description) == (None, amount)


@pytest.mark.parametrize(
    "description",
    [
        "日产灯板十万片以上。",  # capacity, not a batch limit
        "最小线宽线距40微米，可承接小批量订单。",  # a size
        "内径最小0.3毫米的导管挤出，小批量订单。",
        "承接精密零件的样件与小批量订单。",  # 零件 is not zero pieces
        "可提供一套完整的小批量试产方案。",  # 一套: an article
        "5G/6G天线的小批量订单，10kWh储能柜批量交付。",  # a network and an energy
        "单色起订500米。",  # a length: not a dimension read here
        "承接手板与小批量零件加工，提供3D打印服务。",
        "",
    ],
)
def test_statements_that_are_not_batch_limits(description: str) -> None:
    assert not supplier_batch(description)


def test_quantities_outside_batch_statements_are_not_limits() -> None:
    # A demo of 200只 in a test report is not what the supplier takes per order.
    assert not supplier_batch("可完成200只电芯的循环寿命测试，出具报告。")


def test_several_statements_of_one_dimension_take_the_loosest_limits() -> None:
    batch = supplier_batch("样板5片起做；量产订单1万片起订。")
    assert batch.count is not None
    assert (batch.count.low, batch.count.high) == (5, math.inf)
    assert "5片起做" in batch.count.text and "1万片起订" in batch.count.text


@pytest.mark.parametrize(
    ("texts", "count", "amount"),
    [
        (("首批500片贴片", "含一颗BGA"), (500, 500), None),  # 一颗 is an article
        (("做一次500升规模的UHT灭菌试验",), None, (500e3, 500e3)),
        (("想在百升级罐上做培养基优化",), None, (100e3, 1000e3)),
        (("批量30–50公斤的粉体试产",), None, (30e3, 50e3)),
        (("We need 20 sets of enclosures plus 5 prototypes.",), (5, 20), None),
        (("300 pairs of test shoes", "3 kg of foam"), (300, 300), (3e3, 3e3)),
        (
            ("评估零下20度放电、3C倍率、1000小时老化与上万次弯折", "0.4mm间距BGA、6英寸晶圆"),
            None,
            None,
        ),
        (("Need 10,000-cycle tests on a 60 GHz module, 5G and 6G bands",), None, None),
    ],
)
def test_a_demands_quantities(
    texts: tuple[str, ...],
    count: tuple[float, float] | None,
    amount: tuple[float, float] | None,
) -> None:
    batch = demand_quantities(*texts)
    assert (None if batch.count is None else (batch.count.low, batch.count.high)) == count
    assert (None if batch.amount is None else (batch.amount.low, batch.amount.high)) == amount


def test_a_demands_quantity_keeps_its_wording() -> None:
    batch = demand_quantities("首批500片SMT贴片", "再打30片样板")
    assert batch.count is not None and batch.count.text == "500片、30片"


def test_mismatch_is_the_ratio_by_which_the_ranges_miss() -> None:
    oat_milk = demand_quantities("做一次500升规模的UHT灭菌")
    three_tonnes = supplier_batch("单批最低3吨。")
    assert batch_mismatch(three_tonnes, oat_milk) == (pytest.approx(6.0), "amount")
    pilot_line = supplier_batch("单批次可在200至1000升之间调整。")
    assert batch_mismatch(pilot_line, oat_milk) == (1.0, None)
    lab = supplier_batch("无法提供千片以上的小批量供货。")
    assert batch_mismatch(lab, demand_quantities("小批量试产5000片")) == (
        pytest.approx(5.0),
        "count",
    )


def test_no_mismatch_without_a_shared_dimension() -> None:
    pieces = supplier_batch("单批50只起。")
    assert batch_mismatch(pieces, demand_quantities("做一次500升规模的试验")) == (1.0, None)
    assert batch_mismatch(Batch(), demand_quantities("5片")) == (1.0, None)
    assert batch_mismatch(pieces, Batch()) == (1.0, None)


def test_span_gap_is_symmetric() -> None:
    small, large = Span(1, 10, ""), Span(100, math.inf, "")
    assert small.gap(large) == large.gap(small) == pytest.approx(10.0)
    assert small.gap(Span(5, 50, "")) == 1.0


@pytest.mark.parametrize(
    "text",
    [
        "批" + "百片起" * 3000,  # thousands of quantities in one part
        "不能" + "批1000片以上" * 3000,
        "批" + "5至9片" * 3000,
        "一二" * 5000 + "片",  # numbers too long to be batch sizes
        "9" * 5000 + "片",
        "1" * 400 + "." + "1" * 400 + "万吨",
        "批，" * 5000,
    ],
)
def test_hostile_texts_are_read_in_bounded_time_and_quoted_briefly(text: str) -> None:
    for batch in (supplier_batch(text), demand_quantities(text)):
        for span in (batch.count, batch.amount):
            if span is not None:
                assert len(span.text) <= 3 * 120
                assert 0 <= span.low <= span.high
