"""The industry-chain taxonomy (产业链) of the seed policy and a resolver for free-text labels.

The 13 canonical chains live in ``industry_chains.json`` beside this module, so that the
taxonomy is data, reviewed like data, and shared by every service. Outside platforms send
chain labels as they write them: canonical names, short forms (集成电路, IC), English names,
traditional characters (半導體), full-width or ASCII punctuation and small typos (新能原).
``Taxonomy.resolve`` maps such a label to one canonical chain or says honestly that it cannot:

1. exact       the normalised label equals a chain's normalised canonical name;
2. alias       it equals a normalised alias, English name, traditional form or code, possibly
               after dropping a generic suffix (产业, 行业, industry ...) or, for a label made of
               parts (``新能源 (New Energy)``, ``食品、饮料``), every part agrees on one chain;
3. fuzzy       it is a near miss of one of those names (see ``FUZZY_THRESHOLD``);
4. none        otherwise. ``suggestions`` then lists the nearest chains, sub-fields included,
               so that 固态电池 suggests 新能源 and 低空经济 suggests 高端装备制造.

A sub-field may carry **aliases** (``subfield_aliases``): other names of the same thing that a
domain engineer uses interchangeably (光刻胶: 抗蚀剂, 光阻, Photoresist; 印制电路板: PCB, 线路板).
An alias behaves like its sub-field: it suggests (never resolves) the chains owning the sub-field,
and ``synonyms`` hands the alias -> sub-field table to text matching, which treats an alias in a
text as its sub-field. An alias names one sub-field only and is never a chain's name or alias.

Unresolved labels are not errors: callers keep them as free tags.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, cast

import opencc
from rapidfuzz.distance import OSA

__all__ = [
    "AMBIGUITY_MARGIN",
    "FUZZY_THRESHOLD",
    "MAX_SUGGESTIONS",
    "SUGGESTION_FLOOR",
    "SUGGESTION_WINDOW",
    "Category",
    "Chain",
    "Method",
    "Resolution",
    "ResolvedLabels",
    "Taxonomy",
    "TaxonomyError",
    "load_taxonomy",
    "parse_chains",
]

Category = Literal["pillar", "emerging", "future"]
Method = Literal["exact", "alias", "fuzzy", "none"]

FUZZY_THRESHOLD: float = 0.8
"""Lowest similarity (0..1) at which a near miss resolves.

