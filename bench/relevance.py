"""Ranking quality on the development set: our ranker beside BM25, measured in the same run.

Figures (kind=all, the whole supplier list ranked for every demand):

- ``nDCG@10``  gains 2^grade - 1, ideal ordering over every graded supplier of the demand;
- ``MRR``      reciprocal rank of the first supplier graded >= 2 ("good" or "ideal");
- ``R@10``     share of the suppliers graded >= 2 found in the top ten.

And for ``GET /v1/{platforms,manufacturers}/{id}/similar``: nDCG@10 of ``MatchIndex.similar``
against a ground truth read off the grades (``substitutes``: two suppliers are alike as far as
the same demands grade both good), beside BM25 with the supplier's own text as the query.

Unlisted suppliers are grade 0 (see ``FORMAT.md``). Both rankers drop suppliers lacking a
required certification (the same ``normalize_certification``). The peer is BM25 (``bm25s``,
Lucene variant, k1=1.5, b=0.75) over jieba search-mode tokens (lower-cased, punctuation
dropped) of the concatenated supplier text: name, organisation, chains, tags, capabilities,
equipment, description; its query is the demand's title, chains, tags and description.

Two forms of each demand:

- ``full``   every field;
- ``short``  as a terse web form sends it: the description replaced by the title, so the text
             is the title, the chains and the tags; the structured fields (stage, district,
             needs_voucher, required_certifications) are kept, as the form has them.

The held-out check splits the demands by position (odd / even) and prints each half.

Run from the repository root::

    python bench/relevance.py
    python bench/relevance.py --data ../shared/data/dev-relevance.json
    python bench/relevance.py --set batch_mismatch=0.15 --set kind_lean=0.1   # other weights
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import bm25s
import jieba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.matching.ranking import (
    DemandQuery,
    MatchIndex,
    RankingWeights,
    SupplierDoc,
    normalize_certification,
)
from services.shared.taxonomy import Taxonomy, load_taxonomy

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "dev-relevance.json"
K = 10
GOOD = 2

Ranker = Callable[[DemandQuery], list[str]]


# ------------------------------------------------------------------ data


def load(path: Path) -> tuple[list[SupplierDoc], list[dict[str, Any]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    suppliers = [
        SupplierDoc(
            id=s["ref"],
            kind=s["kind"],
            name=s["name"],
            organization=s.get("organization", ""),
            district=s.get("district", ""),
            description=s.get("description", ""),
            industry_chains=tuple(s.get("industry_chains", ())),
            tags=tuple(s.get("tags", ())),
            capabilities=tuple(s.get("capabilities", ())),
            equipment=tuple(s.get("equipment", ())),
            certifications=tuple(s.get("certifications", ())),
            stages=tuple(s.get("stages", ())),
            accepts_vouchers=bool(s.get("accepts_vouchers", False)),
            level=s.get("level"),
        )
        for s in data["suppliers"]
    ]
    return suppliers, data["demands"]


def demand_query(d: dict[str, Any], form: str) -> DemandQuery:
    query = DemandQuery(
        title=d["title"],
        description=d.get("description", ""),
        industry_chains=tuple(d.get("industry_chains", ())),
        tags=tuple(d.get("tags", ())),
        stage=d.get("stage"),
        district=d.get("district"),
        needs_voucher=bool(d.get("needs_voucher", False)),
        required_certifications=tuple(d.get("required_certifications", ())),
    )
    return replace(query, description=query.title) if form == "short" else query


# ------------------------------------------------------------------ metrics


def ndcg(ranked: Sequence[str], grades: dict[str, int], k: int = K) -> float:
    dcg = sum((2 ** grades.get(s, 0) - 1) / math.log2(i + 2) for i, s in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def mrr(ranked: Sequence[str], grades: dict[str, int]) -> float:
    for i, s in enumerate(ranked):
        if grades.get(s, 0) >= GOOD:
            return 1.0 / (i + 1)
    return 0.0


def recall(ranked: Sequence[str], grades: dict[str, int], k: int = K) -> float:
    good = {s for s, g in grades.items() if g >= GOOD}
    return len(good & set(ranked[:k])) / len(good) if good else 0.0


# ------------------------------------------------------------------ rankers


def ours(
    suppliers: Sequence[SupplierDoc], taxonomy: Taxonomy, weights: RankingWeights
) -> tuple[Ranker, Ranker]:
    """(whole list, top ten): the whole list feeds MRR, the top ten is what is timed."""
    index = MatchIndex.build(suppliers, taxonomy, weights)
    n = len(suppliers)
    return (
        lambda q: [m.supplier_id for m in index.rank(q, "all", n)],
        lambda q: [m.supplier_id for m in index.rank(q, "all", K)],
    )


def bm25(suppliers: Sequence[SupplierDoc]) -> tuple[Ranker, Ranker]:
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()

    def tokens(text: str) -> list[str]:
        return [t for t in tokenizer.cut_for_search(text.lower()) if t.strip() and t.isalnum()]

    corpus = [
        tokens(
            " ".join(
                (
                    s.name,
                    s.organization,
                    " ".join(s.industry_chains),
                    " ".join(s.tags),
                    " ".join(s.capabilities),
                    " ".join(s.equipment),
                    s.description,
                )
            )
        )
        for s in suppliers
    ]
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    ids = [s.id for s in suppliers]
    certs = [{normalize_certification(c) for c in s.certifications} for s in suppliers]

    def rank(q: DemandQuery) -> list[str]:
        text = " ".join((q.title, " ".join(q.industry_chains), " ".join(q.tags), q.description))
        scores = np.asarray(retriever.get_scores(tokens(text)), dtype=np.float64)
        required = {normalize_certification(c) for c in q.required_certifications} - {""}
        order = sorted(range(len(ids)), key=lambda i: (-round(float(scores[i]), 9), ids[i]))
        return [ids[i] for i in order if required <= certs[i]]

    def top(q: DemandQuery) -> list[str]:
        text = " ".join((q.title, " ".join(q.industry_chains), " ".join(q.tags), q.description))
        scores = np.asarray(retriever.get_scores(tokens(text)), dtype=np.float64)
        required = {normalize_certification(c) for c in q.required_certifications} - {""}
        ok = np.fromiter((required <= c for c in certs), dtype=bool, count=len(certs))
        scores[~ok] = -np.inf
        best = np.argpartition(-scores, min(K, len(ids) - 1))[:K]
        return [ids[i] for i in sorted(best, key=lambda i: (-scores[i], ids[i]))]

    return rank, top


# ------------------------------------------------------------------ report


def latency(top: Ranker, demands: Sequence[dict[str, Any]], form: str) -> float:
    """Mean seconds per query for the top ten (after one warm-up pass)."""
    queries = [demand_query(d, form) for d in demands]
    for q in queries:
        top(q)
    started = time.perf_counter()
    for q in queries:
        top(q)
    return (time.perf_counter() - started) / max(len(queries), 1)


def evaluate(
    rank: Ranker, demands: Sequence[dict[str, Any]], form: str
) -> dict[str, dict[str, float]]:
    per: dict[str, dict[str, float]] = {}
    for d in demands:
        ranked = rank(demand_query(d, form))
        grades = d["relevance"]
        per[d["ref"]] = {
            "ndcg": ndcg(ranked, grades),
            "mrr": mrr(ranked, grades),
            "recall": recall(ranked, grades),
        }
    return per


def mean(per: dict[str, dict[str, float]], refs: Sequence[str], metric: str) -> float:
    return statistics.fmean(per[r][metric] for r in refs) if refs else float("nan")


def chains_of(d: dict[str, Any], taxonomy: Taxonomy) -> list[str]:
    names = taxonomy.resolve_all(d.get("industry_chains", ())).chains
    if not names:
        for label in d.get("industry_chains", ()):
            names.extend(c for c in taxonomy.chains_for_subfield(label) if c not in names)
    return names or ["(none named)"]


def substitutes(demands: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Ground truth for "suppliers like this one", read off the demands' grades: t is like s
    with grade max over demands of min(grade of s, grade of t), counting only demands that
    grade both 2 or more (both good for the same need)."""
    like: dict[str, dict[str, int]] = {}
    for d in demands:
        good = {s: g for s, g in d["relevance"].items() if g >= GOOD}
        for s, gs in good.items():
            for t, gt in good.items():
                if s != t:
                    mine = like.setdefault(s, {})
                    mine[t] = max(mine.get(t, 0), min(gs, gt))
    return like


