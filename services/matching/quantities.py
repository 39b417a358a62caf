"""Batch sizes: how much a demand asks for, and how much a supplier will make per batch.

A contract manufacturer's description often states its batch limits (单批最低3吨, 5片起做,
三千袋起订, 单批100至2000只, 无法提供千片以上的小批量供货), and a demand often states how much it
needs (做一次500升规模的UHT灭菌, 试制100片, 首批500片SMT贴片, 20 sets). A supplier whose smallest
batch is far above the demand's quantity (or whose largest is far below it) cannot take the job
as asked, however well its text matches; the ranker lowers it (``RankingWeights.batch_mismatch``).

**Quantities** are a number (Arabic, ``1,000``, ``2万``, or Chinese numerals read by ``cn2an``:
两百, 三千, 一万; a bare 百, 千 or 万 is one of it; 几百 and 数千 are vague, read as 2 to 9 of the
unit) and a unit of one of two dimensions:

- ``count``: pieces of product in Chinese classifiers (片, 只, 颗, 件, 套, 台, 盒, 瓶, 袋, 支, 双, 块,
  粒) or English nouns (pcs, pieces, units, sets, pairs, prototypes, samples, boards, modules).
  Classifiers that count other things (个, 款 designs, 次 cycles, 条 lines, 批 batches) are left
  out;
- ``amount``: mass or volume in grams (克, 公斤, 千克, 吨, g, kg) and litres (毫升, 升, ml, L), one
  litre taken as one kilogram: pilot batches of liquids, slurries and powders are quoted either
  way, and the order of magnitude is what matters here.

A number followed by 级 (百升级罐, 百克级) is an order of magnitude: ``[n, 10n)``.

**A supplier's limits** come only from the parts of its description (the stretches between
commas and full stops) that speak of batches or orders (批, 起订, 起做, 订单, 订量, 供货): a range
(``100至2000只``, ``批量从1公斤到100公斤``), a minimum (``5片起做``, ``起订量3000件``, ``单批最低3吨``,
``几百只起``) or, in a refusal, a maximum (``无法提供千片以上``). Capacity (日产十万片) and
sizes (最小线宽40微米, 内径最小0.3毫米) are not batch limits and are not read.

**A demand's quantity** is every count or amount in its title, tags and description; several of
one dimension make a range (20 sets of enclosures plus 5 prototypes: 5 to 20).

The mismatch of a supplier and a demand is the ratio by which their ranges miss each other in
one dimension (the largest over both dimensions; 1 when they meet or either side states
nothing): a supplier taking 3 t at least and a demand for 500 L miss by 6.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Batch", "Span", "batch_mismatch", "demand_quantities", "supplier_batch"]

Dimension = Literal["count", "amount"]
DIMENSIONS: tuple[Dimension, ...] = ("count", "amount")


@dataclass(frozen=True)
class Span:
    """A range of one dimension, in base units (items, or grams with 1 ml = 1 g)."""

    low: float
    high: float
    text: str

    def gap(self, other: Span) -> float:
        """By what ratio the two ranges miss each other (1.0 when they meet)."""
        if self.high < other.low:
            return other.low / max(self.high, 1e-9)
        if other.high < self.low:
            return self.low / max(other.high, 1e-9)
        return 1.0


@dataclass(frozen=True)
class Batch:
    """The spans a text states, per dimension."""

    count: Span | None = None
    amount: Span | None = None

    def __bool__(self) -> bool:
        return self.count is not None or self.amount is not None

    def span(self, dimension: Dimension) -> Span | None:
        return self.count if dimension == "count" else self.amount


_COUNT_UNITS = "片只颗件套台盒瓶袋支双块粒"
_AMOUNT_UNITS: dict[str, float] = {
    "毫升": 1.0,
    "千克": 1000.0,
    "公斤": 1000.0,
    "克": 1.0,
    "吨": 1e6,
    "升": 1000.0,
    "kg": 1000.0,
    "g": 1.0,
    "ml": 1.0,
    "l": 1000.0,
    "tonnes": 1e6,
    "tons": 1e6,
    "litres": 1000.0,
    "liters": 1000.0,
}
_ENGLISH_COUNT = r"(?:pcs|pieces?|units?|sets?|pairs?|prototypes?|samples?|boards?|modules?)"
_CN_DIGITS = "零〇一二两三四五六七八九十百千万"
# A number: Arabic (1,000 / 1.5 / 2万 / 5k) or Chinese numerals, optionally vague (几百, 数千).
_NUMBER = rf"(?:[几数][十百千万]+|[{_CN_DIGITS}]+|\d+(?:,\d{{3}})*(?:\.\d+)?(?:\s*[万千]|k)?)"
# Single-letter Latin units are case-sensitive (5G is a network, not five grams); a Latin
# unit must end its word.
_UNIT = (
    rf"(?:[{_COUNT_UNITS}]|毫升|千克|公斤|克|吨|升"
    rf"|(?:kg|KG|Kg|g|ml|mL|ML|L|(?i:tonnes|tons|litres|liters|{_ENGLISH_COUNT}))(?![A-Za-z]))"
)
_QUANTITY = re.compile(
    rf"(?P<first>{_NUMBER})\s*(?P<first_unit>{_UNIT})?"
    rf"(?:\s*(?:至|到|~|～|-|–|—|\bto\b)\s*(?P<second>{_NUMBER})\s*(?P<unit>{_UNIT}))?"
)
# Where a part ends: a comma between digits (2,000) is not one.
_SEPARATOR = re.compile(r"[，。；;！!？?\n]|,(?!\d)|\.(?!\d)")
_BATCH_CUE = re.compile(r"批|起订|起做|订单|订量|供货|(?i:\b(?:batch|order|moq|minimum))")
_MINIMUM_BEFORE = re.compile(
    r"(?:起订量|起订|最低|最少|至少|不少于|(?i:\b(?:moq|minimum(?: order)?(?: quantity)?"
    r"|at least)(?:\s+of)?:?))[为是]?\s*$"
)
# Read at a position (``match(text, pos)``), never on a copy of the rest of the text: a
# description may hold thousands of quantities.
_MINIMUM_AFTER = re.compile(r"\s*起")
_MAXIMUM_AFTER = re.compile(r"\s*(?:以上|以内|以下)")
_REFUSAL = re.compile("无法|不能|不承接|不接受|不提供|不具备|不做")
_ORDER_OF_MAGNITUDE = re.compile(r"\s*级")
_VAGUE = re.compile(r"^[几数]")
_CUE_REACH = 16  # how far before a quantity a minimum's wording (最小起订量为) may start
_QUOTED = 3  # statements or quantities quoted per dimension
_LONGEST_QUOTE = 80
_LONGEST_NUMBER = 12  # 一千二百三十四万 or 1234567.5: longer is no batch size


@functools.cache
def _chinese_numerals() -> Callable[[str], Any]:
    """``cn2an``'s reader, imported on first use: its import takes about 0.2 s, which the
    processes that never read a Chinese numeral (the gateway, the analysis worker) are spared."""
    import cn2an

    return functools.partial(cn2an.cn2an, mode="normal")


def _number(text: str) -> tuple[float, float] | None:
    """(low, high) of a number as written; a vague one (几百) spans 2 to 9 of its unit."""
    text = text.replace(",", "").replace(" ", "")
    if len(text) > _LONGEST_NUMBER:
        return None  # a serial number or a run of digits, not a quantity
    if _VAGUE.match(text):
        unit = _number("一" + text[1:])
        return None if unit is None else (2 * unit[0], 9 * unit[0])
    scale = 1.0
    if text[-1:] in "万千k" and text[:-1].replace(".", "", 1).isdigit():
        scale = 10000.0 if text[-1] == "万" else 1000.0
        text = text[:-1]
    elif text[:1] in "十百千万":
        text = "一" + text  # 百片起: a hundred
    if text == "一":
        return None  # 一套方案, 一台设备: an article, not a quantity
    try:
        value = (
            float(text) if text.replace(".", "", 1).isdigit() else float(_chinese_numerals()(text))
        )
    except (ValueError, OverflowError):
        return None
    if not 0 < value < math.inf:
        return None  # 零件 (parts) is a word, not zero pieces
    return value * scale, value * scale


def _unit(unit: str | None) -> tuple[Dimension, float] | None:
    if not unit:
        return None
    key = unit.strip().lower()
    if key in _COUNT_UNITS or re.fullmatch(_ENGLISH_COUNT, key, re.IGNORECASE):
        return "count", 1.0
    factor = _AMOUNT_UNITS.get(key)
    return None if factor is None else ("amount", factor)


@dataclass(frozen=True)
class _Found:
    dimension: Dimension
    low: float
    high: float
    start: int
    end: int
    is_range: bool


def _quantities(text: str) -> list[_Found]:
    found: list[_Found] = []
    for m in _QUANTITY.finditer(text):
        # The number must not continue a word or another number (A4, 0603, 6061 alloy).
        if m.start() and re.match(r"[A-Za-z0-9.]", text[m.start() - 1]):
            continue
        if m.group("second"):
            unit = _unit(m.group("unit"))
            first_unit = _unit(m.group("first_unit"))
            if unit is None or (first_unit is not None and first_unit[0] != unit[0]):
                continue
            first, second = _number(m.group("first")), _number(m.group("second"))
            if first is None or second is None:
                continue
            first_factor = first_unit[1] if first_unit else unit[1]
            dimension, factor = unit
            found.append(
                _Found(
                    dimension, first[0] * first_factor, second[1] * factor, m.start(), m.end(), True
                )
            )
            continue
        unit = _unit(m.group("first_unit"))
        value = _number(m.group("first"))
        if unit is None or value is None:
            continue
        dimension, factor = unit
        low, high = value[0] * factor, value[1] * factor
        end, scale = m.end(), _ORDER_OF_MAGNITUDE.match(text, m.end())
        if scale:  # 百升级: a hundred litres or more, below a thousand
            high, end = max(high, low * 10), scale.end()
        found.append(_Found(dimension, low, high, m.start(), end, bool(scale)))
    return found


def _batch_parts(text: str) -> list[str]:
    """The parts of a text (between commas and full stops) that speak of batches or orders.
    Found from the cues outwards: most of a description is not about batches, and this runs
    once per supplier in every build."""
    parts: list[str] = []
    cues = list(_BATCH_CUE.finditer(text))
    if not cues:
        return parts
    ends = [m.start() for m in _SEPARATOR.finditer(text)] + [len(text)]
    end = -1
    for cue in cues:
        if cue.start() < end:
            continue  # in the part already taken
        k = bisect.bisect_left(ends, cue.start())
        start = ends[k - 1] + 1 if k else 0
        end = ends[bisect.bisect_left(ends, cue.end())]
        parts.append(text[start:end])
    return parts


def supplier_batch(description: str) -> Batch:
    """The batch limits a supplier's description states (see the module docstring)."""
    # Several statements of one dimension: the loosest limits (a supplier offering 样板5片起做
    # and 批量1万片起 takes 5), quoting the first few statements.
    spans: dict[Dimension, tuple[float, float, list[str]]] = {}
    for part in _batch_parts(description):
        refusal = _REFUSAL.search(part)
        for q in _quantities(part):
            if _MINIMUM_AFTER.match(part, q.end) or _MINIMUM_BEFORE.search(
                part, max(0, q.start - _CUE_REACH), q.start
            ):
                low, high = q.low, math.inf
            elif refusal and refusal.start() < q.start and _MAXIMUM_AFTER.match(part, q.end):
                low, high = 0.0, q.low
            elif q.is_range:
                low, high = q.low, q.high
            else:
                continue
            old_low, old_high, statements = spans.get(q.dimension, (math.inf, 0.0, []))
            statement = part.strip()
            if len(statement) > _LONGEST_QUOTE:  # quote the words around the quantity
                statement = part[max(0, q.start - 20) : q.end + 20].strip() + "…"
            if len(statements) < _QUOTED and statement not in statements:
                statements.append(statement)
            spans[q.dimension] = (min(old_low, low), max(old_high, high), statements)
    return Batch(
        **{
            dimension: Span(low, high, "；".join(statements))
            for dimension, (low, high, statements) in spans.items()
        }
    )


def demand_quantities(*texts: str) -> Batch:
    """The quantities a demand's texts state, one span per dimension (see the module docstring)."""
    spans: dict[Dimension, tuple[float, float, list[str]]] = {}
    for text in texts:
        for q in _quantities(text):
            written = text[q.start : q.end].strip()
            low, high, words = spans.get(q.dimension, (math.inf, 0.0, []))
            if len(words) < _QUOTED and written not in words:
                words.append(written)
            spans[q.dimension] = (min(low, q.low), max(high, q.high), words)
    return Batch(
        **{
            dimension: Span(low, high, "、".join(words))
            for dimension, (low, high, words) in spans.items()
        }
    )


def batch_mismatch(supplier: Batch, demand: Batch) -> tuple[float, Dimension | None]:
    """The largest ratio by which the supplier's and the demand's spans miss each other in a
    dimension both state (1.0 and None when they meet everywhere or share no dimension)."""
    worst, where = 1.0, None
    for dimension in DIMENSIONS:
        ours, theirs = supplier.span(dimension), demand.span(dimension)
        if ours is not None and theirs is not None:
            gap = ours.gap(theirs)
            if gap > worst:
                worst, where = gap, dimension
    return worst, where