Similarity is ``1 - OSA distance / longer weighted length``: one edit (insert, delete,
substitute or swap two neighbours) costs 1, and a CJK character weighs 2 in the length because
it carries about as much information as two Latin letters. One threshold then serves both
scripts: a one-character typo in a three-character Chinese name scores 0.83 (新能原), a swap in
"New Enegry" 0.89, while two changed characters in a four-character Chinese label score 0.75
(食品安全 vs 食品, 智能家居 vs 智能装备) and "Automotive Electronics" vs "Electronics" 0.52.
Chosen on the hand-made probe set in tests/shared/test_taxonomy.py (28 typos, 69 labels that
are not chains): 0.80-0.82 resolves 27 typos and no other label; 0.78 lets 生物医药与新材料 (0.79)
in, 0.85 loses the one-character typos of three-character names. Both sides are tested."""

AMBIGUITY_MARGIN: float = 0.05
"""A fuzzy match is refused when another chain scores within this margin of the best one:
guessing between two chains is worse than keeping the label as a tag."""

SUGGESTION_FLOOR: float = 0.7
"""Chains scoring below this are not suggested, so an unrelated label gets none. With the CJK
weighting, one shared character out of four scores 0.625 (房地产 vs 芯片产业) and two 0.75."""

SUGGESTION_WINDOW: float = 0.2
"""Only chains within this distance of the nearest one are suggested alongside it."""

MAX_SUGGESTIONS: int = 3

# Fuzzy matching needs enough signal: "AI", "IC", "5G", "NEV" or a two-character Chinese word are
# one edit away from unrelated names, so such labels resolve only exactly or by alias. A label
# must have 3 characters and weigh 4 (CJK characters weigh _CJK_WEIGHT, others 1).
_MIN_FUZZY_CHARS = 3
_MIN_FUZZY_WEIGHT = 4
_CJK_WEIGHT = 2

# Generic words that say "industry" rather than which one; longest first so 产业链 beats 业.
_SUFFIXES: tuple[str, ...] = (
    "产业集群",
    "产业链",
    "industries",
    "industry",
    "产业",
    "行业",
    "领域",
    "板块",
    "sector",
    "业",
)
_PART_SPLIT = re.compile(r"[()\[\]/|;,、·]+")
_AND_WORD = re.compile(r"(?<![a-z0-9])and(?![a-z0-9])")
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# 及/与/和 join two halves of a name (半导体及集成电路 vs 半导体与集成电路 vs 半导体集成电路); the
# names stay distinct without them, so they are dropped between CJK characters.
_CJK_CHAR = re.compile(rf"[{_CJK}]")
_CJK_CONJUNCTION = re.compile(rf"(?<=[{_CJK}])[及与和](?=[{_CJK}])")
_NON_ALNUM = re.compile(r"[\W_]+")
_LATIN_WORD = re.compile(r"[a-z0-9]+")
_CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]*$")
_CATEGORIES: frozenset[str] = frozenset({"pillar", "emerging", "future"})


class TaxonomyError(ValueError):
    """The taxonomy data is inconsistent (duplicate code, asymmetric weight, alias clash ...)."""


@dataclass(frozen=True)
class Chain:
    code: str
    name: str
    name_en: str
    category: Category
    aliases: tuple[str, ...]
    traditional: tuple[str, ...]
    subfields: tuple[str, ...]
    # Read-only code -> weight in (0, 1); left out of the hash because a mapping is unhashable.
    related: Mapping[str, float] = field(hash=False)
    # Read-only sub-field -> its other names (every key is one of ``subfields``).
    subfield_aliases: Mapping[str, tuple[str, ...]] = field(
        hash=False, default_factory=lambda: MappingProxyType({})
    )


@dataclass(frozen=True)
class Resolution:
    label: str
    chain: Chain | None
    method: Method
    # 1.0 for exact and alias, the similarity for fuzzy, and for none the best similarity that
    # fell short of FUZZY_THRESHOLD (or was ambiguous); 0.0 when nothing came close.
    score: float
    # Canonical names, nearest first; empty when the label resolved.
    suggestions: tuple[str, ...]

    @property
    def resolved(self) -> bool:
        return self.chain is not None


@dataclass(frozen=True)
class ResolvedLabels:
    chains: list[str]  # canonical names, deduplicated, in input order
    unresolved: list[Resolution]  # blank labels are skipped, not reported


@dataclass(frozen=True)
class _Match:
    """What a normalised key resolves to; shared by every raw spelling of that key."""

    chain: int | None
    method: Method
    score: float
    suggestions: tuple[str, ...]


def _weight(text: str) -> int:
    return sum(_CJK_WEIGHT if _is_cjk(ch) else 1 for ch in text)


def _is_cjk(ch: str) -> bool:
    return _CJK_CHAR.match(ch) is not None


def _strip_suffix(key: str) -> str | None:
    for suffix in _SUFFIXES:
        if key.endswith(suffix) and len(key) - len(suffix) >= 2:
            return key[: -len(suffix)]
    return None


def _initials(cleaned: str) -> str:
    """First letters of the Latin words of a cleaned label, "" for fewer than two words."""
    words = _LATIN_WORD.findall(_AND_WORD.sub(" ", cleaned.replace("&", " ")))
    return "".join(w[0] for w in words) if len(words) > 1 else ""


def _same_words(a: str, b: str) -> bool:
    """False when two multi-word Latin names of equal length start their words differently.
    A typo changes letters, not words: "Medical Services" is 0.87 similar to "Medical Devices"
    but means something else, while "New Enegry" keeps the initials of "New Energy"."""
    return not (a and b and len(a) == len(b) and a != b)


def _fuzzy_allowed(key: str) -> bool:
    return len(key) >= _MIN_FUZZY_CHARS and _weight(key) >= _MIN_FUZZY_WEIGHT


class Taxonomy:
    """The chains plus lookup tables built once; ``resolve`` is cached per label."""

    def __init__(self, chains: Iterable[Chain], *, cache_size: int = 8192) -> None:
        self.chains: tuple[Chain, ...] = tuple(chains)
        # t2s converts characters only; tw2sp also converts Taiwan wording (軟體 -> 软件,
        # 晶片 -> 芯片) and is tried second because it may rewrite simplified words too.
        self._t2s = opencc.OpenCC("t2s")
        self._tw2sp = opencc.OpenCC("tw2sp")
        _validate(self.chains)

        self._by_name: dict[str, Chain] = {c.name: c for c in self.chains}
        self._by_code: dict[str, Chain] = {c.code: c for c in self.chains}
        self._canonical: dict[str, int] = {}
        self._alias: dict[str, int] = {}
        self._subfield: dict[str, tuple[int, ...]] = {}
        resolving: dict[tuple[str, str, int], None] = {}  # ordered set
        for i, chain in enumerate(self.chains):
            self._canonical[self.normalize(chain.name)] = i
            names = (chain.name, chain.name_en, chain.code, *chain.aliases, *chain.traditional)
            for name in names:
                key = self.normalize(name)
                resolving[key, _initials(self._clean(name, self._t2s)), i] = None
                owner = self._alias.setdefault(key, i)
                if owner != i:
                    raise TaxonomyError(
                        f"{name!r} names both {self.chains[owner].code} and {chain.code}"
                    )
            for term in chain.subfields:
                key = self.normalize(term)
                if i not in self._subfield.get(key, ()):
                    self._subfield[key] = (*self._subfield.get(key, ()), i)
        self._synonyms = self._alias_table()
        for alias, term in self._synonyms.items():
            # An alias stands for every chain owning its sub-field.
            key, owners = self.normalize(alias), self._subfield[self.normalize(term)]
            self._subfield[key] = tuple(dict.fromkeys((*self._subfield.get(key, ()), *owners)))
        for key, owners in self._subfield.items():
            if key in self._alias:
                # A term that resolves to a chain cannot also be a mere sub-field of one.
                raise TaxonomyError(
                    f"sub-field {key!r} of {self.chains[owners[0]].code} is an alias of "
                    f"{self.chains[self._alias[key]].code}"
                )
        # (key, weight, initials, chain index, resolves?): one pass scores names and sub-fields.
        self._candidates: tuple[tuple[str, int, str, int, bool], ...] = tuple(
            (key, _weight(key), initials, i, True) for key, initials, i in resolving
        ) + tuple(
            (key, _weight(key), "", i, False)
            for key, owners in self._subfield.items()
            for i in owners
        )
        self._resolve_label = functools.lru_cache(maxsize=cache_size)(self._resolve_uncached)
        self._match_key = functools.lru_cache(maxsize=cache_size)(self._match_uncached)

    # -- public API ---------------------------------------------------------------------------

    def normalize(self, label: str) -> str:
        """The comparison key: NFKC, traditional -> simplified, casefold, and only letters and
        digits kept ("&"/"and" and 及/与/和 between Chinese characters dropped)."""
        return self._compact(self._clean(label, self._t2s))

    def resolve(self, label: str) -> Resolution:
        return self._resolve_label(label)

    def resolve_all(self, labels: Iterable[str]) -> ResolvedLabels:
        names: list[str] = []
        seen: set[str] = set()
        unresolved: list[Resolution] = []
        for label in labels:
            if not label or not label.strip():
                continue
            resolution = self.resolve(label)
            if resolution.chain is None:
                unresolved.append(resolution)
            elif resolution.chain.name not in seen:
                seen.add(resolution.chain.name)
                names.append(resolution.chain.name)
        return ResolvedLabels(chains=names, unresolved=unresolved)

    def get(self, name_or_code: str) -> Chain | None:
        """A chain by canonical name (also in normalised spelling, e.g. ASCII parentheses) or
        by code. Aliases are deliberately not accepted here: that is ``resolve``'s job."""
        chain = self._by_name.get(name_or_code) or self._by_code.get(name_or_code)
        if chain is not None:
            return chain
        index = self._canonical.get(self.normalize(name_or_code))
        return None if index is None else self.chains[index]

    def relatedness(self, a: str, b: str) -> float:
        """1.0 for the same chain, the ``related`` weight for a related one, else 0.0
        (also 0.0 when either name is not a chain)."""
        chain_a, chain_b = self.get(a), self.get(b)
        if chain_a is None or chain_b is None:
            return 0.0
        if chain_a.code == chain_b.code:
            return 1.0
        return chain_a.related.get(chain_b.code, 0.0)

    def names_chain(self, label: str) -> bool:
        """Whether ``label`` is a chain's name or alias exactly (after normalisation), with no
        fuzzy matching: the cheap check for words other vocabularies may not take."""
        return self._lookup(self.normalize(label)) is not None

    def chains_for_subfield(self, term: str) -> list[str]:
        """The chains owning a sub-field, named by itself or by one of its aliases."""
        owners = self._subfield.get(self.normalize(term), ())
        return [self.chains[i].name for i in owners]

    def synonyms(self) -> dict[str, str]:
        """Every sub-field alias, as written in the data, mapped to its sub-field."""
        return dict(self._synonyms)

    # -- sub-field aliases --------------------------------------------------------------------

    def _alias_table(self) -> dict[str, str]:
        """alias -> sub-field over all chains, checked: an alias names one sub-field (a
        sub-field listed by two chains may list its aliases in both), and a sub-field with
        aliases is nobody's alias, so one lookup always reaches the canonical term."""
        table: dict[str, str] = {}
        owner_of: dict[str, str] = {}  # normalised alias -> sub-field
        for chain in self.chains:
            for term, aliases in chain.subfield_aliases.items():
                for alias in aliases:
                    key = self.normalize(alias)
                    if not key:
                        raise TaxonomyError(f"{chain.code}: alias {alias!r} of {term!r} is empty")
                    known = owner_of.setdefault(key, term)
                    if self.normalize(known) != self.normalize(term):
                        raise TaxonomyError(
                            f"{chain.code}: alias {alias!r} names both {known!r} and {term!r}"
                        )
                    table.setdefault(alias, term)
        canonical = {self.normalize(term) for term in table.values()}
        for alias, term in table.items():
            # A spelling of the term itself (MiniLED for Mini LED) is no alias chain.
            if self.normalize(alias) in canonical - {self.normalize(term)}:
                raise TaxonomyError(f"alias {alias!r} of {term!r} has aliases of its own")
        return table

    # -- resolution ---------------------------------------------------------------------------

    def _clean(self, label: str, converter: Any) -> str:
        text = unicodedata.normalize("NFKC", label)
        text = cast(str, converter.convert(text))
        return " ".join(text.casefold().split())

    @staticmethod
    def _compact(cleaned: str) -> str:
        text = _AND_WORD.sub(" ", cleaned.replace("&", " "))
        text = _NON_ALNUM.sub("", text)
        return _CJK_CONJUNCTION.sub("", text)

    def _resolve_uncached(self, label: str) -> Resolution:
        cleaned = self._clean(label, self._t2s)
        key = self._compact(cleaned)
        match = self._lookup(key)
        if match is None:
            # Taiwan wording (軟體與資訊服務業) only becomes our vocabulary after tw2sp.
            match = self._lookup(self._compact(self._clean(label, self._tw2sp)))
        if match is None:
            parts = [p for p in _PART_SPLIT.split(cleaned) if self._compact(p)]
            if len(parts) > 1:
                # A label made of parts is judged by its parts only: fuzzy matching the whole
                # would let 光伏/半导体 drift to whichever part is longer.
                match = self._match_parts(parts)
        if match is None:
            match = self._match_key(key, _initials(cleaned))
        chain = None if match.chain is None else self.chains[match.chain]
        return Resolution(label, chain, match.method, match.score, match.suggestions)

    def _lookup(self, key: str) -> _Match | None:
        """Exact or alias match of a key, directly or without a generic suffix."""
        if not key:
            return None
        if key in self._canonical:
            return _Match(self._canonical[key], "exact", 1.0, ())
        if key in self._alias:
            return _Match(self._alias[key], "alias", 1.0, ())
        stripped = _strip_suffix(key)
        if stripped is not None and stripped in self._alias:
            return _Match(self._alias[stripped], "alias", 1.0, ())
        return None

    def _match_uncached(self, key: str, initials: str) -> _Match:
        found = self._lookup(key)
        if found is not None:
            return found
        if not key:
            return _Match(None, "none", 0.0, ())
        names, terms = self._scan(key, initials)
        stripped = _strip_suffix(key)
        if stripped is not None:
            # A stripped English suffix ("industry") was a word of its own.
            words = initials[:-1] if stripped.isascii() else initials
            stripped_names, _ = self._scan(stripped, words if len(words) > 1 else "")
            for i, score in stripped_names.items():
                names[i] = max(names.get(i, 0.0), score)
        ranked = _ranked(names)
        top = ranked[0][1] if ranked else 0.0
        if (
            ranked
            # A sub-field (固态电池, 机器人) is a part of a chain, never a typo of one.
            and key not in self._subfield
            and _fuzzy_allowed(stripped or key)
            and top >= FUZZY_THRESHOLD
            and (len(ranked) == 1 or ranked[1][1] < top - AMBIGUITY_MARGIN)
        ):
            return _Match(ranked[0][0], "fuzzy", round(top, 4), ())
        return _Match(None, "none", round(top, 4), self._suggestions(terms))

    def _match_parts(self, parts: list[str]) -> _Match:
        """``新能源 (New Energy)`` or ``食品、饮料``: resolve when the parts agree on one chain and
        no part is a sub-field of a different chain only (光伏/半导体 stays unresolved)."""
        found: dict[int, _Match] = {}
        parents: list[tuple[int, ...]] = []
        suggested: list[str] = []
        best = 0.0
        for cleaned in parts:
            part = self._compact(cleaned)
            match = self._match_key(part, _initials(cleaned))
            if match.chain is not None:
                found.setdefault(match.chain, match)
                suggested.append(self.chains[match.chain].name)
            else:
                best = max(best, match.score)
                suggested.extend(match.suggestions)
                if part in self._subfield:
                    parents.append(self._subfield[part])
        if len(found) == 1:
            [(index, match)] = found.items()
            if all(index in owners for owners in parents):
                return match
        # Disagreeing parts (新能源、新材料) name several chains: suggest them, resolve none.
        return _Match(None, "none", best, tuple(dict.fromkeys(suggested))[:MAX_SUGGESTIONS])

    def _scan(self, key: str, initials: str) -> tuple[dict[int, float], dict[int, float]]:
        """Best similarity per chain over its resolving names (what may resolve), and over
        all its terms, sub-fields and containment included (what may be suggested)."""
        names: dict[int, float] = {}
        terms: dict[int, float] = {}
        key_weight = _weight(key)
        for candidate, weight, words, i, resolving in self._candidates:
            longest = max(key_weight, weight)
            score = 1.0 - OSA.distance(key, candidate) / longest
            if resolving and score > names.get(i, 0.0) and _same_words(initials, words):
                names[i] = score
            if min(key_weight, weight) >= 4 and (candidate in key or key in candidate):
                # Containment (固态电池中试 holds 固态电池) may suggest a chain but never resolve
                # one, and only for terms too long to occur by accident ("ic" in "electronic").
                score = max(score, 0.6 + 0.4 * min(key_weight, weight) / longest)
            if score > terms.get(i, 0.0):
                terms[i] = score
        return names, terms

    def _suggestions(self, scores: dict[int, float]) -> tuple[str, ...]:
        ranked = _ranked(scores)
        if not ranked:
            return ()
        floor = max(SUGGESTION_FLOOR, ranked[0][1] - SUGGESTION_WINDOW)
        return tuple(self.chains[i].name for i, s in ranked[:MAX_SUGGESTIONS] if s >= floor)


