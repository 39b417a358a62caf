"""The process vocabulary: other ways of writing a process, test, material or unit.

A demand and a supplier often name one thing with different words: 热蔓延 and 热扩散 (battery
thermal propagation), 盐雾测试 and 盐雾试验, 吉赫 and GHz. The taxonomy's sub-field aliases cover
the chains' nodes (光阻 for 光刻胶); this table covers the processes and tests that cut across
the chains. Text analysis treats a process alias like a sub-field alias: an alias found in a text
also emits its canonical term's words, on both sides, so the two meet.

The table (``process_vocabulary.json`` beside this module) is general domain knowledge, written
without looking at any evaluation data and reviewed group by group: true synonyms only, no
hypernyms (检测 is not 外观检测), no related-but-different things (灭菌 is not 消毒), no stage or scale
words (the ranker's constraints read those). ``load_process_vocabulary`` checks its shape, and
``text_synonyms`` checks that it never contradicts the taxonomy.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from services.shared.taxonomy import Taxonomy

__all__ = [
    "DEFAULT_PATH",
    "ProcessGroup",
    "ProcessVocabulary",
    "VocabularyError",
    "load_process_vocabulary",
    "text_synonyms",
]

DEFAULT_PATH = Path(__file__).with_name("process_vocabulary.json")


class VocabularyError(ValueError):
    """The vocabulary file is malformed or contradicts itself or the taxonomy."""


@dataclass(frozen=True)
class ProcessGroup:
    term: str
    """The canonical term: the form most common in Chinese industry writing."""
    aliases: tuple[str, ...]
    area: str
    """The field it belongs to, for reviewers (表面处理, 可靠性测试, 单位...)."""


@dataclass(frozen=True)
class ProcessVocabulary:
    groups: tuple[ProcessGroup, ...]

    def synonyms(self) -> dict[str, str]:
        """alias, as written in the file -> canonical term."""
        return {alias: group.term for group in self.groups for alias in group.aliases}


def load_process_vocabulary(path: Path = DEFAULT_PATH) -> ProcessVocabulary:
    """Read and check the vocabulary: every group has a term and at least one alias, an alias
    belongs to one group only and is nobody's canonical term (one lookup reaches the term)."""
    return _load(path.resolve())


@functools.cache
def _load(path: Path) -> ProcessVocabulary:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        groups = tuple(
            ProcessGroup(
                term=str(item["term"]).strip(),
                aliases=tuple(str(a).strip() for a in item["aliases"]),
                area=str(item.get("area", "")),
            )
            for item in data["groups"]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VocabularyError(f"{path}: {exc}") from exc
    terms: dict[str, str] = {}
    for group in groups:
        key = _key(group.term)
        if not key:
            raise VocabularyError(f"{path}: a group has an empty term")
        if key in terms:
            raise VocabularyError(f"{path}: term {group.term!r} has two groups")
        terms[key] = group.term
        if not group.aliases:
            raise VocabularyError(f"{path}: term {group.term!r} has no aliases")
    owner: dict[str, str] = {}
    for group in groups:
        for alias in group.aliases:
            key = _key(alias)
            if not key or key == _key(group.term):
                raise VocabularyError(f"{path}: {group.term!r} has an empty or self alias")
            if key in terms:
                raise VocabularyError(f"{path}: alias {alias!r} is also the term {terms[key]!r}")
            earlier = owner.setdefault(key, group.term)
            if earlier != group.term:
                raise VocabularyError(
                    f"{path}: alias {alias!r} names both {earlier!r} and {group.term!r}"
                )
    return ProcessVocabulary(groups)


def text_synonyms(
    taxonomy: Taxonomy, vocabulary: ProcessVocabulary | None = None
) -> dict[str, str]:
    """The synonyms text analysis expands: the taxonomy's sub-field aliases and the process
    vocabulary's aliases, alias -> canonical term. A process term or alias that is an industry
    chain's name or alias, or a sub-field or sub-field alias, is an error: the taxonomy owns
    those words, and two owners would send one word two ways."""
    if vocabulary is None:
        vocabulary = load_process_vocabulary()
    merged = taxonomy.synonyms()
    for group in vocabulary.groups:
        for word in (group.term, *group.aliases):
            if taxonomy.names_chain(word):
                raise VocabularyError(f"process word {word!r} names an industry chain")
            if taxonomy.chains_for_subfield(word):
                raise VocabularyError(f"process word {word!r} is a sub-field of the taxonomy")
        for alias in group.aliases:
            merged[alias] = group.term
    return merged


def _key(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())
