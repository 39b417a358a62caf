"""What a supplier says it does not do.

Service descriptions often draw their own limits: 产线为硅工艺设计，不能加工碳化硅晶圆; 企业只做外延片，
无法承接MOSFET流片; 实验室尚未取得CNAS认可. Read as a bag of words, such a sentence is evidence *for*
碳化硅, MOSFET流片 and CNAS, the very things the supplier rules out. ``split_disclaimers`` cuts a
text into what it affirms and what it disclaims, sentence part by sentence part (the stretches
between commas, full stops, semicolons and line breaks; an enumeration comma 、 stays inside, so
不具备离子注入、栅氧和金属化 disclaims all three). A part disclaims when it holds one of
``DISCLAIMER_CUES``, unless it is about solving someone else's inability (解决传统工艺无法……的问题
affirms). The ranker indexes only the affirmed text and lowers a supplier whose disclaimed text
meets the demand (``RankingWeights.disclaimer``).

Only suppliers' texts are split. A demand's negations are ambiguous (现有供应商无法做X names the
very X it needs), so a demand's text is read whole.

The cues are general Chinese and English wording of refusal or absence, written without looking
at any catalog or evaluation data; single characters (不, 无, 未) are too common inside ordinary
words (不锈钢, 无铅, 未来) to be cues.
"""

from __future__ import annotations

import re

from services.matching.markup import plain_text

__all__ = ["DISCLAIMER_CUES", "split_disclaimers"]

DISCLAIMER_CUES: tuple[str, ...] = (
    "不能",
    "无法",
    "不可以",
    "不具备",
    "不具有",
    "不提供",
    "不做",
    "没有",
    "不承接",
    "不接受",
    "不支持",
    "不包括",
    "不包含",
    "不涉及",
    "不参与",
    "不开展",
    "未开展",
    "暂不",
    "尚未",
    "未取得",
    "无能力",
    "不负责",
)
"""Chinese wording of refusal or absence (不能 can't, 没有 has no, 尚未 not yet, 暂不 not for now...).
Left out because they also make positive claims: 不含 (不含卤素, halogen-free), 不再 (客户不再需要外协),
未通过 (未通过样品的失效分析), 不接 (不接触测量)."""

_ENGLISH_CUES = r"\b(?:not|cannot|can't|don't|doesn't|won't|unable|no\s+longer|neither|nor)\b"

_CHINESE = re.compile("|".join(DISCLAIMER_CUES))
_ENGLISH = re.compile(_ENGLISH_CUES, re.IGNORECASE)

# Solving, overcoming or avoiding an inability is a claim, not a limit; so are having no
# minimum or threshold (没有最低起订量限制) and "not only".
_OVERCOMES = re.compile(
    r"(?:解决|克服|弥补|突破|避免|改善|填补)[^，。；！？,;!?]*?(?:无法|不能|没有|不具备)"
    r"|没有[^，。；！？,;!?]*?(?:限制|门槛|起订量)"
    r"|\bnot\s+only\b",
    re.IGNORECASE,
)

# Sentence parts: split at commas, full stops, semicolons, question and exclamation marks and
# line breaks, not at the enumeration comma 、 (an enumeration shares its sentence's verb). A
# period splits only before a space or at the end, so 0.1mm and UN38.3 stay whole.
_PART_SPLIT = re.compile(r"[，。；！？,;!?\n\r]+|\.(?:\s+|$)")

_JOIN = "。"
"""Parts are rejoined with a full stop: a clause boundary for the analyzer, as before."""


def _has_cue(text: str) -> bool:
    if _CHINESE.search(text) is not None:
        return True
    # Substrings the English cues hold ("no" is in not, cannot, nor and no longer): plain
    # substring tests are several times faster than the word-bounded expression, and most
    # texts hold none of them.
    lowered = text.lower()
    return (
        "no" in lowered or "n't" in lowered or "unable" in lowered or "neither" in lowered
    ) and _ENGLISH.search(text) is not None


def _disclaims(part: str) -> bool:
    return _has_cue(part) and _OVERCOMES.search(part) is None


def split_disclaimers(text: str) -> tuple[str, str]:
    """(affirmed, disclaimed): the sentence parts of ``text`` that do not and that do state a
    limit, each rejoined with full stops. A text without any cue is returned whole (the common
    case, one regular-expression search). HTML markup is taken out first
    (``markup.plain_text``): a statement is shown to users as the supplier wrote it."""
    text = plain_text(text)
    if not _has_cue(text):
        return text, ""
    affirmed: list[str] = []
    disclaimed: list[str] = []
    for part in _PART_SPLIT.split(text):
        if part and not part.isspace():
            (disclaimed if _disclaims(part) else affirmed).append(part)
    return _JOIN.join(affirmed), _JOIN.join(disclaimed)
