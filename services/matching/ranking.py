"""The ranker: which pilot-test platforms and contract manufacturers fit a demand, and why.

Plain Python over arrays, no HTTP. ``MatchIndex.build`` fits an immutable snapshot of the
catalog (CPU-bound: run it off the request path); ``rank`` scores one demand against it.

A supplier's score is (every weight lives in ``RankingWeights``)::

    base  = text * relative_similarity + chain * chain_score + tag * tag_score
    score = base * product(constraint factors)

- **relative_similarity** (0..1): cosine of TF-IDF vectors (scikit-learn ``TfidfTransformer``,
  smooth idf, l2 norm) over the terms of ``services.matching.text``, divided by the best cosine
  among the eligible suppliers. Term frequency is sublinear per field (``1 + ln count``) and
  fields are weighted: a supplier's name, tags and capabilities count more than its long
  description; a demand's title and tags more than its description. Character bigrams count
  ``bigram`` of a word; the demand's bigrams that spell one of its own words are left out (the
  word carries them), and so are its terms most suppliers hold (``common_term_share``). Only
  the postings of the query's terms are read (CSC columns).
- **chain_score** (0..1): the demand's industry chains against the supplier's. Each chain label
  of the demand is resolved through the taxonomy (aliases, English, traditional, typos); a label
  that is a sub-field (第三代半导体, 光伏) stands for the chain(s) owning it. A demand that names
  no chain, or none that resolves, gets chains inferred from its title, tags and description
  (the taxonomy's names, aliases, sub-fields and sub-field aliases found in the text) or,
  when its text holds none of those, voted by the suppliers whose text is most like it
  (``neighbour_chains``); inferred chains count ``inferred_chain_confidence``. Each
  demand chain scores the best ``Taxonomy.relatedness`` among the supplier's chains (1 same, e.g. 0.7 related, 0
  unrelated); the chain score is their weighted mean.
- **tag_score** (0..1): the demand's tags (and catalog tags its title or description mention)
  against the supplier's sub-field tags, both in canonical form (an alias of a sub-field or of a
  process, ``services.matching.vocabulary``, stands for its term): identical 1.0, near-identical
  (rapidfuzz ratio >= ``tag_fuzzy_threshold``) ``tag_fuzzy_credit``, one containing the other
  (SMT in SMT贴片) ``tag_partial_credit``; weighted mean over the demand's tags.
- **constraints**: a supplier lacking any required certification is never returned (the
  certificates are compared normalised: ``ISO9001`` = ``ISO 9001`` = ``ISO 9001:2015``); stage,
  vouchers, district, supplier kind, production scale, batch size and disclaimers multiply
  the base by the factors documented in ``RankingWeights``. Batch size compares the quantity
  a demand states (200只, 500升) with the batch limits a supplier's description states
  (5片起做, 单批最低3吨; ``services.matching.quantities``). A supplier's description counts only what it
  affirms: what it says it does not do (不能加工碳化硅晶圆, ``services.matching.disclaimers``) is
  kept apart, and a demand meeting it lowers the supplier (``RankingWeights.disclaimer``);
  one ruling out the demand substantively is a partial match at best, its score capped near
  half the best score of the suppliers ruling out nothing (``RankingWeights.disclaimer_cap``).
  Likewise a supplier missing the demand's stage, or of the kind it does not lean to, is capped
  near 0.9 times the best score of those that fit (``RankingWeights.fit_cap``).
  The explanation lists each factor and its effect in score units (applied in order, so the
  effects add up: ``score = base + sum(effects)``, to about 1e-6: the score shown is the
  float32 total the results were ordered by); the ``disclaimer`` constraint, listed only for a
  supplier it lowers, adds the ``terms`` and the ``statements``.
- **outcomes**: what happened to a supplier's earlier matches of demands of the same kind
  (primary industry chain) multiplies the score by a bounded factor, 0.75..1.10 by default
  (``RankingWeights.outcome_*``, ``services.matching.outcomes``): a supplier that keeps
  declining a kind of demand sinks for that kind only. The explanation's ``outcomes``
  constraint gives the kind, the counts and the effect; without outcomes it is absent.

Ties are broken by supplier id; the same input gives the same output.

**Updates** (``with_changes``) are copy-on-write and cost about the number of changes: the
index is a main segment (the last full build, never modified; removed or replaced rows are
masked out) and a small delta segment holding the suppliers added or replaced since, both
ranked together. New terms, tags, certifications and districts join the new snapshot's
vocabularies (a new term's idf by the same smooth-idf formula); a full build merges the
segments and refits every idf.

**Speed**: only the postings of the query's terms are read; the parts of the score are
computed in full only for the suppliers whose upper bound can still reach the top (see
``MatchIndex._search``), and a large catalog's text is analysed in two processes.
"""

from __future__ import annotations

import bisect
import functools
import math
import os
import re
import threading
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from rapidfuzz import fuzz, process
from sklearn.feature_extraction.text import TfidfTransformer

try:  # scipy's C kernel for y += A @ x on CSC arrays (see ``combine_columns``)
    from scipy.sparse._sparsetools import csc_matvec as _csc_matvec
except ImportError:  # pragma: no cover - a scipy that moved it: the public path is used
    _csc_matvec = None
try:  # ... and for gathering CSR rows and y += A @ x on CSR arrays (see ``rows_times``)
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
    from scipy.sparse._sparsetools import csr_row_index as _csr_row_index
except ImportError:  # pragma: no cover - a scipy that moved them: the public path is used
    _csr_matvec = _csr_row_index = None

from services.matching.disclaimers import split_disclaimers
from services.matching.messages import DEFAULT_LANGUAGE, Language, join, kind_name, say
from services.matching.outcomes import KindOutcomes, OutcomeCounts, outcome_factor
from services.matching.quantities import (
    Batch,
    batch_mismatch,
    demand_quantities,
    supplier_batch,
)
from services.matching.text import (
    BIGRAM_PREFIX,
    ENGLISH_GLOSSARY,
    Analyzer,
    WorkerPool,
    is_bigram,
)
from services.matching.vocabulary import text_synonyms
from services.shared.taxonomy import Taxonomy

__all__ = [
    "STAGES",
    "DemandQuery",
    "Match",
    "MatchIndex",
    "RankingWeights",
    "SupplierDoc",
    "normalize_certification",
]

STAGES: tuple[str, ...] = ("概念验证", "小试", "中试", "小批量试产")
"""The pilot-test stages in order, from proof of concept to small-batch trial production."""

Kind = Literal["platform", "manufacturer"]
KindFilter = Literal["platform", "manufacturer", "all"]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.integer[Any]]
Slot = tuple[tuple[tuple[int, float], ...], float, str]
"""A demand chain: (any of these chains with weight, slot weight, the label it came from)."""


@dataclass(frozen=True)
class SupplierDoc:
    id: str
    kind: Kind
    name: str
    organization: str = ""
    district: str = ""
    description: str = ""
    industry_chains: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    equipment: tuple[str, ...] = ()
    certifications: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    accepts_vouchers: bool = False
    level: str | None = None


@dataclass(frozen=True)
class DemandQuery:
    title: str
    description: str = ""
    industry_chains: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    stage: str | None = None
    district: str | None = None
    needs_voucher: bool = False
    required_certifications: tuple[str, ...] = ()


@dataclass(frozen=True)
class RankingWeights:
    """Every weight and penalty of the ranker. The base score is ``text * relative similarity
    + chain * chain score + tag * tag score`` (at most ``text + chain + tag``); constraints
    multiply it by factors near 1."""

    # -- supplier fields in the text vector -----------------------------------------------
    name: float = 3.0
    """Weight of the supplier's name (says what it does in a few words)."""
    tags: float = 3.0
    """Weight of the supplier's sub-field tags."""
    capabilities: float = 2.0
    """Weight of the capability phrases."""
    equipment: float = 1.0
    """Weight of the equipment names."""
    description: float = 1.0
    """Weight of the long description (many words, each says less)."""
    organization: float = 0.5
    """Weight of the operating organisation's name."""
    supplier_chains: float = 0.5
    """Weight of the supplier's chain names as text."""
    bigram: float = 0.5
    """A Chinese character bigram counts this much of a word: bigrams catch compounds the
    dictionary lacks, but they also catch accidental pairs across word boundaries."""

    common_term_share: float = 0.5
    """A demand's term held by more than this share of the suppliers is left out of its
    query (scikit-learn's ``max_df``, on the query side only), unless all its terms are: it
    barely tells suppliers apart, yet its postings are the longest to read. On the
    development set, shares from 0.2 to 0.5 move nDCG@10 by at most 0.004 either way; at 100k
    synthetic suppliers, 0.5 leaves out about a quarter of the postings a query reads."""
    common_term_min_catalog: int = 100
    """... in a catalog of at least this many suppliers (at the last full build): in a
    small one, a share of holders says little."""

    # -- demand fields in the query vector ------------------------------------------------
    query_title: float = 2.0
    """Weight of the demand's title."""
    query_tags: float = 2.0
    """Weight of the demand's tags."""
    query_description: float = 1.0
    """Weight of the demand's description."""
    query_chains: float = 0.5
    """Weight of the demand's chain labels as text."""

    # -- the parts of the score -----------------------------------------------------------
    text: float = 1.0
    """Weight of the relative text similarity: the cosine divided by the best cosine among the
    eligible suppliers, so 1.0 for the best text match whatever the query's length. Raw cosines
    of a terse and of a long demand differ by a factor of ten; relative ones keep the chain
    and tag parts equally weighty for both."""
    chain: float = 0.2
    """Weight of the industry-chain score (0..1)."""
    tag: float = 0.3
    """Weight of the sub-field tag score (0..1)."""
    inferred_chain_confidence: float = 0.7
    """The chain part counts this fraction when the demand's chains were inferred (from its
    text, or from its nearest suppliers) rather than named: inference can be wrong."""
    neighbour_chains: int = 10
    """When a demand names no chain and its text holds no chain term (a chain's name or
    alias, a sub-field), its chains are voted by the ``neighbour_chains`` suppliers whose
    text is most like the demand's, each with its cosine (source "neighbours"): the catalog's
    own labels stand in for the taxonomy's words, as in a nearest-neighbour classifier.
    0 turns the vote off. On the development set any value from 3 to 20 gives the same
    rankings, nDCG@10 up 0.0035 (full form) and 0.0046 (short), all of it on demands naming
    no chain; no demand ranks worse."""

    # -- sub-field tags -------------------------------------------------------------------
    tag_fuzzy_threshold: float = 88.0
    """Lowest rapidfuzz ratio (0..100) at which two tags are near-identical (one typo or
    variant spelling in a tag of eight characters or more)."""
    tag_fuzzy_credit: float = 0.9
    """Credit of a near-identical tag (an identical one gets 1.0)."""
    tag_partial_credit: float = 0.6
    """Credit of a tag containing the other (SMT in SMT贴片, 功率模块 in 功率模块封装)."""
    tag_in_text: float = 0.5
    """Weight of a catalog tag found in the demand's title or description, relative to a tag
    the demand lists (1.0)."""

    # -- constraints: factors multiplying the score ----------------------------------------
    stage_mismatch: float = 0.1
    """The score is multiplied by ``1 - stage_mismatch * steps``, steps being the distance
    (1 or 2, capped) from the demand's stage to the nearest stage the supplier offers: a
    proof-of-concept lab is a weaker answer to a pilot-run demand, a pilot platform to
    small-batch trial production. Multiplying (rather than subtracting) lowers the strong
    matches most, as a judge does: a mismatched stage costs a good match its top grade."""
    stage_unknown: float = 0.03
    """Factor ``1 - stage_unknown`` when the demand names a stage and the supplier lists none."""
    voucher_missing: float = 0.5
    """Factor ``1 - voucher_missing`` when the demand needs pilot-test vouchers and the
    supplier takes none: such a supplier is at best a partial match."""
    district_match: float = 0.03
    """Factor ``1 + district_match`` when the supplier is in the demand's preferred district
    (a soft preference)."""
    kind_lean: float = 0.05
    """Factor ``1 - kind_lean * lean`` for the kind of supplier the demand does not lean to,
    lean in 0..1: small-batch trial production and OEM (stage 小批量试产; 代工, 打样, 小批量,
    试产, OEM in the title or tags) lean to contract manufacturers, proof of concept, small
    trials, process validation and scale-up lean to platforms."""
    scale_mismatch: float = 0.1
    """Factor ``1 - scale_mismatch`` when the supplier advertises volume production only
    (量产, 大批量 in its name, tags or capabilities, and no small-batch or sampling service)
    while the demand is a pilot or small-batch need."""
    batch_mismatch: float = 0.3
    """Largest cut for a batch-size mismatch: the factor is ``1 - batch_mismatch * m``, ``m``
    rising from 0 (the supplier's batch limits meet the demand's quantity) to 1 when they
    miss each other by ``batch_full_ratio`` or more (log scale: missing by the square root
    of it gives half). Read by ``services.matching.quantities`` (单批最低3吨 against 500升;
    5片起做 against 200只 meets)."""
    batch_full_ratio: float = 10.0
    """How far apart (a ratio of quantities) a supplier's batch limits and a demand's
    quantity must be for the whole ``batch_mismatch`` cut."""
    disclaimer: float = 0.5
    """Factor ``1 - disclaimer * cosine(demand, what the supplier disclaims)``: a supplier
    whose description rules out what the demand asks (不能加工碳化硅晶圆, 尚未取得CNAS认可; see
    ``services.matching.disclaimers``) falls, by up to half when the demand is all it rules
    out. Disclaimed text is also left out of the text part. On the development set, 0.5 to 1.0
    give the same nDCG@10 within 0.001; 2.0 and more overshoot (a supplier may rule out one
    step and still do the rest)."""
    disclaimer_substantive: float = 0.05
    """A supplier rules out what the demand asks *substantively* when that cosine is at least
    this: several of the demand's weighty terms in its own "we do not" statements, not one
    common word (a cosine near 0.02). Values from 0.02 to 0.07 rank the development set the
    same within 0.001."""
    disclaimer_cap: float = 0.5
    """Such a supplier is a partial match at best, however well the rest of its text matches
    (as for a demand's missing voucher, the user reads its "we do not" and moves on): its score
    is capped near ``disclaimer_cap`` times the best score among the scored suppliers that rule
    out nothing substantive, so that it falls below the good matches without falling below
    the irrelevant ones, as the plain factor above would. On the development set nDCG@10 rose
    from 0.9313 to 0.9394 (full form) and from 0.9185 to 0.9340 (short), in both held-out
    halves; caps from 0.3 to 0.9 all gain at least 0.006 (full) and 0.013 (short)."""
    fit_cap: float = 0.9
    """A supplier that does not offer the demand's stage, or is of the kind the demand does
    not lean to (``kind_lean``), is not an ideal match: the grading rule (and a user) lowers a
    match missing the stage, and on the development set none of 244 such suppliers among the
    top 20 is graded 3. Besides its factor, its score is capped near ``fit_cap`` times the best
    score among the scored suppliers that fit (offer the stage, or list none; are of the kind
    leaned to), so that a better-fitting supplier comes first unless the other is far better.
    nDCG@10 0.9400 -> 0.9515 (full form), 0.9340 -> 0.9371 (short), no demand worse; caps
    from 0.8 to 0.95 give the same."""
    cap_slope: float = 0.1
    """Above a cap (``disclaimer_cap``, ``fit_cap``), this share of the excess still counts,
    so capped suppliers keep their order among themselves (a hard cap would tie them and order
    them by id); never above the best score they are capped against."""

    # -- outcomes of earlier matches (services/matching/outcomes.py) -----------------------
    outcome_beta: float = 0.4
    """Factor ``1 + clamp(outcome_beta * (positive - declined) / (positive + declined +
    outcome_prior), -outcome_max_penalty, +outcome_max_boost)`` from a supplier's earlier
    matches of demands of the same kind (primary industry chain): positive are contacted,
    visited, contracted and completed, counting each demand's latest outcome once. With the
    defaults one decline gives 0.90, three 0.80, five or more 0.75; one positive 1.10."""
    outcome_prior: float = 3.0
    """Pseudo-count that damps thin evidence: one outcome is not a track record."""
    outcome_max_penalty: float = 0.25
    """Outcomes take at most this fraction of a supplier's score: relevance stays first."""
    outcome_max_boost: float = 0.10
    """Outcomes add at most this fraction to a supplier's score (and to the search bound)."""

    # -- output ---------------------------------------------------------------------------
    matched_terms: int = 5
    """How many of the top-contributing terms the explanation lists."""