def _ranked(scores: dict[int, float]) -> list[tuple[int, float]]:
    # Ties go to the chain listed first in the data, so results are deterministic.
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _validate(chains: tuple[Chain, ...]) -> None:
    if not chains:
        raise TaxonomyError("no chains")
    codes = [c.code for c in chains]
    names = [c.name for c in chains]
    if len(set(codes)) != len(codes):
        raise TaxonomyError("duplicate chain code")
    if len(set(names)) != len(names):
        raise TaxonomyError("duplicate chain name")
    by_code = {c.code: c for c in chains}
    for chain in chains:
        if not _CODE_PATTERN.match(chain.code):
            raise TaxonomyError(f"code {chain.code!r} is not UPPER_SNAKE ASCII")
        if chain.category not in _CATEGORIES:
            raise TaxonomyError(f"{chain.code}: unknown category {chain.category!r}")
        for term in chain.subfield_aliases:
            if term not in chain.subfields:
                raise TaxonomyError(f"{chain.code}: aliases given for {term!r}, not a sub-field")
        for other, weight in chain.related.items():
            if other not in by_code or other == chain.code:
                raise TaxonomyError(f"{chain.code}: related code {other!r} is not another chain")
            if not 0.0 < weight < 1.0:
                raise TaxonomyError(f"{chain.code}->{other}: weight {weight} not in (0, 1)")
            if by_code[other].related.get(chain.code) != weight:
                raise TaxonomyError(f"{chain.code}<->{other}: related weight is not symmetric")


def parse_chains(document: Mapping[str, Any]) -> tuple[Chain, ...]:
    """Chains from the JSON document's ``chains`` list (validated by ``Taxonomy``)."""
    return tuple(
        Chain(
            code=item["code"],
            name=item["name"],
            name_en=item["name_en"],
            category=item["category"],
            aliases=tuple(item.get("aliases", ())),
            traditional=tuple(item.get("traditional", ())),
            subfields=tuple(item.get("subfields", ())),
            related=MappingProxyType({k: float(v) for k, v in item.get("related", {}).items()}),
            subfield_aliases=MappingProxyType(
                {k: tuple(v) for k, v in item.get("subfield_aliases", {}).items()}
            ),
        )
        for item in document["chains"]
    )


@functools.cache
def load_taxonomy() -> Taxonomy:
    """The packaged taxonomy, built once per process."""
    resource = importlib.resources.files(__name__.rpartition(".")[0]).joinpath(
        "industry_chains.json"
    )
    document = json.loads(resource.read_text(encoding="utf-8"))
    return Taxonomy(parse_chains(document))
