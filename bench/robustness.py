"""Robustness: nDCG@10 of our ranker and BM25 when the demands arrive written differently.

The same development-set demands, each rewritten the way real callers send them, ranked by
both rankers against the same grades: in traditional Chinese (``opencc`` s2t), typed in
capitals, with full-width letters, wrapped in a rich-text editor's HTML, without their tags,
without their chains, without both, without a stage, and as a bare title. A good ranker loses
little where the meaning is unchanged (the first four) and degrades gently where information
is taken away (the rest).

Run from the repository root::

    python bench/robustness.py
    python bench/robustness.py --form short
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import opencc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.relevance import DEFAULT_DATA, bm25, demand_query, load, ndcg
from services.matching.ranking import DemandQuery, MatchIndex, RankingWeights
from services.shared.taxonomy import load_taxonomy

Rewrite = Callable[[DemandQuery], DemandQuery]


def _texts(q: DemandQuery, change: Callable[[str], str], chains: bool = False) -> DemandQuery:
    return replace(
        q,
        title=change(q.title),
        description=change(q.description),
        tags=tuple(change(t) for t in q.tags),
        industry_chains=tuple(change(c) for c in q.industry_chains)
        if chains
        else q.industry_chains,
    )


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def rewrites() -> dict[str, Rewrite]:
    to_traditional = opencc.OpenCC("s2t").convert
    return {
        "as written": lambda q: q,
        "traditional Chinese": lambda q: _texts(q, to_traditional, chains=True),
        "in capitals": lambda q: _texts(q, str.upper),
        "full-width letters": lambda q: _texts(q, _full_width),
        "rich-text HTML": lambda q: replace(
            q,
            description='<p><span style="font-size:14px">'
            + q.description.replace("，", "，<br/>")
            + "</span>&nbsp;</p>",
        ),
        "no tags": lambda q: replace(q, tags=()),
        "no chains": lambda q: replace(q, industry_chains=()),
        "no tags, no chains": lambda q: replace(q, tags=(), industry_chains=()),
        "no stage": lambda q: replace(q, stage=None),
        "title only": lambda q: replace(q, tags=(), industry_chains=(), description=""),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--form", choices=("full", "short"), default="full")
    args = parser.parse_args(argv)
    suppliers, demands = load(args.data)
    index = MatchIndex.build(suppliers, load_taxonomy(), RankingWeights())
    peer, _ = bm25(suppliers)
    everyone = len(suppliers)
    print(f"{len(demands)} demands, {args.form} form, nDCG@10")
    print(f"{'demands':22s}{'bm25':>8s}{'ours':>8s}")
    for label, rewrite in rewrites().items():
        ours_scores, peer_scores = [], []
        for d in demands:
            q = rewrite(demand_query(d, args.form))
            ours_scores.append(
                ndcg([m.supplier_id for m in index.rank(q, "all", everyone)], d["relevance"])
            )
            peer_scores.append(ndcg(peer(q), d["relevance"]))
        print(
            f"{label:22s}{statistics.fmean(peer_scores):8.4f}{statistics.fmean(ours_scores):8.4f}"
        )


if __name__ == "__main__":
    main()