def similar_ndcg(
    suppliers: Sequence[SupplierDoc],
    demands: Sequence[dict[str, Any]],
    taxonomy: Taxonomy,
    weights: RankingWeights,
    bm25_rank: Ranker,
) -> tuple[int, float, float]:
    """(suppliers judged, nDCG@10 of ``MatchIndex.similar``, of BM25 with the supplier's own
    text as the query, itself left out)."""
    index = MatchIndex.build(suppliers, taxonomy, weights)
    docs = {s.id: s for s in suppliers}
    ours_scores, bm25_scores = [], []
    for s, grades in substitutes(demands).items():
        ours_scores.append(ndcg([m.supplier_id for m in index.similar(s, len(suppliers))], grades))
        doc = docs[s]
        query = DemandQuery(
            title=doc.name,
            description=" ".join((doc.description, *doc.capabilities, *doc.equipment)),
            industry_chains=doc.industry_chains,
            tags=doc.tags,
        )
        bm25_scores.append(ndcg([t for t in bm25_rank(query) if t != s], grades))
    if not ours_scores:
        return 0, float("nan"), float("nan")
    return len(ours_scores), statistics.fmean(ours_scores), statistics.fmean(bm25_scores)


def weights_from(overrides: Sequence[str]) -> RankingWeights:
    """``RankingWeights`` with ``name=value`` overrides, each value read as its field's type;
    ValueError names a field that does not exist or a value that does not parse."""
    defaults = RankingWeights()
    changes: dict[str, Any] = {}
    for item in overrides:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not any(f.name == name for f in fields(RankingWeights)):
            known = ", ".join(f.name for f in fields(RankingWeights))
            raise ValueError(f"{item!r}: expected NAME=VALUE with NAME one of {known}")
        current = getattr(defaults, name)
        if isinstance(current, bool):
            if text.strip().lower() not in ("true", "false"):
                raise ValueError(f"{item!r}: {name} takes true or false")
            changes[name] = text.strip().lower() == "true"
        else:
            try:
                changes[name] = type(current)(text)
            except ValueError:
                kind = "whole number" if isinstance(current, int) else "number"
                raise ValueError(f"{item!r}: {name} takes a {kind}") from None
    return replace(defaults, **changes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="rank with this RankingWeights field changed (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        weights = weights_from(args.set)
    except ValueError as exc:
        parser.error(str(exc))

    suppliers, demands = load(args.data.resolve())
    taxonomy = load_taxonomy()
    refs = [d["ref"] for d in demands]
    halves = {"odd": refs[0::2], "even": refs[1::2]}

    started = time.perf_counter()
    our_rank, our_top = ours(suppliers, taxonomy, weights)
    our_build = time.perf_counter() - started
    started = time.perf_counter()
    bm25_rank, bm25_top = bm25(suppliers)
    bm25_build = time.perf_counter() - started

    print(f"data: {args.data.resolve()}  suppliers={len(suppliers)} demands={len(demands)}")
    print(f"index build: ours {our_build:.2f}s, bm25 {bm25_build:.2f}s (jieba load included)")
    if args.set:
        print("weights changed:", ", ".join(args.set))
    results: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for form in ("full", "short"):
        print(f"\n== form: {form} ==")
        print(f"{'ranker':8} {'nDCG@10':>8} {'MRR':>7} {'R@10':>7} {'ms/top10':>9}   error cut")
        for name, rank, top in (("bm25", bm25_rank, bm25_top), ("ours", our_rank, our_top)):
            per = evaluate(rank, demands, form)
            seconds = latency(top, demands, form)
            results[name, form] = per
            cut = ""
            if name == "ours":
                base, ours_ndcg = mean(results["bm25", form], refs, "ndcg"), mean(per, refs, "ndcg")
                cut = f"{(1 - ours_ndcg - (1 - base)) / (1 - base) * -100:+.1f}% of BM25's 1-nDCG"
            print(
                f"{name:8} {mean(per, refs, 'ndcg'):8.4f} {mean(per, refs, 'mrr'):7.4f} "
                f"{mean(per, refs, 'recall'):7.4f} {seconds * 1000:9.2f}   {cut}"
            )
        print("held-out halves (nDCG@10 bm25 / ours):", end="")
        for half, members in halves.items():
            print(
                f"  {half} {mean(results['bm25', form], members, 'ndcg'):.4f}"
                f" / {mean(results['ours', form], members, 'ndcg'):.4f}",
                end="",
            )
        print()

    by_chain: dict[str, list[str]] = {}
    for d in demands:
        for chain in chains_of(d, taxonomy):
            by_chain.setdefault(chain, []).append(d["ref"])
    print("\n== nDCG@10 per chain (demand's named chains, canonical) ==")
    print(
        f"{'chain':24} {'n':>3} {'bm25 full':>10} {'ours full':>10} {'bm25 short':>11} {'ours short':>11}"
    )
    for chain in sorted(by_chain, key=lambda c: (-len(by_chain[c]), c)):
        members = by_chain[chain]
        cells = [
            mean(results[r, f], members, "ndcg")
            for f in ("full", "short")
            for r in ("bm25", "ours")
        ]
        flag = "  <- below bm25" if cells[1] < cells[0] - 1e-9 or cells[3] < cells[2] - 1e-9 else ""
        print(
            f"{chain:24} {len(members):3d} {cells[0]:10.4f} {cells[1]:10.4f} {cells[2]:11.4f} "
            f"{cells[3]:11.4f}{flag}"
        )

    judged, ours_similar, bm25_similar = similar_ndcg(
        suppliers, demands, taxonomy, weights, bm25_rank
    )
    print(
        f"\n== similar suppliers: {judged} suppliers graded >= {GOOD} for some demand; t is like "
        "s as far as both serve the same demands =="
    )
    print(f"nDCG@10  bm25 {bm25_similar:.4f}  ours {ours_similar:.4f}")

    print("\n== ten worst demands for ours (full form, nDCG@10) ==")
    titles = {d["ref"]: d["title"] for d in demands}
    worst = sorted(refs, key=lambda r: (results["ours", "full"][r]["ndcg"], r))[:10]
    for r in worst:
        print(
            f"{r}  ours {results['ours', 'full'][r]['ndcg']:.4f}  short {results['ours', 'short'][r]['ndcg']:.4f}"
            f"  bm25 {results['bm25', 'full'][r]['ndcg']:.4f}  {titles[r]}"
        )


if __name__ == "__main__":
    main()
