"""The words of an explanation's reasons, in English and in Chinese.

A constraint in an explanation carries its figures as data (``factor``, ``effect``, ``terms``,
``capped``) and a ``reason``: one sentence saying why, for a person to read. The enterprise
service platform shows matches to Chinese enterprises, so a reason can be had in Chinese: the
matching endpoints read the request's ``Accept-Language`` (``negotiate``) and answer with
``Content-Language``. The data around a reason is the same in every language.

Every reason is a template of ``REASONS`` with named fields; ``say`` fills one in. The tests
check that both languages of a template have the same fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "REASONS",
    "Language",
    "join",
    "kind_name",
    "negotiate",
    "say",
]

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")
DEFAULT_LANGUAGE: Language = "en"

REASONS: dict[str, dict[Language, str]] = {
    "certifications": {
        "en": "holds every required certification: {names}",
        "zh": "具备全部所需资质：{names}",
    },
    "stage_offered": {
        "en": "offers the stage {stage}",
        "zh": "提供{stage}阶段服务",
    },
    "stage_unlisted": {
        "en": "lists no stages; the demand asks for {stage}",
        "zh": "未列明服务阶段；需求处于{stage}阶段",
    },
    "stage_gap": {
        "en": "offers {stages}: {gap} step(s) from {stage}",
        "zh": "提供{stages}阶段服务，与需求的{stage}阶段相差{gap}级",
    },
    "voucher_accepted": {
        "en": "accepts pilot-test vouchers",
        "zh": "接受中试服务券",
    },
    "voucher_refused": {
        "en": "the demand needs pilot-test vouchers and the supplier takes none",
        "zh": "需求需使用中试服务券，该供给方不接受服务券",
    },
    "district_in": {
        "en": "in the preferred district {district}",
        "zh": "位于优先选择的{district}",
    },
    "district_not_in": {
        "en": "not in the preferred district {district}",
        "zh": "不在优先选择的{district}",
    },
    "kind_lean": {
        "en": "the demand leans to a {wanted} ({cues}); this is a {kind}",
        "zh": "需求更适合{wanted}（{cues}）；该供给方为{kind}",
    },
    "fit_capped": {
        "en": "; not an ideal match: its score is capped near {cap:g} times the best "
        "supplier's that offers the demand's stage and is of the kind it leans to",
        "zh": "；并非理想匹配：得分上限约为提供该阶段且类型相符的最佳供给方得分的{cap:g}倍",
    },
    "batch_unstated": {
        "en": "states no batch limits; the demand asks for {asked}",
        "zh": "未说明批量范围；需求数量为{asked}",
    },
    "batch_missed": {
        "en": "its batch limits ({stated}) miss the demand's quantity ({asked}) by a factor "
        "of {times}",
        "zh": "其批量范围（{stated}）与需求数量（{asked}）相差{times}倍",
    },
    "batch_met": {
        "en": "its batch limits ({stated}) meet or do not bear on the demand's {asked}",
        "zh": "其批量范围（{stated}）满足或不影响需求数量{asked}",
    },
    "disclaims": {
        "en": "says it does not do {wanted}: {terms}",
        "zh": "声明不做{wanted}：{terms}",
    },
    "disclaims_nothing": {
        "en": "states no limit that meets the demand",
        "zh": "未声明与需求相关的限制",
    },
    "wanted_by_demand": {
        "en": "what the demand asks",
        "zh": "需求所要求的内容",
    },
    "wanted_by_supplier": {
        "en": "what this supplier does",
        "zh": "本供给方所做的内容",
    },
    "disclaimer_capped": {
        "en": "; a partial match at best: its score is capped near {cap:g} times the best "
        "supplier's that rules out nothing",
        "zh": "；至多部分匹配：得分上限约为未声明任何限制的最佳供给方得分的{cap:g}倍",
    },
    "outcomes": {
        "en": "{positive} positive and {declined} declined earlier matches of {kind} demands",
        "zh": "此前{kind}类需求的匹配中有{positive}次成功、{declined}次被拒",
    },
    "scale_volume_only": {
        "en": "advertises volume production only; the demand is a pilot or small-batch need",
        "zh": "仅承接大批量生产；需求为中试或小批量",
    },
    "scale_fits": {
        "en": "no volume-only production",
        "zh": "不限于大批量生产",
    },
}
"""Reason templates by key, each in every language of ``LANGUAGES``."""

_KINDS: dict[str, dict[Language, str]] = {
    "platform": {"en": "platform", "zh": "中试平台"},
    "manufacturer": {"en": "manufacturer", "zh": "中试代工厂"},
}
_SEPARATORS: dict[Language, str] = {"en": ", ", "zh": "、"}


def say(key: str, language: Language, **fields: Any) -> str:
    """The reason ``key`` in ``language``, its fields filled in."""
    return REASONS[key][language].format(**fields)


def join(items: Iterable[str], language: Language) -> str:
    """Items listed as the language lists them (a, b / 甲、乙)."""
    return _SEPARATORS[language].join(items)


def kind_name(kind: str, language: Language) -> str:
    """A supplier kind's name (platform / 中试平台); an unknown kind as it is."""
    names = _KINDS.get(kind)
    return names[language] if names else kind


def negotiate(accept_language: str | None) -> Language:
    """The language of ``LANGUAGES`` an ``Accept-Language`` header prefers (RFC 9110
    §12.5.4): by weight, then by order; a range matches by its primary subtag (zh-CN, zh-Hans
    are zh), ``*`` matches the default, a weight of 0 refuses. Anything unreadable counts as
    absent: the default, English."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    best: tuple[float, int, Language] | None = None
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip().lower()
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if not 0.0 < weight <= 1.0:
            continue
        primary = tag.split("-", 1)[0]
        language: Language | None = (
            DEFAULT_LANGUAGE
            if primary == "*"
            else next((known for known in LANGUAGES if known == primary), None)
        )
        if language is not None and (best is None or (-weight, position) < best[:2]):
            best = (-weight, position, language)
    return best[2] if best is not None else DEFAULT_LANGUAGE