@dataclass(frozen=True)
class Match:
    supplier_id: str
    kind: str
    name: str
    score: float
    explanation: dict[str, Any]


# --------------------------------------------------------------------------- cue words

# Manufacturer cues: the demand wants pieces made (small batch, samples, OEM).
_MANUFACTURER_CUES: tuple[str, ...] = (
    "代工", "打样", "小批量", "试产", "量产", "受托生产", "委托生产", "委托加工", "首单",
    "首批", "贴片加工", "样件", "oem", "odm", "ems", "small batch", "low volume",
    "contract manufactur", "trial production", "pilot run", "mass production",
)  # fmt: skip
# Platform cues: the demand wants something found out (validated, tested, scaled up).
_PLATFORM_CUES: tuple[str, ...] = (
    "验证", "测试", "检测", "评价", "评估", "放大", "开发", "可行性", "表征", "分析",
    "仿真", "研发", "优化", "认证", "检验", "validat", "test", "feasib", "characteri",
    "simulat", "scale-up", "scale up", "measure", "commission", "certif",
)  # fmt: skip
# A supplier advertising volume production ...
_VOLUME_CUES: tuple[str, ...] = ("量产", "大批量", "规模化生产", "mass production")
# ... unless it also offers the small-batch end.
_SMALL_BATCH_CUES: tuple[str, ...] = (
    "小批量", "打样", "试产", "小单", "样品", "样件", "快反", "首单", "试制", "中试", "prototype",
)  # fmt: skip
_STAGE_LEAN: dict[str, float] = {"概念验证": -1.0, "小试": -0.5, "中试": 0.0, "小批量试产": 1.0}
"""Lean of a stage toward manufacturers (+) or platforms (-)."""

_CERT_SUFFIX = re.compile(r"(体系认证|认证证书|体系|认证|认可|资质|证书|certified|certification)$")
_CERT_YEAR = re.compile(r"(:|-|/)?(19|20)\d\d$")
_NON_ALNUM = re.compile(r"[\W_]+")
_LATIN_CHAR = re.compile(r"[a-z0-9]")


def normalize_certification(label: str) -> str:
    """Comparison key of a certification: NFKC, upper case, a trailing year or generic word
    (认证, 体系, certified) dropped, only letters and digits kept: ``ISO 9001:2015``,
    ``iso9001`` and ``ISO 9001 认证`` all give ``ISO9001``."""
    text = unicodedata.normalize("NFKC", label).strip().lower()
    text = _CERT_SUFFIX.sub("", text).strip()
    compact = _NON_ALNUM.sub("", text)
    year = _CERT_YEAR.search(text)
    if year and len(compact) > 8:  # ISO9001 2015 -> ISO9001, never a bare number
        compact = _NON_ALNUM.sub("", text[: year.start()])
    return compact.upper()


# --------------------------------------------------------------------------- helpers


class _TermFinder:
    """Finds known terms in a normalised text: at each position the longest term starting
    there, then past it (leftmost-longest, no overlaps). A term beginning or ending with a
    Latin letter or digit must not continue a Latin word (``ic`` is not found in ``electronic``)."""

    def __init__(self, terms: Iterable[str], *, max_len: int = 16) -> None:
        self.terms: frozenset[str] = frozenset(t for t in terms if 2 <= len(t) <= max_len)
        # The lengths of the terms starting with each two characters, longest first: at a
        # position only those lengths are tried (most positions start no term at all).
        lengths: dict[str, set[int]] = {}
        for t in self.terms:
            lengths.setdefault(t[:2], set()).add(len(t))
        self._lengths = {k: tuple(sorted(v, reverse=True)) for k, v in lengths.items()}

    def find(self, text: str) -> list[str]:
        found: list[str] = []
        i, n = 0, len(text)
        lengths = self._lengths
        while i < n:
            hit = None
            for size in lengths.get(text[i : i + 2], ()):
                if size > n - i:
                    continue
                piece = text[i : i + size]
                if piece in self.terms and self._bounded(text, i, i + size):
                    hit = piece
                    break
            if hit is None:
                i += 1
            else:
                found.append(hit)
                i += len(hit)
        return found

    @staticmethod
    def _bounded(text: str, start: int, end: int) -> bool:
        if _LATIN_CHAR.match(text[start]) and start > 0 and _LATIN_CHAR.match(text[start - 1]):
            return False
        return not (
            _LATIN_CHAR.match(text[end - 1]) and end < len(text) and _LATIN_CHAR.match(text[end])
        )


def _contains_any(text: str, cues: Iterable[str]) -> list[str]:
    return [c for c in cues if c in text]


class _Vocabulary:
    """Term -> column id. A snapshot's vocabulary is never changed once it serves: ``grown``
    gives a copy that shares the (large) base mapping and copies only the few terms added
    since the last full build, so that ``with_changes`` stays cheap."""

    __slots__ = ("_base", "_base_terms", "_extra", "_extra_terms", "_shared")

    def __init__(self) -> None:
        self._base: dict[str, int] = {}
        self._base_terms: list[str] = []
        self._extra: dict[str, int] = {}
        self._extra_terms: list[str] = []
        self._shared = False  # the base belongs to an older snapshot too

    def get(self, term: str) -> int | None:
        j = self._base.get(term)
        return self._extra.get(term) if j is None else j

    def ids(self, terms: Sequence[str], grow: bool) -> list[int]:
        """The ids of ``terms``, in order; a term not in the vocabulary is added to it
        (``grow``) or left out. One C-level lookup per term in the common case (a build looks
        up some 4M terms at 100k suppliers)."""
        found = list(map(self._base.get, terms)) if not self._extra else list(map(self.get, terms))
        if None not in found:
            return found  # type: ignore[return-value]  # no None in it
        out: list[int] = []
        for term, j in zip(terms, found, strict=True):
            if j is None:
                j = self.get(term)  # added a moment ago, by an earlier copy of it
                if j is None:
                    if not grow:
                        continue
                    j = self.add(term)
            out.append(j)
        return out

    def add(self, term: str) -> int:
        """Add a term (only on a vocabulary no snapshot serves yet)."""
        j = len(self)
        if self._shared:
            self._extra[term] = j
            self._extra_terms.append(term)
        else:
            self._base[term] = j
            self._base_terms.append(term)
        return j

    def term(self, j: int) -> str:
        n = len(self._base_terms)
        return self._base_terms[j] if j < n else self._extra_terms[j - n]

    def grown(self) -> _Vocabulary:
        """A copy to add terms to; this one is left as it is."""
        new = _Vocabulary()
        new._base, new._base_terms = self._base, self._base_terms
        new._extra, new._extra_terms = dict(self._extra), list(self._extra_terms)
        new._shared = True
        return new

    def __len__(self) -> int:
        return len(self._base_terms) + len(self._extra_terms)


@dataclass(frozen=True)
class _Segment:
    """Rows of the index: the main segment of the last full build, or the delta segment of
    the suppliers added or replaced since (small, rebuilt by each ``with_changes``)."""

    docs: tuple[SupplierDoc, ...]
    # docs x terms, l2-normalised tf-idf, by row: kept for the small delta segment only
    # (``with_changes`` carries its rows over); the main segment's would double the index.
    X: sp.csr_matrix | None
    Xc: sp.csc_matrix  # the same, by column: the inverted index
    T: sp.csc_matrix  # docs x tags (binary)
    C: sp.csc_matrix  # docs x certifications (binary)
    # docs x terms, l2-normalised tf-idf of what each supplier says it does not do
    # (``services.matching.disclaimers``), by row: only the scored candidates' rows are read.
    # Empty for most rows; about 8 MiB at 100k suppliers of which a third disclaim something.
    Dr: sp.csr_matrix

    @classmethod
    def of(
        cls,
        docs: tuple[SupplierDoc, ...],
        X: sp.csr_matrix,
        T: Any,
        C: Any,
        D: Any,
        rows: bool = True,
    ) -> _Segment:
        """``rows``: keep the matrix by row as well as by column."""
        X = sp.csr_matrix(X)
        X.sort_indices()
        Xc = sp.csc_matrix(X)
        Xc.sort_indices()  # explanations binary-search the postings
        Dr = sp.csr_matrix(D, dtype=np.float32)
        Dr.sort_indices()
        return cls(docs, X if rows else None, Xc, sp.csc_matrix(T), sp.csc_matrix(C), Dr)

    def column(self, matrix: sp.csc_matrix, j: int) -> IntArray:
        """Rows holding column ``j`` (none when ``j`` is newer than the matrix)."""
        if j >= matrix.shape[1]:
            return _NO_ROWS
        return matrix.indices[matrix.indptr[j] : matrix.indptr[j + 1]]


_NO_ROWS: IntArray = np.zeros(0, dtype=np.int32)


def _nothing_disclaimed(language: Language = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """The disclaimer constraint's details when the supplier rules out none of the demand."""
    return {"reason": say("disclaims_nothing", language), "terms": [], "statements": []}


_COUNT_SLICE = 8192
"""Documents whose term counts are made at once (bounds a build's temporary memory)."""

_EAGER_WORKERS = 10_000
"""From this many suppliers, ``build`` starts its text-analysis workers before it knows how
many clauses there are (a smaller catalog starts them only if it has enough to share)."""

SHORTLIST = 64
"""Candidates scored in full before the others are bounded (plus four per result asked)."""


# --------------------------------------------------------------------------- the index


class MatchIndex:
    """An immutable snapshot of the catalog, ready to rank demands against."""

    _DOC_FIELDS: tuple[str, ...] = (
        "name",
        "tags",
        "capabilities",
        "equipment",
        "description",
        "organization",
        "supplier_chains",
    )
    _QUERY_FIELDS: tuple[str, ...] = (
        "query_title",
        "query_tags",
        "query_description",
        "query_chains",
    )

    def __init__(self) -> None:  # use build() or with_changes()
        self.weights: RankingWeights
        self.taxonomy: Taxonomy
        self._analyzer: Analyzer
        self._vocabulary: _Vocabulary
        self._term_factor: FloatArray
        self._idf: FloatArray
        self._common_idf: float  # a query term with an idf below it is common
        # Rows: the main segment (the last full build; rows deleted or replaced since are
        # masked out by ``_alive``), then the delta segment (rows added since). Row ``d`` of
        # the index is main row ``d`` below ``_n_main``, delta row ``d - _n_main`` above.
        self._main: _Segment
        self._delta: _Segment
        self._n_main: int
        self._alive: npt.NDArray[np.bool_]  # main rows still in the catalog
        self._size: int
        self._position_main: dict[str, int]  # shared by every snapshot of one full build
        self._position_delta: dict[str, int]
        # Per row, main then delta:
        self._chain_profile: FloatArray  # rows x chains: best relatedness to each chain
        self._kind: npt.NDArray[np.int8]  # 0 platform, 1 manufacturer
        self._vouchers: npt.NDArray[np.bool_]
        self._stage_gap: npt.NDArray[np.int8]  # rows x stages: steps to nearest offered, -1 none
        self._district: IntArray
        self._volume_only: npt.NDArray[np.bool_]
        self._batch: FloatArray  # rows x (count low, high, amount low, high); nan: not stated
        self._tag_vocabulary: dict[str, int]
        self._tag_keys: list[str]
        self._certs: dict[str, int]
        self._districts: dict[str, int]
        self._chain_finder: _TermFinder
        self._chain_terms: dict[str, tuple[int, ...]]
        self._tag_finder: _TermFinder
        self._tag_match_cache: dict[str, tuple[tuple[int, float], ...]]
        self._tag_rows_cache: _RowsCache  # main rows per demand tag, like the one above
        self._tag_keys_of: dict[str, str] = {}  # tag -> its comparison key (a cache)
        self._term_labels: dict[int, str] = {}  # term id -> its label in explanations (a cache)
        # A term -> how the taxonomy and vocabularies write it (cnc加工 -> CNC加工), for terms a
        # demand does not write itself (an alias's canonical term, a glossary's Chinese).
        self._written_forms: dict[str, str] = {}
        # A text -> the statements it rules something out with, as written and normalised.
        self._disclaimed_parts_of: dict[str, tuple[tuple[str, str], ...]] = {}
        self._kind_masks: dict[str, npt.NDArray[np.bool_] | None] = {}  # per snapshot (a cache)
        self._chain_ids_of: dict[tuple[str, ...], list[int]] = {}  # chain labels -> ids (a cache)
        # Per snapshot (a cache): the neighbour vote of the demands ranked last, so that
        # ``demand_chains`` after ``rank`` (broker suggestions) does not search again.
        self._voted_chains: dict[tuple[Any, ...], list[Slot]] = {}
        self._tag_synonyms: dict[str, str]  # alias's plain key -> canonical term's plain key
        self._chain_names: list[str]
        self._relatedness: FloatArray
        # Per thread, a dense query vector over the vocabulary, all zeros between uses (see
        # ``_disclaimed_scores``): one per thread, as requests rank in a thread pool.
        self._scratch = threading.local()

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        suppliers: Sequence[SupplierDoc],
        taxonomy: Taxonomy,
        weights: RankingWeights = RankingWeights(),
        *,
        workers: int | None = None,
    ) -> MatchIndex:
        """Fit an index of ``suppliers``. ``workers``: extra processes sharing the text
        analysis of a large catalog (default: one when the machine has two cores or more;
        0 for none)."""
        self = cls()
        self.weights = weights
        self.taxonomy = taxonomy
        domain: list[str] = []
        for chain in taxonomy.chains:
            domain.extend((chain.name, *chain.aliases, *chain.traditional, *chain.subfields))
        for doc in suppliers:
            domain.extend(doc.tags)
            domain.extend(c for c in doc.capabilities if len(c) <= 8)
        synonyms = text_synonyms(taxonomy)
        self._analyzer = Analyzer(dict.fromkeys(domain), synonyms=synonyms)
        self._written_forms = _written_forms(self._analyzer, taxonomy, synonyms)
        if workers is None:
            workers = min(1, (os.cpu_count() or 1) - 1)
        # A large catalog's workers start now: their start-up (a second or two) overlaps the
        # set-up below and the cutting of the catalog's texts into clauses.
        pool = (
            self._analyzer.start_workers(workers)
            if workers > 0 and len(suppliers) >= _EAGER_WORKERS
            else None
        )
        try:
            return self._fit(suppliers, synonyms, workers, pool)
        finally:
            if pool is not None:
                pool.close()

    def _fit(
        self,
        suppliers: Sequence[SupplierDoc],
        synonyms: dict[str, str],
        workers: int,
        pool: WorkerPool | None,
    ) -> MatchIndex:
        """The rest of ``build``; ``pool``, if any, is shut down once the texts are
        analysed."""
        weights = self.weights
        self._tag_synonyms = {}
        for alias, term in synonyms.items():
            alias_key, term_key = self._plain_tag_key(alias), self._plain_tag_key(term)
            if alias_key and term_key and alias_key != term_key:
                self._tag_synonyms[alias_key] = term_key
        self._vocabulary = _Vocabulary()
        self._chain_index()
        self._tag_vocabulary = {}
        self._tag_keys = []
        self._certs = {}
        self._districts = {}
        docs = self._dedupe(suppliers)
        disclaimed: dict[str, str] = {}
        counts = self._term_counts(docs, workers, disclaimed=disclaimed, pool=pool)
        self._term_factor = self._factor_of(0)
        counts = self._weigh_terms(counts)
        if counts.shape[0] and counts.shape[1]:
            # idf = ln((1 + n) / (1 + df)) + 1, scikit-learn's smooth idf.
            tfidf = TfidfTransformer(norm="l2", use_idf=True, smooth_idf=True).fit(counts)
            self._idf = tfidf.idf_.astype(np.float32)
        else:
            self._idf = np.ones(counts.shape[1], dtype=np.float32)
        n = counts.shape[0]
        self._common_idf = (
            math.log((1.0 + n) / (1.0 + weights.common_term_share * n)) + 1.0
            if n >= weights.common_term_min_catalog
            else -math.inf
        )  # the idf formula above at df = common_term_share * n
        X = self._tfidf_rows(counts)
        del counts  # consumed: at 100k suppliers it is as large as the index's rows
        features = self._features(docs)
        D = self._disclaimed_rows(docs, disclaimed)
        del disclaimed
        main = _Segment.of(docs, X, features["tags"], features["certs"], D, rows=False)
        del X
        self._main = main
        self._n_main = len(docs)
        self._alive = np.ones(len(docs), dtype=bool)
        self._position_main = {d.id: i for i, d in enumerate(docs)}
        self._delta = self._empty_segment()
        self._position_delta = {}
        self._set_rows(features)
        self._size = len(docs)
        self._tag_finder = self._make_tag_finder()
        self._tag_match_cache = {}
        self._tag_rows_cache = _RowsCache()
        return self

    def with_changes(self, upserts: Sequence[SupplierDoc], deletes: Sequence[str]) -> MatchIndex:
        """A new index with suppliers added, replaced or removed; this index is left unchanged
        (it may keep serving concurrent requests).

        The main segment of the last full build is shared, its removed or replaced rows masked
        out; the upserted suppliers join the small delta segment, so the cost follows the
        number of changes (and the delta's size), not the catalog's. Terms, tags,
        certifications and districts the index has not seen are added to the new index's
        vocabularies; a new term's idf is the fitted formula, ``ln((1 + n) / (1 + df)) + 1``,
        with n the suppliers after the change and df the upserted suppliers holding it. The
        idf of known terms stays as fitted until the next full build."""
        upserts = self._dedupe(upserts)
        gone = set(deletes) | {d.id for d in upserts}
        new = self._clone()
        # Main rows leave by their mask.
        dead = [i for s in gone if (i := self._position_main.get(s)) is not None]
        alive = self._alive
        if dead:
            alive = alive.copy()
            alive[dead] = False
        new._alive = alive
        # Delta rows are carried over unless removed or replaced, then the upserts appended.
        keep = [i for i, d in enumerate(self._delta.docs) if d.id not in gone]
        new._vocabulary = self._vocabulary.grown()
        new._tag_vocabulary = dict(self._tag_vocabulary)
        new._tag_keys = list(self._tag_keys)
        new._certs = dict(self._certs)
        new._districts = dict(self._districts)
        n_terms = len(self._vocabulary)
        disclaimed: dict[str, str] = {}
        counts = new._term_counts(upserts, disclaimed=disclaimed)
        size = int(alive.sum()) + len(keep) + len(upserts)
        grown = len(new._vocabulary) - n_terms
        if grown:
            # df of each new term among the upserts (no other supplier can hold it).
            df = np.bincount(counts.indices, minlength=len(new._vocabulary))[n_terms:]
            idf = np.log((1.0 + size) / (1.0 + df)) + 1.0
            new._idf = np.concatenate([self._idf, idf.astype(np.float32)])
            new._term_factor = np.concatenate([self._term_factor, new._factor_of(n_terms)])
        X_new = new._tfidf_rows(new._weigh_terms(counts))
        features = new._features(upserts)
        width = len(new._vocabulary)
        old = self._delta
        rows = np.asarray(keep, dtype=np.int64)
        assert old.X is not None  # a delta segment keeps its rows
        X = sp.vstack([_widen(sp.csr_matrix(old.X)[rows], width), X_new], format="csr")
        T = _vstack(sp.csr_matrix(old.T)[rows], features["tags"])
        C = _vstack(sp.csr_matrix(old.C)[rows], features["certs"])
        D = _vstack(old.Dr[rows], new._disclaimed_rows(upserts, disclaimed))
        new._delta = _Segment.of(
            tuple(old.docs[i] for i in keep) + upserts, sp.csr_matrix(X), T, C, D
        )
        new._position_delta = {d.id: self._n_main + i for i, d in enumerate(new._delta.docs)}
        carried = self._n_main + rows
        main_rows = slice(0, self._n_main)
        for key, values in features.items():
            if key in ("tags", "certs"):
                continue
            current = getattr(self, f"_{key}")
            setattr(new, f"_{key}", np.concatenate([current[main_rows], current[carried], values]))
        new._size = size
        if len(new._tag_keys) != len(self._tag_keys):
            new._tag_finder = new._make_tag_finder()
            new._tag_match_cache = {}  # credits are per tag vocabulary
            new._tag_rows_cache = _RowsCache()
        return new

    def __len__(self) -> int:
        return self._size

    def get(self, supplier_id: str) -> SupplierDoc | None:
        i = self._row_of(supplier_id)
        return None if i is None else self._doc(i)

    def _row_of(self, supplier_id: str) -> int | None:
        i = self._position_delta.get(supplier_id)
        if i is None:
            i = self._position_main.get(supplier_id)
            if i is not None and not self._alive[i]:
                return None
        return i

    def _doc(self, d: int) -> SupplierDoc:
        n = self._n_main
        return self._main.docs[d] if d < n else self._delta.docs[d - n]

    def _row(self, d: int) -> tuple[IntArray, FloatArray]:
        """(term ids, weights) of row ``d``, term ids ascending. The main segment keeps no
        rows: its row is made again from the supplier's text, with the same vocabulary, idf
        and arithmetic, hence the same values (for ``similar``, about a millisecond)."""
        segment, i = (self._main, d) if d < self._n_main else (self._delta, d - self._n_main)
        X = segment.X
        if X is None:
            X = self._tfidf_rows(
                self._weigh_terms(self._term_counts([segment.docs[i]], grow=False))
            )
            X.sort_indices()
            i = 0
        a, b = X.indptr[i], X.indptr[i + 1]
        return X.indices[a:b], X.data[a:b]

    # -- ranking --------------------------------------------------------------------------

    def rank(
        self,
        demand: DemandQuery,
        kind: KindFilter = "all",
        limit: int = 10,
        outcomes: KindOutcomes | None = None,
        *,
        explain: bool = True,
        language: Language = DEFAULT_LANGUAGE,
    ) -> list[Match]:
        """The best ``limit`` suppliers for ``demand``, best first; ``outcomes``: the evidence
        of earlier matches of the demand's kind (``services.matching.outcomes``), if any;
        ``language``: that of the explanations' reasons (``services.matching.messages``).
        ``explain=False`` skips the explanations (an empty dict each): the same suppliers in
        the same order, for callers that need only ids and scores (the webhook notifier), at
        about half the cost."""
        w = self.weights
        if self._size == 0 or limit <= 0:
            return []
        outcome_rows = self._outcome_factors(outcomes)
        text_norm = self._analyzer.normalize(
            " ".join((demand.title, " ".join(demand.tags), demand.description))
        )
        cols, data = self._query_vector(self._query_fields(demand))
        slots, chain_source, similarity = self._chains_and_similarity(
            demand, text_norm, (cols, data)
        )
        tag_weights = self._demand_tags(demand)
        tag_score, tag_hits = self._tag_scores(tag_weights)
        chain_weight = w.chain * (w.inferred_chain_confidence if chain_source != "given" else 1)
        cues = self._cues(demand)
        any_disclaimers = bool(self._main.Dr.nnz or self._delta.Dr.nnz)

        def score(candidates: IntArray, similarity: FloatArray, best: float) -> _Scored:
            chain_score = self._chain_scores(slots, candidates)
            disclaimed = (
                self._disclaimed_scores(candidates, cols, data) if any_disclaimers else None
            )
            factors = self._factors(demand, candidates, cues, disclaimed)
            if outcome_rows is not None:
                factors["outcomes"] = outcome_rows[candidates]
            relative, total = self._combine_parts(
                similarity, best, chain_weight * chain_score, tag_score[candidates], factors
            )
            total, capped = self._caps(demand, candidates, cues, total, disclaimed, factors)
            return _Scored(candidates, similarity, relative, total, chain_score, factors, capped)

        max_factor = 1.0 + w.district_match if demand.district else 1.0
        if outcome_rows is not None:  # the bound must hold the largest boost
            max_factor *= max(1.0, float(outcome_rows.max()))
        eligible = self._eligible(kind, demand.required_certifications)
        scored = self._search(
            (cols, data),
            (tag_score, bool(tag_hits)),
            eligible,
            score,
            limit,
            (chain_weight, max_factor),
            similarity,
        )
        if not explain:
            return [
                Match(doc.id, doc.kind, doc.name, round(float(scored.total[j]), 6), {})
                for d, j in self._top(scored, limit)
                for doc in (self._doc(d),)
            ]
        best = self._top(scored, limit)
        texts = (demand.title, *demand.tags, demand.description)
        spell = _as_written(texts, self._written_forms)
        terms = self._top_terms(cols, data, [d for d, _ in best], spell, self._words_of(texts))
        hit_credits = {key: dict(matches) for key, matches in tag_hits.items()}
        tag_names = self._demand_tag_names(demand, tag_weights, spell)
        return [
            self._match(
                d,
                float(scored.total[j]),
                text=(float(scored.similarity[j]), float(scored.relative[j]), matched),
                chain=(chain_weight, float(scored.chain_score[j]), slots, chain_source),
                tags=(float(tag_score[d]), hit_credits, tag_weights, tag_names),
                constraints=self._constraint_details(
                    demand,
                    (d, j),
                    scored.factors,
                    cues,
                    outcomes,
                    (cols, data),
                    capped={name for name, rows in scored.capped.items() if rows[j]},
                    language=language,
                    spell=spell,
                ),
            )
            for (d, j), matched in zip(best, terms, strict=True)
        ]

    def clear_text_cache(self) -> None:
        """Forget the analysed clauses of suppliers and demands (``Analyzer.clear_cache``):
        what a benchmark calls to time queries whose text the index has not seen."""
        self._analyzer.clear_cache()

    def demand_chains(self, demand: DemandQuery) -> tuple[list[str], str]:
        """The demand's chains as ranking reads them (named, or inferred from its text or from
        its nearest suppliers) and where they came from: "given", "inferred", "neighbours" or
        "none"."""
        text_norm = self._analyzer.normalize(
            " ".join((demand.title, " ".join(demand.tags), demand.description))
        )
        slots, source = self._demand_chains(demand, text_norm)
        if source == "none" and self.weights.neighbour_chains > 0:
            voted = self._voted_chains.get(self._vote_key(demand))
            if voted is None:
                slots, source, _ = self._chains_and_similarity(
                    demand, text_norm, self._query_vector(self._query_fields(demand))
                )
            else:
                slots, source = voted, ("neighbours" if voted else "none")
        names = [self._chain_names[i] for options, _, _ in slots for i, _ in options]
        return list(dict.fromkeys(names)), source

    def _chains_and_similarity(
        self, demand: DemandQuery, text_norm: str, query: tuple[IntArray, FloatArray]
    ) -> tuple[list[Slot], str, FloatArray | None]:
        """(slots, source, similarity): the demand's chains as ``_demand_chains`` reads them
        or, when those find none, as its nearest suppliers vote them
        (``RankingWeights.neighbour_chains``); the cosine of the query with every row when
        the vote needed it (None otherwise), for the search to reuse."""
        slots, source = self._demand_chains(demand, text_norm)
        if source != "none" or self.weights.neighbour_chains <= 0 or not len(query[0]):
            return slots, source, None
        similarity = self._similarity(*query)
        slots = self._neighbour_slots(similarity)
        if len(self._voted_chains) >= 1024:
            self._voted_chains.clear()
        self._voted_chains[self._vote_key(demand)] = slots
        return slots, ("neighbours" if slots else "none"), similarity

    @staticmethod
    def _vote_key(demand: DemandQuery) -> tuple[Any, ...]:
        """What the neighbour vote depends on: the texts of the query."""
        return (demand.title, tuple(demand.tags), demand.description, tuple(demand.industry_chains))

    def _neighbour_slots(self, similarity: FloatArray) -> list[Slot]:
        """Chains voted by the suppliers still in the catalog whose text is most like the
        query's, each vote weighing its cosine."""
        alive = self._eligible("all", ())
        values = similarity if alive is None else similarity * alive
        k = self.weights.neighbour_chains
        nearest = _largest(values, k) if len(values) > k else np.arange(len(values))
        votes: dict[int, float] = {}
        for d in nearest.tolist():
            cosine = float(values[d])
            if cosine > 0:
                for c in self._doc_chain_ids(self._doc(d)):
                    votes[c] = votes.get(c, 0.0) + cosine
        return _voted_slots(votes, "neighbours")

    def _combine_parts(
        self,
        similarity: FloatArray,
        best: float,
        chain_part: FloatArray,
        tag_score: FloatArray,
        factors: dict[str, FloatArray],
    ) -> tuple[FloatArray, FloatArray]:
        """(relative similarity, total score) of the candidates; ``best`` is the best
        cosine among all eligible suppliers."""
        w = self.weights
        relative = similarity / best if best > 0 else np.zeros_like(similarity)
        total = w.text * relative + chain_part + w.tag * tag_score
        for factor in factors.values():
            total = total * factor
        return relative.astype(np.float32), total.astype(np.float32)

    def _caps(
        self,
        demand: DemandQuery,
        candidates: IntArray,
        cues: _DemandCues,
        total: FloatArray,
        disclaimed: FloatArray | None,
        factors: dict[str, FloatArray],
    ) -> tuple[FloatArray, dict[str, npt.NDArray[np.bool_]]]:
        """(totals, constraint -> rows it capped): first the suppliers ruling the demand out
        substantively (``RankingWeights.disclaimer_cap``), then those missing its stage or
        kind (``fit_cap``). A cap is taken into the constraint's factor (in place), so that the
        factors still multiply to the total."""
        w = self.weights
        capped: dict[str, npt.NDArray[np.bool_]] = {}
        if disclaimed is not None:
            total = self._disclaimer_cap(total, disclaimed, factors, capped)
        misses: list[tuple[str, npt.NDArray[np.bool_]]] = []
        if "stage" in factors:
            gap = self._stage_gap[candidates, STAGES.index(demand.stage or "")]
            misses.append(("stage", gap >= 1))
        if "kind" in factors:
            misses.append(("kind", factors["kind"] < 1))
        if misses:
            misfit = np.logical_or.reduce([miss for _, miss in misses])
            total, over, ratio = self._cap(total, misfit, w.fit_cap)
            if over is not None:
                taken = np.zeros(len(total), dtype=bool)  # each cap goes into one factor
                for name, miss in misses:
                    rows = over & miss & ~taken
                    factors[name][rows] *= ratio[rows[over]]
                    taken |= rows
                    capped[name] = rows
        return total, capped

    def _disclaimer_cap(
        self,
        total: FloatArray,
        disclaimed: FloatArray,
        factors: dict[str, FloatArray],
        capped: dict[str, npt.NDArray[np.bool_]],
    ) -> FloatArray:
        """Totals with the suppliers ruling the query out substantively capped
        (``RankingWeights.disclaimer_cap``), the cap taken into ``factors["disclaimer"]`` and
        the rows it capped noted in ``capped``."""
        w = self.weights
        ruling_out = disclaimed >= np.float32(w.disclaimer_substantive)
        total, over, ratio = self._cap(total, ruling_out, w.disclaimer_cap)
        if over is not None:
            factors["disclaimer"][over] *= ratio
            capped["disclaimer"] = over
        return total

    def _disclaimer_factor(self, disclaimed: FloatArray) -> FloatArray:
        """1 - ``RankingWeights.disclaimer`` x the cosine of the query with what a supplier
        rules out."""
        return (np.float32(1.0) - np.float32(self.weights.disclaimer) * disclaimed).astype(
            np.float32
        )

    def _cap(
        self, total: FloatArray, flagged: npt.NDArray[np.bool_], share: float
    ) -> tuple[FloatArray, npt.NDArray[np.bool_] | None, FloatArray]:
        """(totals, rows capped, their new total over the old): each flagged total above
        ``share`` times the best unflagged one brought near it (``RankingWeights.cap_slope``).

        Exact under ``_search``'s pruning: the reference is the best total among the scored
        unflagged suppliers and no capped total exceeds it, so the floor of the search stays
        at or below it and no unscored supplier could have been a better reference. With every
        scored supplier flagged (a shortlist of a hundred or more) nothing is capped."""
        nothing = np.zeros(0, dtype=np.float32)
        if not flagged.any() or flagged.all():
            return total, None, nothing
        best = float(total[~flagged].max())
        ceiling = share * best
        over = flagged & (total > ceiling)
        if best <= 0 or not over.any():
            return total, None, nothing
        before = total[over].astype(np.float64)
        after = np.minimum(ceiling + self.weights.cap_slope * (before - ceiling), best)
        total = total.copy()
        total[over] = after
        return total, over, (after / before).astype(np.float32)

    def similar(
        self, supplier_id: str, limit: int = 10, *, language: Language = DEFAULT_LANGUAGE
    ) -> list[Match]:
        """Suppliers like this one (any kind, never itself): the same text, chain and tag
        scores with the supplier's own profile as the query. The one constraint is the
        disclaimer: a supplier that says it does not do what this one does is no substitute
        for it, lowered and capped as for a demand (``RankingWeights.disclaimer``,
        ``disclaimer_cap``); nothing else of a demand (stage, kind, district) applies."""
        i = self._row_of(supplier_id)
        if i is None or limit <= 0:
            return []
        w = self.weights
        doc = self._doc(i)
        cols, data = self._row(i)
        tag_weights = {k: 1.0 for k in dict.fromkeys(self._tag_key(t) for t in doc.tags) if k}
        tag_score, tag_hits = self._tag_scores(tag_weights)
        weighted_slots: list[Slot] = [
            (((c, 1.0),), 1.0, self._chain_names[c]) for c in self._chain_ids(doc.industry_chains)
        ]

        eligible = self._eligible("all", ())
        eligible = np.ones(self._size_rows(), dtype=bool) if eligible is None else eligible.copy()
        eligible[i] = False

        any_disclaimers = bool(self._main.Dr.nnz or self._delta.Dr.nnz)

        def score(candidates: IntArray, similarity: FloatArray, best: float) -> _Scored:
            chain_score = self._chain_scores(weighted_slots, candidates)
            factors: dict[str, FloatArray] = {}
            disclaimed = (
                self._disclaimed_scores(candidates, cols, data) if any_disclaimers else None
            )
            if disclaimed is not None:
                factors["disclaimer"] = self._disclaimer_factor(disclaimed)
            relative, total = self._combine_parts(
                similarity, best, w.chain * chain_score, tag_score[candidates], factors
            )
            capped: dict[str, npt.NDArray[np.bool_]] = {}
            if disclaimed is not None:
                total = self._disclaimer_cap(total, disclaimed, factors, capped)
            return _Scored(candidates, similarity, relative, total, chain_score, factors, capped)

        scored = self._search(
            (cols, data), (tag_score, bool(tag_hits)), eligible, score, limit, (w.chain, 1.0)
        )
        best = self._top(scored, limit)
        texts = (doc.name, *doc.tags, *doc.capabilities, doc.description)
        spell = _as_written(texts, self._written_forms)
        terms = self._top_terms(cols, data, [d for d, _ in best], spell, self._words_of(texts))
        hit_credits = {key: dict(matches) for key, matches in tag_hits.items()}
        tag_names = {self._tag_key(t): t for t in reversed(doc.tags)}

        def ruling_out(d: int, j: int) -> list[dict[str, Any]]:
            factor = scored.factors.get("disclaimer")
            if factor is None or factor[j] >= 1:
                return []
            capped = scored.capped.get("disclaimer")
            was_capped = capped is not None and bool(capped[j])
            query = (cols, data)
            return [
                self._disclaimer_entry(
                    d, float(factor[j]), query, was_capped, language, "wanted_by_supplier", spell
                )
            ]

        return [
            self._match(
                d,
                float(scored.total[j]),
                text=(float(scored.similarity[j]), float(scored.relative[j]), matched),
                chain=(w.chain, float(scored.chain_score[j]), weighted_slots, "given"),
                tags=(float(tag_score[d]), hit_credits, tag_weights, tag_names),
                constraints=ruling_out(d, j),
            )
            for (d, j), matched in zip(best, terms, strict=True)
        ]

    def _search(
        self,
        query: tuple[IntArray, FloatArray],
        tags: tuple[FloatArray, bool],
        eligible: npt.NDArray[np.bool_] | None,
        score: _Score,
        limit: int,
        bound: tuple[float, float],
        similarity: FloatArray | None = None,
    ) -> _Scored:
        """Score the eligible suppliers sharing a term or a tag with the query, exactly, but
        without computing every part for every one of them. ``query``: its terms and
        weights; ``tags``: the tag score of every row, and whether any is above 0;
        ``eligible``: the rows that may be returned (None: all); ``similarity``: the cosine
        of the query with every row, if already computed (it is then overwritten).

        A supplier's score is at most ``(text * relative + ceiling + tag * tag score) *
        max_factor`` (``bound``: the chain part at full credit, ``ceiling``, and the largest
        product of constraint factors). The suppliers best by that bound are scored first;
        the ``limit``-th of their scores is a floor for the result, and only suppliers whose
        bound reaches the floor are scored in full.

        Everything before the shortlist works on dense arrays over all rows, in as few passes
        as possible: at 100k rows one pass costs tens of microseconds, while gathering a
        candidate list of the same size costs several times that."""
        cols, data = query
        tag_score, any_tag = tags
        ceiling, max_factor = bound
        w = self.weights
        if similarity is None:
            similarity = self._similarity(cols, data)
        # Rows left out get a cosine of 0. Multiplying by the mask is an order of magnitude
        # faster than np.where or a masked assignment with a scalar (measured at 100k rows).
        if eligible is not None:
            similarity *= eligible
        best = float(similarity.max()) if len(similarity) else 0.0
        # The bound without its constant terms orders the rows the same way, and it is above
        # 0 exactly for the eligible rows sharing a term or a tag: the candidates.
        order = similarity * np.float32(w.text / best) if best > 0 else np.zeros_like(similarity)
        if any_tag:
            order += np.float32(w.tag) * tag_score
            if eligible is not None:
                order *= eligible
        first = SHORTLIST + 4 * limit
        top = _largest(order, first) if len(order) > first else np.arange(len(order))
        if len(order) <= first or order[top].min() <= 0:
            # Fewer candidates than the shortlist: they are all in it (without counting
            # them, a pass over every row).
            candidates = np.sort(top[order[top] > 0])
            return score(candidates, similarity[candidates], best)
        shortlist = score(top, similarity[top], best)
        floor = -float(np.partition(-shortlist.total, limit - 1)[limit - 1])
        # bound = (order + ceiling) * max_factor >= floor, solved for order once.
        threshold = (floor - 1e-5) / max_factor - ceiling
        if order[top].min() < threshold:
            # Every row left out of the shortlist has an order at most its smallest, so none
            # can reach the floor: the shortlist, scored exactly, holds the result. This is
            # the common case (a median of 20 rows reach the floor at 100k suppliers).
            return shortlist
        keep = np.flatnonzero(order >= threshold) if threshold > 0 else np.flatnonzero(order)
        return score(keep, similarity[keep], best)

    def _similarity(self, cols: IntArray, data: FloatArray) -> FloatArray:
        """Cosine of the query with every row, main then delta (a fresh array)."""
        similarity = self._segment_similarity(self._main, cols, data)
        if len(self._delta.docs):
            similarity = np.concatenate([similarity, self._delta_similarity(cols, data)])
        return similarity

    def _segment_similarity(
        self, segment: _Segment, cols: IntArray, data: FloatArray
    ) -> FloatArray:
        """Cosine of the query with every row of a segment, reading only the postings of the
        query's terms (CSC columns, multiplied in C)."""
        rows = segment.Xc.shape[0]
        inside = cols < segment.Xc.shape[1]
        if not rows or not inside.any():
            return np.zeros(rows, dtype=np.float32)
        return combine_columns(segment.Xc, cols[inside], data[inside])

    def _delta_similarity(self, cols: IntArray, data: FloatArray) -> FloatArray:
        return self._segment_similarity(self._delta, cols, data)

    def _disclaimed_scores(
        self, candidates: IntArray, cols: IntArray, data: FloatArray
    ) -> FloatArray:
        """Per candidate, the cosine of the query with what the supplier says it does not do,
        from the candidates' own rows (a few hundred postings at most): only the scored
        candidates need it."""
        out = np.zeros(len(candidates), dtype=np.float32)
        if not len(cols):
            return out
        query = self._scratch_vector()
        query[cols] = data
        try:
            for segment, offset in ((self._main, 0), (self._delta, self._n_main)):
                if not segment.Dr.nnz:
                    continue
                if offset == 0 and not len(self._delta.docs):  # every candidate is a main row
                    out = rows_times(segment.Dr, candidates, query)
                    continue
                mine = np.flatnonzero(
                    (candidates >= offset) & (candidates < offset + segment.Dr.shape[0])
                )
                if len(mine):
                    out[mine] = rows_times(segment.Dr, candidates[mine] - offset, query)
        finally:
            query[cols] = 0.0  # zeros again for the next query of this thread
        return out

    def _scratch_vector(self) -> FloatArray:
        """This thread's dense query vector (zeros), as wide as the vocabulary."""
        vector: FloatArray | None = getattr(self._scratch, "vector", None)
        if vector is None or len(vector) < len(self._vocabulary):
            vector = self._scratch.vector = np.zeros(len(self._vocabulary), dtype=np.float32)
        return vector

    # -- text -----------------------------------------------------------------------------

    def _term_counts(
        self,
        docs: Sequence[SupplierDoc],
        workers: int = 0,
        grow: bool = True,
        *,
        disclaimed: dict[str, str] | None = None,
        only_disclaimed: bool = False,
        pool: WorkerPool | None = None,
    ) -> sp.csr_matrix:
        """docs x terms: sum over fields of field weight * (1 + ln count). Terms new to the
        vocabulary are added to it, in order of first occurrence (``grow``; otherwise left
        out: a document already indexed has none).

        The description and capabilities count only what they affirm (``split_disclaimers``);
        ``disclaimed``, if given, receives the disclaimed part of each such text that has one.
        ``only_disclaimed``: count instead only the parts ``disclaimed`` holds, and no other
        field.

        Each distinct clause is analysed once (``workers`` extra processes, or the ``pool``
        already started, may share the work, see ``Analyzer.analyze_clauses``)."""
        n_fields = len(self._DOC_FIELDS)
        affirmed: dict[str, str] = {}
        ruled_out = {} if disclaimed is None else disclaimed

        def own(items: Iterable[str]) -> list[str]:
            """The affirmed part of each item, split once per distinct item."""
            out = []
            for item in items:
                part = affirmed.get(item)
                if part is None:
                    part, ruled_out_part = split_disclaimers(item)
                    affirmed[item] = part
                    if ruled_out_part:
                        ruled_out[item] = ruled_out_part
                if part:
                    out.append(part)
            return out

        def disowned(items: Iterable[str]) -> list[str]:
            return [part for item in items if (part := ruled_out.get(item))]

        def fields(doc: SupplierDoc) -> tuple[Sequence[str], ...]:
            if only_disclaimed:
                return (
                    (),
                    (),
                    disowned(doc.capabilities),
                    (),
                    disowned((doc.description,)),
                    (),
                    (),
                )
            return (
                (doc.name,),
                doc.tags,
                own(doc.capabilities),
                doc.equipment,
                own((doc.description,)),
                (doc.organization,),
                doc.industry_chains,
            )

        # Catalogs repeat items (tags, capabilities, equipment, chains): each distinct item
        # is cut into clauses once and each distinct clause analysed once. A document is then
        # the sequence of its items (``sequence``, by field: ``per_field`` items each), an
        # item the sequence of its clauses, and a document's postings are gathered from its
        # clauses' term ids with array arithmetic, each clause's ids held once. Items and
        # clauses are numbered in order of first occurrence, as the vocabulary's ids are.
        position: dict[str, int] = {}
        sequence = array("i")
        per_field = array("i")
        for doc in docs:
            for items in fields(doc):
                for item in items:
                    sequence.append(position.setdefault(item, len(position)))
                per_field.append(len(items))
        cut = self._analyzer.clauses
        clause_number: dict[str, int] = {}
        item_clauses = array("i")  # the clauses of every item, item after item
        clause_count = array("q")  # per item
        for item in position:
            found = cut(item)
            for clause in found:
                item_clauses.append(clause_number.setdefault(clause, len(clause_number)))
            clause_count.append(len(found))
        del position
        clause_terms = array("i")  # the term ids of every clause, clause after clause
        term_count = array("q")  # per clause
        ids_of = self._vocabulary.ids
        for analyzed in self._analyzer.analyze_clauses(
            list(clause_number), workers=workers, pool=pool
        ):
            found_ids = ids_of(analyzed, grow)
            clause_terms.extend(found_ids)
            term_count.append(len(found_ids))
        del clause_number
        if pool is not None:  # its processes' memory is not held through the rest of a build
            pool.close()
        items_of_doc = np.frombuffer(sequence, dtype=np.int32)
        field_ends = np.cumsum(np.frombuffer(per_field, dtype=np.int32), dtype=np.int64)
        clauses_of_item = np.frombuffer(item_clauses, dtype=np.int32)
        item_clause_counts = np.frombuffer(clause_count, dtype=np.int64)
        item_firsts = _starts(item_clause_counts)
        terms_of_clause = np.frombuffer(clause_terms, dtype=np.int32)
        clause_term_counts = np.frombuffer(term_count, dtype=np.int64)
        clause_firsts = _starts(clause_term_counts)
        field_weights = [getattr(self.weights, name) for name in self._DOC_FIELDS]
        # In slices of documents: the raw postings and their per-field matrix are several
        # times the size of the result, and only one slice's are held at a time.
        parts = []
        for start in range(0, len(docs), _COUNT_SLICE):
            n_rows = min(_COUNT_SLICE, len(docs) - start)
            first_slot, end_slot = start * n_fields, (start + n_rows) * n_fields
            first = int(field_ends[first_slot - 1]) if first_slot else 0
            picked = items_of_doc[first : int(field_ends[end_slot - 1]) if end_slot else 0]
            # Items -> their clauses -> the clauses' terms, and where each slot (a
            # document's field) ends at each level.
            clauses, item_ends = _gather(clauses_of_item, item_firsts, item_clause_counts, picked)
            terms, clause_ends = _gather(
                terms_of_clause, clause_firsts, clause_term_counts, clauses
            )
            slot_ends = clause_ends[item_ends[field_ends[first_slot:end_slot] - first]]
            slot_lengths = np.diff(slot_ends, prepend=0)
            parts.append(self._combine(slot_lengths, terms, n_rows, field_weights))
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return self._combine(
                np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32), 0, field_weights
            )
        return sp.vstack(parts, format="csr")

    def _disclaimed_rows(
        self, docs: Sequence[SupplierDoc], disclaimed: dict[str, str]
    ) -> sp.csr_matrix:
        """docs x terms: the tf-idf of what each document disclaims (``disclaimed``: the
        disclaimed part of each text, as ``_term_counts`` found them), weighted like its
        affirmed text (fitted idf, l2 norm). Terms no supplier affirms are left out: no demand
        term can meet them in the text part either, and the vocabulary stays the catalog's.
        Only the documents that disclaim something are counted."""
        n, width = len(docs), len(self._vocabulary)
        rows = [
            i
            for i, doc in enumerate(docs)
            if doc.description in disclaimed or any(c in disclaimed for c in doc.capabilities)
        ]
        if not rows:
            return sp.csr_matrix((n, width), dtype=np.float32)
        counts = self._term_counts(
            [docs[i] for i in rows], grow=False, disclaimed=disclaimed, only_disclaimed=True
        )
        some = self._tfidf_rows(self._weigh_terms(counts))
        lengths = np.zeros(n + 1, dtype=np.int64)
        lengths[np.asarray(rows, dtype=np.int64) + 1] = np.diff(some.indptr)
        return sp.csr_matrix(
            (some.data, some.indices, np.cumsum(lengths)), shape=(n, some.shape[1])
        )

    def _term_ids(self, terms: Sequence[str], grow: bool) -> list[int]:
        return self._vocabulary.ids(terms, grow)

    def _combine(
        self,
        slot_lengths: npt.NDArray[np.int64],
        cols: npt.NDArray[np.int32],
        n_rows: int,
        field_weights: list[float],
    ) -> sp.csr_matrix:
        """docs x terms from the term ids of each slot (a document's field, in order: the
        slot's ``slot_lengths`` entries of ``cols``), per field sublinear and weighted."""
        n_fields = len(field_weights)
        # Postings come in slot order, so they already are the rows of a CSR matrix: its
        # row pointers follow from the lengths, with no per-posting row array (at 100k
        # documents that array alone would be 300 MiB) and no COO-to-CSR sort.
        indptr = np.zeros(n_rows * n_fields + 1, dtype=np.int64)
        np.cumsum(slot_lengths, out=indptr[1:])
        per_field = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), cols, indptr),
            shape=(n_rows * n_fields, len(self._vocabulary)),
        )
        per_field.sum_duplicates()
        per_field.data = 1.0 + np.log(per_field.data)
        slot = np.arange(n_rows * n_fields)
        combine = sp.csr_matrix(
            (
                np.tile(np.asarray(field_weights, dtype=np.float32), n_rows),
                (slot // n_fields, slot),
            ),
            shape=(n_rows, n_rows * n_fields),
        )
        return sp.csr_matrix(combine @ per_field)

    def _tfidf_rows(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Rows times the fitted idf, l2-normalised (what ``TfidfTransformer.transform`` does,
        also for zero rows, in float32). ``counts`` is consumed: its arrays are reused when
        they already are float32 (no copy of the largest matrix of a build)."""
        X = sp.csr_matrix(counts, dtype=np.float32, copy=False)
        X.data *= self._idf[X.indices]
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1), dtype=np.float32).ravel())
        norms[norms == 0] = 1.0
        X.data /= np.repeat(norms, np.diff(X.indptr))
        return X

    def _factor_of(self, start: int) -> FloatArray:
        """Weight of each term from id ``start`` on: a character bigram counts less."""
        bigram = self.weights.bigram
        terms = (self._vocabulary.term(j) for j in range(start, len(self._vocabulary)))
        return np.fromiter(
            (bigram if is_bigram(t) else 1.0 for t in terms),
            dtype=np.float32,
            count=len(self._vocabulary) - start,
        )

    def _weigh_terms(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """``counts`` times each term's factor, in place (the caller's counts are fresh)."""
        counts.data *= self._term_factor[counts.indices]
        return counts

    @staticmethod
    def _query_fields(demand: DemandQuery) -> dict[str, list[str]]:
        """The demand's texts by query field (``_QUERY_FIELDS``)."""
        return {
            "query_title": [demand.title],
            "query_tags": list(demand.tags),
            "query_description": [demand.description],
            "query_chains": list(demand.industry_chains),
        }

    def _query_vector(self, values: dict[str, list[str]]) -> tuple[IntArray, FloatArray]:
        """(term ids, weights) of a demand: the same weighting as a document (per-field
        sublinear tf, field and bigram weights, the fitted idf, l2 norm), done directly on a
        dict because sklearn's validation costs more than the arithmetic for one row."""
        weights: dict[int, float] = {}
        for name in self._QUERY_FIELDS:
            field_weight = getattr(self.weights, name)
            counts: dict[int, int] = {}
            for item in values[name]:
                for clause in self._analyzer.clauses(item):
                    for j in self._term_ids(self._analyzer.analyze_clause(clause), grow=False):
                        counts[j] = counts.get(j, 0) + 1
            for j, c in counts.items():
                weights[j] = weights.get(j, 0.0) + field_weight * (1.0 + math.log(c))
        if not weights:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        # A bigram spelling one of the demand's words adds nothing the word does not (jieba's
        # search mode already yields a compound's words) but reads the longest postings:
        # leaving such bigrams out of the query reads about 40% fewer postings at 100k
        # suppliers, with nDCG@10 on the development set unchanged (short form) or up by
        # 0.001 (full form). The suppliers' bigrams stay: a bigram with no such word, as in
        # an unseen compound, still matches them.
        vocabulary = self._vocabulary
        for j in [j for j in weights if vocabulary.term(j).startswith(BIGRAM_PREFIX)]:
            if vocabulary.get(vocabulary.term(j)[len(BIGRAM_PREFIX) :]) in weights:
                del weights[j]
        cols = np.fromiter(sorted(weights), dtype=np.int32, count=len(weights))
        common = self._idf[cols] < self._common_idf
        if common.any() and not common.all():
            cols = cols[~common]  # see RankingWeights.common_term_share
        data = np.fromiter((weights[j] for j in cols.tolist()), dtype=np.float64, count=len(cols))
        data *= self._term_factor[cols] * self._idf[cols]
        norm = float(np.sqrt(np.dot(data, data)))
        return cols, (data / norm if norm > 0 else data).astype(np.float32)

    def _top_terms(
        self,
        cols: IntArray,
        data: FloatArray,
        rows: Sequence[int],
        spell: Callable[[str], str] = str,
        words: frozenset[str] = frozenset(),
    ) -> list[list[dict[str, Any]]]:
        """For each of ``rows``, the query terms contributing most to its cosine, largest
        first, equal contributions by label. A term inside a longer one the row also matched
        (燃料 and 电池 and the bigram 料电 inside 燃料电池) is one of that word's pieces, as text
        analysis cuts it: its contribution is counted into the longest such word, so the list
        names the demand's words as written, each with all it brought. A piece the row
        matched alone (电池 without 燃料电池) is listed as itself.

        Each term is named as ``spell`` writes it (as the demand does: PCBA, not pcba). A
        bigram across two of the query text's ``words`` (芯小 in 电芯小批量: 电芯|小批量) counts in
        the score, as a phrase matched, but is no word of the demand, and is not listed.

        The rows' weights of the query's terms come from the inverted index (one binary
        search per term for all the rows); the per-row loop then adds up each row's few
        matched terms."""
        if not len(cols) or not rows:
            return [[] for _ in rows]
        values = self._values_at(rows, cols)
        owners, at = np.nonzero(values)  # grouped by row (row-major order)
        values = values[owners, at] * data[at]
        cached = self._term_labels.get
        labels = [cached(j) or self._term_label(j) for j in cols.tolist()]
        bounds = np.searchsorted(owners, np.arange(len(rows) + 1)).tolist()
        values_sorted = values.tolist()
        terms_sorted = at.tolist()
        across = self._across_words(cols, labels, words)
        # Only the terms some row matched can hold or be pieces.
        matched_any = np.unique(at).tolist()
        wholes: list[list[int]] = [[] for _ in labels]
        for t, holders in zip(matched_any, _wholes([labels[t] for t in matched_any]), strict=True):
            wholes[t] = [matched_any[k] for k in holders]
        limit = self.weights.matched_terms
        out: list[list[dict[str, Any]]] = []
        for r in range(len(rows)):
            matched = terms_sorted[bounds[r] : bounds[r + 1]]
            present = set(matched)
            # By label: a word and its bigram (碳化, ~碳化) are one term to a reader.
            totals: dict[str, float] = {}
            for t, value in zip(matched, values_sorted[bounds[r] : bounds[r + 1]], strict=True):
                if t in across:
                    continue
                for whole in wholes[t]:  # longest first; most terms have none
                    if whole in present:
                        t = whole
                        break
                label = labels[t]
                totals[label] = totals.get(label, 0.0) + value
            listed = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
            out.append(
                [
                    {"term": spell(label), "contribution": round(value, 6)}
                    for label, value in listed[:limit]
                ]
            )
        return out

    def _words_of(self, texts: Iterable[str]) -> frozenset[str]:
        """The words (no bigrams, two characters or more) text analysis finds in ``texts``;
        each clause's analysis is cached, so asking again after ranking costs little."""
        return frozenset(
            term
            for text in texts
            for clause in self._analyzer.clauses(text)
            for term in self._analyzer.analyze_clause(clause)
            if len(term) >= 2 and not is_bigram(term)
        )

    def _across_words(
        self, cols: IntArray, labels: Sequence[str], words: frozenset[str]
    ) -> set[int]:
        """Positions of the query's bigrams that join the end of one of ``words`` to the start
        of another and lie inside none (芯小 of 电芯|小批量). A bigram of a compound jieba does
        not know (钙钛 of 钙|钛矿) starts no such junction and stays."""
        if not words:
            return set()
        ends = {w[-1] for w in words}
        starts = {w[0] for w in words}
        vocabulary = self._vocabulary
        return {
            t
            for t, j in enumerate(cols.tolist())
            if (label := labels[t])[0] in ends
            and label[-1] in starts
            and is_bigram(vocabulary.term(j))
            and not any(label in word for word in words)
        }

    def _values_at(self, rows: Sequence[int], cols: IntArray) -> FloatArray:
        """rows x ``cols``: the index's weights of those terms in those rows (0 where
        absent), read from the inverted index: each term's postings are sorted by row, so a
        binary search per term finds all the rows at once; the reads and comparisons that
        follow are done once for every term together."""
        out = np.zeros((len(rows), len(cols)), dtype=np.float32)
        wanted = np.asarray(rows, dtype=np.int64)
        for segment, offset in ((self._main, 0), (self._delta, self._n_main)):
            mine = np.flatnonzero((wanted >= offset) & (wanted < offset + len(segment.docs)))
            if not len(mine):
                continue
            Xc = segment.Xc
            local = (wanted[mine] - offset).astype(Xc.indices.dtype)
            inside = np.flatnonzero(cols < Xc.shape[1])
            starts = Xc.indptr[cols[inside]]
            ends = Xc.indptr[cols[inside] + 1]
            indices = Xc.indices
            if not len(indices):
                continue
            # Per term, where each row would sit in its postings (absolute positions).
            at = np.empty((len(inside), len(local)), dtype=np.int64)
            for t, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
                at[t] = np.searchsorted(indices[a:b], local)
            at += starts[:, None]
            # A row past a term's last posting (or a term with none) would read the next
            # term's postings: clamp inside the term, then the row comparison rejects it.
            np.minimum(at, np.maximum(ends - 1, starts)[:, None], out=at)
            found = (ends > starts)[:, None] & (indices[np.minimum(at, len(indices) - 1)] == local)
            term_at, row_at = np.nonzero(found)
            out[mine[row_at], inside[term_at]] = Xc.data[at[term_at, row_at]]
        return out

    def _term_label(self, j: int) -> str:
        """A term as an explanation shows it: a character bigram without its prefix. Cached:
        term ids never change meaning, so the cache is shared by every snapshot."""
        label = self._term_labels.get(j)
        if label is None:
            text = self._vocabulary.term(j)
            label = text[len(BIGRAM_PREFIX) :] if is_bigram(text) else text
            if len(self._term_labels) < 1 << 20:
                self._term_labels[j] = label
        return label

    # -- chains ---------------------------------------------------------------------------

    def _chain_index(self) -> None:
        tax = self.taxonomy
        self._chain_names = [c.name for c in tax.chains]
        k = len(tax.chains)
        self._relatedness = np.array(
            [[tax.relatedness(a.name, b.name) for b in tax.chains] for a in tax.chains],
            dtype=np.float32,
        )
        terms: dict[str, set[int]] = {}
        for i, chain in enumerate(tax.chains):
            for label in (
                chain.name,
                chain.name_en,
                *chain.aliases,
                *chain.traditional,
                *chain.subfields,
            ):
                key = self._analyzer.normalize(label).strip()
                terms.setdefault(key, set()).add(i)
        # A sub-field's alias (光阻 for 光刻胶) points to the chains owning the sub-field.
        for alias, subfield in tax.synonyms().items():
            owners = {self._chain_names.index(c) for c in tax.chains_for_subfield(subfield)}
            terms.setdefault(self._analyzer.normalize(alias).strip(), set()).update(owners)
        self._chain_terms = {t: tuple(sorted(owners)) for t, owners in terms.items()}
        self._chain_finder = _TermFinder(self._chain_terms, max_len=40)
        assert k == len(self._chain_names)

    def _chain_ids(self, labels: Iterable[str]) -> list[int]:
        ids: list[int] = []
        for label in labels:
            chain = self.taxonomy.resolve(label).chain
            if chain is not None:
                i = self._chain_names.index(chain.name)
                if i not in ids:
                    ids.append(i)
        return ids

    def _demand_chains(self, demand: DemandQuery, text_norm: str) -> tuple[list[Slot], str]:
        """The demand's chains as weighted slots; each slot is satisfied by any of its chains.
        Returns (slots, source) where source is "given" or "inferred" (or "none")."""
        slots: list[Slot] = []
        hints: dict[int, float] = {}
        for label in demand.industry_chains:
            resolution = self.taxonomy.resolve(label)
            if resolution.chain is not None:
                i = self._chain_names.index(resolution.chain.name)
                slots.append((((i, 1.0),), 1.0, label))
                continue
            owners = [self._chain_names.index(c) for c in self.taxonomy.chains_for_subfield(label)]
            if owners:
                slots.append((tuple((i, 1.0) for i in owners), 1.0, label))
            elif resolution.suggestions:
                hint = self._chain_names.index(resolution.suggestions[0])
                hints[hint] = hints.get(hint, 0.0) + 1.0
        if slots:
            return _merge_slots(slots), "given"
        counts = dict(hints)
        for term in self._chain_finder.find(text_norm):
            term_owners = self._chain_terms[term]
            for i in term_owners:
                counts[i] = counts.get(i, 0.0) + 1.0 / len(term_owners)
        inferred = _voted_slots(counts, "inferred")
        return inferred, ("inferred" if inferred else "none")

    def _chain_scores(
        self,
        slots: list[Slot],
        candidates: IntArray,
    ) -> FloatArray:
        if not slots:
            return np.zeros(len(candidates), dtype=np.float32)
        profile = self._chain_profile
        total = np.zeros(len(candidates), dtype=np.float32)
        weight = 0.0
        for options, slot_weight, _ in slots:
            if len(options) == 1:  # most slots: one column, no copy of the others
                best = profile[candidates, options[0][0]]
            else:
                columns = np.fromiter((i for i, _ in options), dtype=np.intp, count=len(options))
                best = np.max(profile[np.ix_(candidates, columns)], axis=1)
            total += slot_weight * best
            weight += slot_weight
        return total / weight

    # -- tags -----------------------------------------------------------------------------

    def _plain_tag_key(self, tag: str) -> str:
        text = self._analyzer.normalize(tag)
        return " ".join(_NON_ALNUM.sub(" ", text).split())

    def _tag_key(self, tag: str) -> str:
        """A tag's comparison key: normalised, and an alias (of a sub-field or a process)
        replaced by its canonical term, so 热蔓延 and 热扩散 are one tag."""
        key = self._tag_keys_of.get(tag)
        if key is None:
            key = self._plain_tag_key(tag)
            key = self._tag_synonyms.get(key, key)
            if len(self._tag_keys_of) < 65536:
                self._tag_keys_of[tag] = key
        return key

    def _make_tag_finder(self) -> _TermFinder:
        """Finds the catalog's tags in a demand's text, written as themselves or as an alias."""
        known = set(self._tag_keys)
        aliases = (alias for alias, term in self._tag_synonyms.items() if term in known)
        return _TermFinder(k for k in (*known, *aliases) if len(k) >= 2)

    def _demand_tags(self, demand: DemandQuery) -> dict[str, float]:
        weights: dict[str, float] = {}
        for tag in demand.tags:
            key = self._tag_key(tag)
            if key:
                weights[key] = 1.0
        text = self._plain_tag_key(demand.title) + " | " + self._plain_tag_key(demand.description)
        for found in self._tag_finder.find(text):
            weights.setdefault(self._tag_synonyms.get(found, found), self.weights.tag_in_text)
        return weights

    def _demand_tag_names(
        self, demand: DemandQuery, tag_weights: dict[str, float], spell: Callable[[str], str]
    ) -> dict[str, str]:
        """Each demand tag key as the demand writes it: the tag it gave (热蔓延, not its
        canonical 热扩散), or the words its text holds."""
        names = {key: spell(key) for key in tag_weights}
        for tag in reversed(demand.tags):  # the first tag of a key wins
            key = self._tag_key(tag)
            if key in names:
                names[key] = tag
        return names

    def _tag_matches(self, key: str) -> tuple[tuple[int, float], ...]:
        """Catalog tags matching one demand tag, with their credit (cached per tag
        vocabulary, which ``with_changes`` shares)."""
        cached = self._tag_match_cache.get(key)
        if cached is None:
            cached = self._tag_matches_uncached(key)
            if len(self._tag_match_cache) < 65536:
                self._tag_match_cache[key] = cached
        return cached

    def _tag_matches_uncached(self, key: str) -> tuple[tuple[int, float], ...]:
        w = self.weights
        credits: dict[int, float] = {}
        exact = self._tag_vocabulary.get(key)
        if exact is not None:
            credits[exact] = 1.0
        if len(key) >= 3:
            for candidate, _score, j in process.extract(
                key,
                self._tag_keys,
                scorer=fuzz.ratio,
                score_cutoff=w.tag_fuzzy_threshold,
                limit=None,
            ):
                if candidate != key:
                    credits[j] = max(credits.get(j, 0.0), w.tag_fuzzy_credit)
        if _tag_weight(key) >= 3:
            # The plain substring test first: it is one C call per tag, and it rules out
            # nearly all of them before the slower word-boundary and weight checks.
            for j in [j for j, candidate in enumerate(self._tag_keys) if key in candidate]:
                candidate = self._tag_keys[j]
                if _tag_weight(candidate) >= 3 and _contains(candidate, key):
                    credits[j] = max(credits.get(j, 0.0), w.tag_partial_credit)
        return tuple(sorted(credits.items()))

    def _tag_scores(
        self, tag_weights: dict[str, float]
    ) -> tuple[FloatArray, dict[str, tuple[tuple[int, float], ...]]]:
        score = np.zeros(self._size_rows(), dtype=np.float32)
        hits: dict[str, tuple[tuple[int, float], ...]] = {}
        total = sum(tag_weights.values())
        if total <= 0:
            return score, hits
        for key, weight in tag_weights.items():
            matches = self._tag_matches(key)
            if not matches:
                continue
            hits[key] = matches
            rows, credits = self._tag_rows(key, matches)
            score[rows] += weight * credits
        score /= total
        return score, hits

    def _tag_rows(
        self, key: str, matches: tuple[tuple[int, float], ...]
    ) -> tuple[IntArray, FloatArray]:
        """The rows holding a tag that matches the demand tag ``key``, each once, with its
        best credit. The main segment's part is cached (it changes only with a full build);
        the small delta segment's is found each time."""
        main = self._tag_rows_cache.get(key)
        if main is None:
            main = _best_credit_per_row(
                [(self._main.column(self._main.T, j), credit) for j, credit in matches]
            )
            self._tag_rows_cache.put(key, main)
        if not len(self._delta.docs):
            return main
        delta_rows, delta_credits = _best_credit_per_row(
            [(self._delta.column(self._delta.T, j), credit) for j, credit in matches]
        )
        return (
            np.concatenate([main[0], self._n_main + delta_rows]),
            np.concatenate([main[1], delta_credits]),
        )

    # -- constraints ----------------------------------------------------------------------

    def _eligible(self, kind: KindFilter, required: Sequence[str]) -> npt.NDArray[np.bool_] | None:
        """The rows that may be returned (None: every row): still in the catalog, of
        ``kind``, holding every required certification. Do not modify: the mask without
        certifications is cached per snapshot."""
        mask = self._kind_mask(kind)
        for cert in dict.fromkeys(normalize_certification(c) for c in required):
            if not cert:
                continue
            j = self._certs.get(cert)
            if j is None:
                return np.zeros(self._size_rows(), dtype=bool)  # nobody holds it
            holds = np.zeros(self._size_rows(), dtype=bool)
            for rows in self._holders(lambda s: s.C, j):
                holds[rows] = True
            mask = holds if mask is None else mask & holds
        return mask

    def _kind_mask(self, kind: KindFilter) -> npt.NDArray[np.bool_] | None:
        if kind not in self._kind_masks:
            mask: npt.NDArray[np.bool_] | None = None
            if not self._alive.all():
                mask = np.ones(self._size_rows(), dtype=bool)
                mask[: self._n_main] = self._alive
            if kind != "all":
                of_kind = self._kind == (1 if kind == "manufacturer" else 0)
                mask = of_kind if mask is None else mask & of_kind
            self._kind_masks[kind] = mask
        return self._kind_masks[kind]

    def _size_rows(self) -> int:
        """Rows of the index, main and delta, including main rows no longer in the catalog."""
        return self._n_main + len(self._delta.docs)

    def _holders(self, matrix: Callable[[_Segment], sp.csc_matrix], j: int) -> list[IntArray]:
        """Rows (index-wide) holding column ``j`` of a tag or certification matrix, per
        segment; main rows no longer in the catalog may be among them."""
        main, delta = self._main, self._delta
        return [
            main.column(matrix(main), j),
            self._n_main + delta.column(matrix(delta), j),
        ]

    def _cues(self, demand: DemandQuery) -> _DemandCues:
        """What the demand's wording says about supplier kind and production scale, read
        once per query (normalising the text is the costly part)."""
        lean, lean_cues = self._lean(demand)
        text = self._analyzer.normalize(demand.title + " " + demand.description)
        pilot_scale = not _contains_any(text, _VOLUME_CUES) or bool(
            _contains_any(text, _SMALL_BATCH_CUES)
        )
        quantities = demand_quantities(demand.title, *demand.tags, demand.description)
        return _DemandCues(lean, lean_cues, pilot_scale, quantities)

    def _lean(self, demand: DemandQuery) -> tuple[float, list[str]]:
        """(lean, cues): +1 leans to manufacturers, -1 to platforms."""
        text = self._analyzer.normalize(demand.title + " " + " ".join(demand.tags))
        to_maker = _contains_any(text, _MANUFACTURER_CUES)
        to_platform = _contains_any(text, _PLATFORM_CUES)
        stage = demand.stage or ""
        lean = _STAGE_LEAN.get(stage, 0.0)
        lean += 0.5 * (bool(to_maker) - bool(to_platform))
        cues = [stage] if _STAGE_LEAN.get(stage) else []
        cues += to_maker + to_platform
        return max(-1.0, min(1.0, lean)), cues

    def _factors(
        self,
        demand: DemandQuery,
        candidates: IntArray,
        cues: _DemandCues,
        disclaimed: FloatArray | None = None,
    ) -> dict[str, FloatArray]:
        """Multiplicative factor of each constraint for each candidate, in a fixed order;
        ``disclaimed``: per candidate, the cosine of the demand with what it disclaims."""
        w = self.weights
        factors: dict[str, FloatArray] = {}
        if demand.stage in STAGES:
            gap = self._stage_gap[candidates, STAGES.index(demand.stage)].astype(np.float32)
            factors["stage"] = np.where(
                gap < 0, 1.0 - w.stage_unknown, 1.0 - w.stage_mismatch * np.minimum(gap, 2)
            ).astype(np.float32)
        if demand.needs_voucher:
            factors["voucher"] = np.where(
                self._vouchers[candidates], 1.0, 1.0 - w.voucher_missing
            ).astype(np.float32)
        if demand.district:
            j = self._district_id(demand.district)
            factors["district"] = np.where(
                (self._district[candidates] == j) & (j >= 0), 1.0 + w.district_match, 1.0
            ).astype(np.float32)
        lean = cues.lean
        if lean:
            unwanted = 0 if lean > 0 else 1
            factors["kind"] = np.where(
                self._kind[candidates] == unwanted, 1.0 - w.kind_lean * abs(lean), 1.0
            ).astype(np.float32)
        if cues.pilot_scale:
            factors["scale"] = np.where(
                self._volume_only[candidates], 1.0 - w.scale_mismatch, 1.0
            ).astype(np.float32)
        if cues.quantities:
            factors["batch"] = self._batch_factors(candidates, cues.quantities)
        if disclaimed is not None:
            overlap = np.minimum(disclaimed, np.float32(1.0))
            factors["disclaimer"] = self._disclaimer_factor(overlap)
        return factors

    def _batch_factors(self, candidates: IntArray, quantities: Batch) -> FloatArray:
        """Per candidate, the factor of how far its batch limits miss the demand's quantity
        (``RankingWeights.batch_mismatch``); 1 for a supplier stating no limits."""
        limits = self._batch[candidates]  # count low, count high, amount low, amount high
        worst = np.ones(len(candidates), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            for k, span in enumerate((quantities.count, quantities.amount)):
                if span is None:
                    continue
                low, high = limits[:, 2 * k], limits[:, 2 * k + 1]
                # nan limits (none stated) compare False and leave 1.
                ratio = np.where(
                    span.high < low,
                    low / max(span.high, 1e-9),
                    np.where(span.low > high, span.low / np.maximum(high, 1e-9), 1.0),
                )
                worst = np.maximum(worst, ratio)
        w = self.weights
        share = np.minimum(np.log(worst) / math.log(w.batch_full_ratio), 1.0)
        return (1.0 - w.batch_mismatch * share).astype(np.float32)

    def _outcome_factors(self, outcomes: KindOutcomes | None) -> FloatArray | None:
        """Per row, the factor of the outcomes of its supplier (1 without any); None when no
        supplier in the index has outcomes of this kind."""
        if outcomes is None:
            return None
        w = self.weights
        rows = np.ones(len(self._kind), dtype=np.float32)
        found = False
        for supplier_id, counts in outcomes.counts.items():
            d = self._row_of(supplier_id)
            if d is None:
                continue
            found = True
            rows[d] = outcome_factor(
                counts.positive,
                counts.declined,
                beta=w.outcome_beta,
                prior=w.outcome_prior,
                max_penalty=w.outcome_max_penalty,
                max_boost=w.outcome_max_boost,
            )
        return rows if found else None

    def _constraint_details(
        self,
        demand: DemandQuery,
        at: tuple[int, int],
        factors: dict[str, FloatArray],
        cues: _DemandCues,
        outcomes: KindOutcomes | None,
        query: tuple[IntArray, FloatArray],
        *,
        capped: set[str] | frozenset[str] = frozenset(),
        language: Language = DEFAULT_LANGUAGE,
        spell: Callable[[str], str] | None = None,
    ) -> list[dict[str, Any]]:
        """Each constraint's factor and reason for row ``d`` (``at``: the row and its
        position ``j`` among the scored candidates; ``capped``: the constraints whose factor
        holds a cap; ``language``: the reasons'; ``spell``: how to write a term, as for the
        matched terms); ``_match`` adds the effect in score units."""
        d, j = at
        doc = self._doc(d)
        out: list[dict[str, Any]] = []
        if demand.required_certifications:
            out.append(
                {
                    "name": "certifications",
                    "factor": 1.0,
                    "reason": say(
                        "certifications",
                        language,
                        names=join(demand.required_certifications, language),
                    ),
                }
            )
        for name, values in factors.items():
            factor = float(values[j])
            if name == "stage":
                gap = int(self._stage_gap[d, STAGES.index(demand.stage or "")])
                if gap == 0:
                    reason = say("stage_offered", language, stage=demand.stage)
                elif gap < 0:
                    reason = say("stage_unlisted", language, stage=demand.stage)
                else:
                    stages = join(doc.stages, language)
                    reason = say("stage_gap", language, stages=stages, gap=gap, stage=demand.stage)
            elif name == "voucher":
                accepted = "voucher_accepted" if doc.accepts_vouchers else "voucher_refused"
                reason = say(accepted, language)
            elif name == "district":
                where = "district_in" if factor > 1 else "district_not_in"
                reason = say(where, language, district=demand.district)
            elif name == "kind":
                reason = say(
                    "kind_lean",
                    language,
                    wanted=kind_name("manufacturer" if cues.lean > 0 else "platform", language),
                    cues=join(cues.lean_cues, language),
                    kind=kind_name(doc.kind, language),
                )
            elif name == "batch":
                reason = self._batch_reason(doc, cues.quantities, factor, language)
            elif name == "disclaimer":
                if factor < 1:  # listed only for a supplier ruling out some of the demand
                    out.append(
                        self._disclaimer_entry(
                            d, factor, query, name in capped, language, spell=spell
                        )
                    )
                continue
            elif name == "outcomes" and outcomes is not None:
                counts = outcomes.counts.get(doc.id, OutcomeCounts())
                out.append(
                    {
                        "name": name,
                        "factor": round(factor, 6),
                        "reason": say(
                            "outcomes",
                            language,
                            positive=counts.positive,
                            declined=counts.declined,
                            kind=outcomes.kind,
                        ),
                        "kind": outcomes.kind,
                        "positive": counts.positive,
                        "declined": counts.declined,
                    }
                )
                continue
            else:  # scale
                reason = say("scale_volume_only" if factor < 1 else "scale_fits", language)
            entry: dict[str, Any] = {"name": name, "factor": round(factor, 6), "reason": reason}
            if name in ("stage", "kind"):
                if name in capped:
                    entry["reason"] += say("fit_capped", language, cap=self.weights.fit_cap)
                entry["capped"] = name in capped
            out.append(entry)
        return out

    @staticmethod
    def _batch_reason(
        doc: SupplierDoc, quantities: Batch, factor: float, language: Language
    ) -> str:
        limits = _stated_batch(doc.description)
        asked = "、".join(s.text for s in (quantities.count, quantities.amount) if s)
        if not limits:
            return say("batch_unstated", language, asked=asked)
        stated = "；".join(s.text for s in (limits.count, limits.amount) if s)
        if factor < 1:
            gap, _ = batch_mismatch(limits, quantities)
            rounded = float(f"{gap:.2g}")  # two significant digits, as a plain number
            times = f"{rounded:,.0f}" if rounded >= 10 else f"{rounded:g}"
            return say("batch_missed", language, stated=stated, asked=asked, times=times)
        return say("batch_met", language, stated=stated, asked=asked)

    def _disclaimer_entry(
        self,
        d: int,
        factor: float,
        query: tuple[IntArray, FloatArray],
        capped: bool,
        language: Language = DEFAULT_LANGUAGE,
        wanted: str = "wanted_by_demand",
        spell: Callable[[str], str] | None = None,
    ) -> dict[str, Any]:
        """The ``disclaimer`` constraint of row ``d`` in an explanation; ``wanted``: the
        message saying what the query is (``wanted_by_demand`` or ``wanted_by_supplier``)."""
        details = self._disclaimed(d, query, language, wanted, spell)
        if capped:
            details["reason"] += say("disclaimer_capped", language, cap=self.weights.disclaimer_cap)
        return {"name": "disclaimer", "factor": round(factor, 6), **details, "capped": capped}

    def _disclaimed(
        self,
        d: int,
        query: tuple[IntArray, FloatArray],
        language: Language = DEFAULT_LANGUAGE,
        wanted: str = "wanted_by_demand",
        spell: Callable[[str], str] | None = None,
    ) -> dict[str, Any]:
        """The reason of a disclaimer factor: the demand's terms the supplier disclaims (the
        largest contributions first, written as ``spell`` writes them) and the statements
        holding them, as written."""
        cols, data = query
        segment, i = (self._main, d) if d < self._n_main else (self._delta, d - self._n_main)
        Dr = segment.Dr
        a, b = Dr.indptr[i], Dr.indptr[i + 1]
        _, at_query, at_row = np.intersect1d(
            cols, Dr.indices[a:b], assume_unique=True, return_indices=True
        )
        values = (Dr.data[a:b][at_row] * data[at_query]).tolist()
        contributions = [
            (-value, self._term_label(int(j)))
            for value, j in zip(values, cols[at_query].tolist(), strict=True)
        ]
        labels = [label for _, label in contributions]
        terms = list(
            dict.fromkeys(  # a word and its bigram (碳化, ~碳化) are labelled alike
                label
                for _, label in sorted(contributions)
                # a part of another disclaimed term (碳化 of 碳化硅) adds nothing
                if not any(label != other and label in other for other in labels)
            )
        )[: self.weights.matched_terms]
        if not terms:
            return _nothing_disclaimed(language)
        doc = self._doc(d)
        statements = [
            part
            for text in (doc.description, *doc.capabilities)
            for part, normalized in self._disclaimed_parts(text)
            if any(t in normalized for t in terms)
        ]
        if spell is None:
            spell = functools.partial(_known_form, self._written_forms)
        shown = [spell(t) for t in terms]
        return {
            "reason": say(
                "disclaims", language, wanted=say(wanted, language), terms=join(shown, language)
            ),
            "terms": shown,
            "statements": statements,
        }

    def _disclaimed_parts(self, text: str) -> tuple[tuple[str, str], ...]:
        """The statements of ``text`` that rule something out, each as written and
        normalised: read again for every explanation naming the supplier, so kept (in a
        cache shared by the index's snapshots, as ``_term_labels`` is)."""
        parts = self._disclaimed_parts_of.get(text)
        if parts is None:
            parts = tuple(
                (part, self._analyzer.normalize(part))
                for part in split_disclaimers(text)[1].split("。")
                if part
            )
            if len(self._disclaimed_parts_of) < 65536:
                self._disclaimed_parts_of[text] = parts
        return parts

    # -- results --------------------------------------------------------------------------

    def _top(self, scored: _Scored, limit: int) -> list[tuple[int, int]]:
        """(row, position among the candidates) of the best ``limit``: by score rounded to
        six decimals, ties by supplier id."""
        rounded = np.round(scored.total.astype(np.float64), 6)
        keep = np.arange(len(rounded))
        if len(rounded) > limit:
            cut = np.partition(-rounded, limit - 1)[limit - 1]
            keep = np.flatnonzero(-rounded <= cut)
        rows = scored.candidates[keep].tolist()
        order = sorted(
            zip(keep.tolist(), rows, strict=True),
            key=lambda item: (-rounded[item[0]], self._doc(item[1]).id),
        )
        return [(d, j) for j, d in order[:limit]]

    def _match(
        self,
        d: int,
        total: float,
        *,
        text: tuple[float, float, list[dict[str, Any]]],
        chain: tuple[float, float, list[Slot], str],
        tags: tuple[float, dict[str, dict[int, float]], dict[str, float], dict[str, str]],
        constraints: list[dict[str, Any]],
    ) -> Match:
        w = self.weights
        doc = self._doc(d)
        similarity, relative, terms = text
        chain_weight, chain_score, slots, source = chain
        tag_score, hit_credits, tag_weights, tag_names = tags
        parts = {
            "text": w.text * relative,
            "chain": chain_weight * chain_score,
            "tags": w.tag * tag_score,
        }
        base = sum(parts.values())
        # Constraints multiply the base in order; each one's effect is the change it made.
        running = base
        for item in constraints:
            effect = running * (item["factor"] - 1.0)
            item["effect"] = round(effect, 6)
            running += effect
        # The score shown is the one the results were ordered by (``total``, the same
        # arithmetic in float32), so a list never reads out of order in the sixth decimal;
        # base plus the effects agrees with it to about 1e-6.
        score = round(total, 6)
        explanation = {
            "score": score,
            "base": round(base, 6),
            "text": {
                "similarity": round(similarity, 6),
                "relative": round(relative, 6),
                "weight": w.text,
                "contribution": round(parts["text"], 6),
                "matched_terms": terms,
            },
            "chain": {
                "score": round(chain_score, 6),
                "weight": round(chain_weight, 6),
                "contribution": round(parts["chain"], 6),
                "source": source,
                "matched_chains": self._matched_chains(doc, slots),
            },
            "tags": {
                "score": round(tag_score, 6),
                "weight": w.tag,
                "contribution": round(parts["tags"], 6),
                "matched_tags": self._matched_tags(doc, hit_credits, tag_weights, tag_names),
            },
            "constraints": constraints,
        }
        return Match(doc.id, doc.kind, doc.name, score, explanation)

    def _doc_chain_ids(self, doc: SupplierDoc) -> list[int]:
        doc_chains = self._chain_ids_of.get(doc.industry_chains)
        if doc_chains is None:  # a few combinations of chains serve a whole catalog
            doc_chains = self._chain_ids(doc.industry_chains)
            if len(self._chain_ids_of) < 4096:
                self._chain_ids_of[doc.industry_chains] = doc_chains
        return doc_chains

    def _matched_chains(self, doc: SupplierDoc, slots: list[Slot]) -> list[dict[str, Any]]:
        doc_chains = self._doc_chain_ids(doc)
        matched = []
        for options, slot_weight, label in slots:
            best = (0.0, "", "")
            for i, _ in options:
                for s in doc_chains:
                    credit = float(self._relatedness[i, s])
                    if credit > best[0]:
                        best = (credit, self._chain_names[i], self._chain_names[s])
            if best[0] > 0:
                matched.append(
                    {
                        "demand_chain": best[1],
                        "supplier_chain": best[2],
                        "credit": round(best[0], 6),
                        "weight": slot_weight,
                        "from": label,
                    }
                )
        return matched

    def _matched_tags(
        self,
        doc: SupplierDoc,
        hit_credits: dict[str, dict[int, float]],
        tag_weights: dict[str, float],
        tag_names: dict[str, str],
    ) -> list[dict[str, Any]]:
        """Per demand tag (``hit_credits``: the catalog tags matching it, by tag id, with
        their credit; ``tag_names``: each as the demand writes it), the supplier's
        best-credited tag among them."""
        key_of, vocabulary = self._tag_keys_of.get, self._tag_vocabulary.get
        doc_tags = {vocabulary(key_of(t) or self._tag_key(t), -1): t for t in doc.tags}
        matched = []
        for key, credits in hit_credits.items():
            found = [(credits[j], tag) for j, tag in doc_tags.items() if j in credits]
            if found:
                credit, tag = max(found)
                matched.append(
                    {
                        "demand_tag": tag_names.get(key, key),
                        "supplier_tag": tag,
                        "credit": round(credit, 6),
                        "weight": tag_weights[key],
                    }
                )
        return matched

    # -- per-document features ------------------------------------------------------------

    def _features(self, docs: Sequence[SupplierDoc]) -> dict[str, Any]:
        """Per-document features; tags, certifications and districts new to this index's
        vocabularies are added to them."""
        n = len(docs)
        k = len(self._chain_names)
        membership = np.zeros((n, k), dtype=np.float32)
        tag_rows: list[int] = []
        tag_cols: list[int] = []
        cert_rows: list[int] = []
        cert_cols: list[int] = []
        kind = np.zeros(n, dtype=np.int8)
        vouchers = np.zeros(n, dtype=bool)
        stage_gap = np.full((n, len(STAGES)), -1, dtype=np.int8)
        district = np.full(n, -1, dtype=np.int32)
        volume_only = np.zeros(n, dtype=bool)
        batch = np.full((n, 4), np.nan, dtype=np.float32)
        limits_of = functools.lru_cache(maxsize=None)(supplier_batch)
        # Catalogs repeat chains, tags, certificates, stages and districts: normalise each
        # distinct value once.
        chain_ids = functools.lru_cache(maxsize=None)(lambda labels: self._chain_ids(labels))
        tag_key = functools.lru_cache(maxsize=None)(self._tag_key)
        cert_key = functools.lru_cache(maxsize=None)(normalize_certification)
        plain = functools.lru_cache(maxsize=None)(lambda t: self._analyzer.normalize(t).strip())
        gaps = functools.lru_cache(maxsize=None)(_stage_gaps)

        @functools.cache
        def scale_cues(item: str) -> tuple[bool, bool]:
            """Whether an item speaks of volume production, and of small batches."""
            text = plain(item)
            return bool(_contains_any(text, _VOLUME_CUES)), bool(
                _contains_any(text, _SMALL_BATCH_CUES)
            )

        for i, doc in enumerate(docs):
            for c in chain_ids(doc.industry_chains):
                membership[i, c] = 1.0
            for key in dict.fromkeys(tag_key(t) for t in doc.tags):
                j = self._lookup(self._tag_vocabulary, self._tag_keys, key)
                if j >= 0:
                    tag_rows.append(i)
                    tag_cols.append(j)
            for cert in dict.fromkeys(cert_key(c) for c in doc.certifications):
                j = self._lookup(self._certs, None, cert)
                if j >= 0:
                    cert_rows.append(i)
                    cert_cols.append(j)
            kind[i] = 1 if doc.kind == "manufacturer" else 0
            vouchers[i] = doc.accepts_vouchers
            stage_gap[i] = gaps(doc.stages)
            if doc.district:
                district[i] = self._lookup(self._districts, None, plain(doc.district))
            cues = [scale_cues(t) for t in (doc.name, *doc.tags, *doc.capabilities)]
            volume_only[i] = any(volume for volume, _ in cues) and not any(
                small for _, small in cues
            )
            limits = limits_of(doc.description)
            for slot, span in enumerate((limits.count, limits.amount)):
                if span is not None:
                    batch[i, 2 * slot : 2 * slot + 2] = (span.low, span.high)
        # Best relatedness of each document to each chain: max over its chains.
        profile_matrix = (
            np.max(membership[:, None, :] * self._relatedness[None, :, :], axis=2)
            if n
            else np.zeros((0, k), dtype=np.float32)
        )
        return {
            "chain_profile": profile_matrix.astype(np.float32),
            "tags": sp.csr_matrix(
                (np.ones(len(tag_rows), dtype=np.float32), (tag_rows, tag_cols)),
                shape=(n, max(len(self._tag_keys), 1)),
            ),
            "certs": sp.csr_matrix(
                (np.ones(len(cert_rows), dtype=np.float32), (cert_rows, cert_cols)),
                shape=(n, max(len(self._certs), 1)),
            ),
            "kind": kind,
            "vouchers": vouchers,
            "stage_gap": stage_gap,
            "district": district,
            "volume_only": volume_only,
            "batch": batch,
        }

    @staticmethod
    def _lookup(vocabulary: dict[str, int], keys: list[str] | None, key: str) -> int:
        if not key:
            return -1
        j = vocabulary.get(key)
        if j is None:
            j = vocabulary[key] = len(vocabulary)
            if keys is not None:
                keys.append(key)
        return j

    def _district_id(self, district: str) -> int:
        key = self._analyzer.normalize(district).strip()
        j = self._districts.get(key)
        if j is not None:
            return j
        # 松山湖 matches 松山湖高新区 and the other way round.
        for name, index in sorted(self._districts.items()):
            if len(key) >= 2 and len(name) >= 2 and (key in name or name in key):
                return index
        return -1

    def _set_rows(self, features: dict[str, Any]) -> None:
        """The per-row arrays of a fresh build (main segment only)."""
        for key, values in features.items():
            if key not in ("tags", "certs"):
                setattr(self, f"_{key}", values)

    def _empty_segment(self) -> _Segment:
        width = len(self._vocabulary)
        return _Segment.of(
            (),
            sp.csr_matrix((0, width), dtype=np.float32),
            sp.csr_matrix((0, max(len(self._tag_keys), 1)), dtype=np.float32),
            sp.csr_matrix((0, max(len(self._certs), 1)), dtype=np.float32),
            sp.csr_matrix((0, width), dtype=np.float32),
        )

    def _clone(self) -> MatchIndex:
        """A new index sharing everything a snapshot never changes (``with_changes``
        replaces the rest)."""
        new = MatchIndex()
        for name in (
            "weights", "taxonomy", "_analyzer", "_vocabulary", "_term_factor", "_idf", "_common_idf",
            "_main", "_n_main", "_position_main", "_chain_names",
            "_relatedness", "_chain_terms", "_chain_finder", "_tag_finder", "_tag_match_cache",
            "_tag_rows_cache",
            "_tag_keys_of", "_tag_synonyms", "_term_labels", "_chain_ids_of",
            "_disclaimed_parts_of", "_written_forms",
        ):  # fmt: skip
            setattr(new, name, getattr(self, name))
        return new

    @staticmethod
    def _dedupe(docs: Sequence[SupplierDoc]) -> tuple[SupplierDoc, ...]:
        """One document per id, the last one given winning."""
        return tuple({d.id: d for d in docs}.values())


def _stage_gaps(stages: tuple[str, ...]) -> tuple[int, ...]:
    """Steps from each stage to the nearest offered one; -1 everywhere when none is offered."""
    offered = [STAGES.index(s) for s in stages if s in STAGES]
    if not offered:
        return (-1,) * len(STAGES)
    return tuple(min(abs(s - o) for o in offered) for s in range(len(STAGES)))


def _merge_slots(
    slots: list[Slot],
) -> list[Slot]:
    seen: set[tuple[int, ...]] = set()
    out = []
    for options, weight, label in slots:
        key = tuple(i for i, _ in options)
        if key not in seen:
            seen.add(key)
            out.append((options, weight, label))
    return out


def combine_columns(Xc: sp.csc_matrix, cols: IntArray, weights: FloatArray) -> FloatArray:
    """``Xc[:, cols] @ weights`` as float32, without building the column submatrix.

    The public expression first copies every posting of the query's terms into a new matrix
    (half its cost: 0.85 ms against 0.47 ms at 100k rows and a median of 500k postings), so
    each column is instead added in place by scipy's own CSC kernel on views of the index
    arrays. The sum runs in the same order either way; ``tests/matching/test_ranking.py``
    checks both agree, and the public expression is the fallback should scipy's kernel
    module ever move."""
    if _csc_matvec is None or Xc.indptr.dtype != Xc.indices.dtype or Xc.dtype != np.float32:
        return np.asarray(Xc[:, cols] @ weights, dtype=np.float32).ravel()
    n_rows = Xc.shape[0]
    out = np.zeros(n_rows, dtype=np.float32)
    indptr, indices, data = Xc.indptr, Xc.indices, Xc.data
    one_column = np.zeros(2, dtype=indptr.dtype)
    weight = np.empty(1, dtype=np.float32)
    starts, ends = indptr[cols].tolist(), indptr[cols + 1].tolist()
    for a, b, w in zip(starts, ends, weights.tolist(), strict=True):
        one_column[1] = b - a
        weight[0] = w
        _csc_matvec(n_rows, 1, one_column, indices[a:b], data[a:b], weight, out)
    return out


def rows_times(Xr: sp.csr_matrix, rows: IntArray, vector: FloatArray) -> FloatArray:
    """``Xr[rows] @ vector`` as float32 (``vector`` at least as long as ``Xr`` is wide).

    The public expression costs four times as much for a hundred rows (its Python layers,
    not its arithmetic), so scipy's own kernels gather the rows and multiply them; the sums
    are the same, in the same order (``tests/matching/test_ranking.py``), and the public
    expression is the fallback should scipy's kernel module ever move."""
    width = Xr.shape[1]
    if (
        _csr_row_index is None
        or _csr_matvec is None
        or Xr.indptr.dtype != Xr.indices.dtype
        or Xr.dtype != np.float32
        or vector.dtype != np.float32
    ):
        return np.asarray(Xr[rows] @ vector[:width], dtype=np.float32).ravel()
    index = Xr.indptr.dtype
    rows = rows.astype(index, copy=False)
    indptr = np.zeros(len(rows) + 1, dtype=index)
    np.cumsum(Xr.indptr[rows + 1] - Xr.indptr[rows], out=indptr[1:])
    out = np.zeros(len(rows), dtype=np.float32)
    total = int(indptr[-1])
    if total:
        indices = np.empty(total, dtype=index)
        data = np.empty(total, dtype=np.float32)
        _csr_row_index(len(rows), rows, Xr.indptr, Xr.indices, Xr.data, indices, data)
        _csr_matvec(len(rows), width, indptr, indices, data, vector, out)
    return out


def _voted_slots(votes: dict[int, float], label: str) -> list[Slot]:
    """The chains with the most votes (at most three, each with at least half the best
    count), weighted by their share of the best; ties by chain order."""
    if not votes:
        return []
    best = max(votes.values())
    ranked = sorted(votes.items(), key=lambda item: (-item[1], item[0]))
    return [(((i, 1.0),), round(c / best, 4), label) for i, c in ranked[:3] if c >= best / 2]


def _largest(values: FloatArray, k: int) -> IntArray:
    """Positions of the ``k`` largest values (in no particular order; ``len(values) > k``).

    A threshold read from a strided sample first cuts the array to a few times ``k``
    positions, so the selection runs on those instead of on every row; when the cut keeps
    fewer than ``k`` (a skewed sample), the whole array is partitioned."""
    n = len(values)
    step = max(1, n // 4096)
    if step > 1:
        sample = values[::step]
        rank = min(len(sample), 3 * k * len(sample) // n + 2)
        threshold = np.partition(sample, len(sample) - rank)[len(sample) - rank]
        if np.isfinite(threshold):
            some = np.flatnonzero(values >= threshold)
            if len(some) >= k:
                return some[np.argpartition(-values[some], k - 1)[:k]]
    return np.argpartition(-values, k - 1)[:k]


def _best_credit_per_row(held: list[tuple[IntArray, float]]) -> tuple[IntArray, FloatArray]:
    """(rows, credit) pairs of several tags, as distinct rows with the best credit of each."""
    rows = np.concatenate([r for r, _ in held]) if held else _NO_ROWS
    credits = np.concatenate([np.full(len(r), c, dtype=np.float32) for r, c in held] or [
        np.zeros(0, dtype=np.float32)])  # fmt: skip
    if len(held) > 1:
        order = np.lexsort((-credits, rows))
        rows, credits = rows[order], credits[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = rows[1:] != rows[:-1]
        rows, credits = rows[first], credits[first]
    return rows, credits


class _RowsCache:
    """Row arrays per key, up to a number of rows in all (then no more are added): the
    main segment's rows per demand tag, shared by the snapshots of one build."""

    def __init__(self, max_rows: int = 4_000_000) -> None:
        self._entries: dict[str, tuple[IntArray, FloatArray]] = {}
        self._rows = 0
        self._max_rows = max_rows

    def get(self, key: str) -> tuple[IntArray, FloatArray] | None:
        return self._entries.get(key)

    def put(self, key: str, entry: tuple[IntArray, FloatArray]) -> None:
        if self._rows + len(entry[0]) <= self._max_rows:
            self._entries[key] = entry
            self._rows += len(entry[0])


class _DemandCues(NamedTuple):
    """A demand's wording, read once per query: its lean to a supplier kind (+1
    manufacturers, -1 platforms) with the words that caused it, and whether it is a pilot or
    small-batch need (volume-only suppliers then fit less)."""

    lean: float
    lean_cues: list[str]
    pilot_scale: bool
    quantities: Batch  # how much the demand asks for


class _Scored(NamedTuple):
    """The scored candidates of one query, aligned by position."""

    candidates: IntArray  # rows
    similarity: FloatArray
    relative: FloatArray
    total: FloatArray
    chain_score: FloatArray
    factors: dict[str, FloatArray]
    # Constraint -> the candidates whose factor of it holds a cap (``MatchIndex._caps``).
    capped: dict[str, npt.NDArray[np.bool_]] = {}  # noqa: RUF012 - never mutated


_Score = Callable[[IntArray, FloatArray, float], _Scored]
"""Scores candidates given their cosines and the best cosine among the eligible."""


def _starts(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Where each run starts in the runs laid end to end, given their lengths."""
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _gather(
    values: npt.NDArray[np.int32],
    starts: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    picks: npt.NDArray[np.int32],
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """The runs ``picks`` of ``values`` (run ``k``: ``counts[k]`` values from
    ``starts[k]``) laid end to end, and ``ends``: ``ends[i]`` is how many values the first
    ``i`` picks hold (``ends[0]`` = 0)."""
    lengths = counts[picks]
    ends = np.zeros(len(picks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ends[1:])
    # Each value's place: its run's start, then 0, 1, 2 ... within the run.
    at = np.repeat(starts[picks] - ends[:-1], lengths)
    at += np.arange(len(at), dtype=np.int64)
    return values[at], ends


def _widen(matrix: sp.csr_matrix, width: int) -> sp.csr_matrix:
    """The same rows with ``width`` columns (never fewer)."""
    if matrix.shape[1] == width:
        return matrix
    return sp.csr_matrix(
        (matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], width)
    )


def _vstack(a: Any, b: Any) -> Any:
    if sp.issparse(a):
        width = max(a.shape[1], b.shape[1])
        a = sp.csr_matrix(a, shape=(a.shape[0], width)) if a.shape[1] != width else a
        b = sp.csr_matrix(b, shape=(b.shape[0], width)) if b.shape[1] != width else b
        return sp.vstack([a, b], format="csr")
    return np.concatenate([a, b])


def _known_form(forms: Mapping[str, str], term: str) -> str:
    return forms.get(term, term)


def _written_forms(
    analyzer: Analyzer, taxonomy: Taxonomy, synonyms: Mapping[str, str]
) -> dict[str, str]:
    """Term -> how the taxonomy, the vocabularies and the English glossary write it, for the
    terms whose written form has capitals (CNC加工, SiC, Micro LED); the first form wins."""
    forms: dict[str, str] = {}
    written: list[str] = []
    for chain in taxonomy.chains:
        written.extend((chain.name, *chain.aliases, *chain.subfields))
    written.extend(synonyms.values())
    written.extend(synonyms)
    for targets in ENGLISH_GLOSSARY.values():
        written.extend(targets)
    for form in written:
        if form != form.lower():
            forms.setdefault(analyzer.normalize(form).strip(), form)
    return forms


_stated_batch = functools.lru_cache(maxsize=8192)(supplier_batch)
"""``supplier_batch`` kept per description: an explanation reads it again for each result."""


def _as_written(
    texts: Iterable[str], known: Mapping[str, str] | None = None
) -> Callable[[str], str]:
    """A term as the texts write it (``pcba`` -> PCBA, ``smt贴片`` -> SMT贴片): its first
    occurrence in them, compared in lower case, unless that cuts a Latin word (a stem such
    as ``prototyp`` stays as it is); else as ``known`` writes it (an alias's canonical term,
    a glossary's Chinese: ``cnc加工`` -> CNC加工); else the term itself."""
    known = known or {}
    raw = "\n".join(unicodedata.normalize("NFKC", t) for t in texts)
    lowered = raw.lower()
    if len(lowered) != len(raw):  # a character whose lower case is longer: positions shift
        return lambda term: known.get(term, term)

    spelled: dict[str, str] = {}

    def spell(term: str) -> str:
        known = spelled.get(term)
        if known is None:
            known = spelled[term] = spelling(term)
        return known

    def spelling(term: str) -> str:
        at = _find_whole(lowered, term)
        return raw[at : at + len(term)] if at >= 0 else known.get(term, term)

    return spell


def _wholes(labels: Sequence[str]) -> list[list[int]]:
    """For each label, the positions of the longer labels holding it (without cutting a
    Latin word: "ai" is no piece of "aip"), longest first, equal lengths by label.

    One string holds every label, longest first: a label's holders are where ``find`` meets
    it there, so the search runs in C rather than over every pair."""
    order = sorted(range(len(labels)), key=lambda k: (-len(labels[k]), labels[k]))
    joined = "\0".join(labels[k] for k in order)
    starts: list[int] = []
    at = 0
    for k in order:
        starts.append(at)
        at += len(labels[k]) + 1
    wholes: list[list[int]] = []
    for label in labels:
        holders: list[int] = []
        pos = joined.find(label) if label else -1
        # A label with no Latin letter at either end cannot cut a Latin word.
        latin = (
            bool(_LATIN_CHAR.match(label[0]) or _LATIN_CHAR.match(label[-1])) if label else False
        )
        while pos >= 0:
            k = order[bisect.bisect_right(starts, pos) - 1]
            holder = labels[k]
            if (
                len(holder) > len(label)
                and (not holders or holders[-1] != k)
                and (not latin or _contains(holder, label))
            ):
                holders.append(k)
            pos = joined.find(label, pos + 1)
        wholes.append(holders)
    return wholes


def _tag_weight(key: str) -> int:
    """CJK characters weigh 2, others 1: 'smt' (3) and '封装' (4) may be contained, 'ic' not."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in key if not ch.isspace())


def _contains(longer: str, shorter: str) -> bool:
    """``shorter`` inside ``longer`` without cutting a Latin word."""
    return len(shorter) < len(longer) and _find_whole(longer, shorter) >= 0


def _find_whole(text: str, part: str) -> int:
    """Where ``part`` first occurs in ``text`` without cutting a Latin word (``ai`` is not in
    ``aip``, ``封装`` is in ``sip封装``), or -1."""
    start = text.find(part) if part else -1
    while start >= 0:
        end = start + len(part)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (_LATIN_CHAR.match(before) and _LATIN_CHAR.match(part[0])) and not (
            _LATIN_CHAR.match(after) and _LATIN_CHAR.match(part[-1])
        ):
            return start
        start = text.find(part, start + 1)
    return -1
