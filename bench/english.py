"""Cross-language check: our ranker on English versions of Chinese development demands.

The catalog of the development set is Chinese; about one demand in ten arrives in English. This
ranks hand-written English versions (``bench/data/english_demands.json``: title, description,
tags and chains rewritten in English, the structured fields kept) of Chinese demands,
and the Chinese originals, against the same graded suppliers, and prints nDCG@10 for both. The
English versions were written for this check, not taken from the graded data, so they measure
how well the English glossary and the taxonomy's English names bridge to a Chinese catalog.
The first thirteen were read to find the glossary's gaps; those marked ``held_out`` were written
afterwards and chose nothing, so their mean is the unbiased figure (both are printed). BM25 over
jieba tokens shares no word with a Chinese catalog on most of them and is not shown.

Run from the repository root::

    python bench/english.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.relevance import DEFAULT_DATA, demand_query, load, ndcg
from services.matching.ranking import MatchIndex, RankingWeights
from services.shared.taxonomy import load_taxonomy

ENGLISH = Path(__file__).resolve().parent / "data" / "english_demands.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--english", type=Path, default=ENGLISH)
    args = parser.parse_args(argv)
    suppliers, demands = load(args.data)
    english = {d["ref"]: d for d in json.loads(args.english.read_text("utf-8"))["demands"]}
    index = MatchIndex.build(suppliers, load_taxonomy(), RankingWeights())
    everyone = len(suppliers)
    rows: list[tuple[str, float, float, str, bool]] = []
    for demand in demands:
        written = english.get(demand["ref"])
        if written is None:
            continue
        chinese = demand_query(demand, "full")
        translated = replace(
            chinese,
            title=written["title"],
            description=written["description"],
            tags=tuple(written["tags"]),
            industry_chains=tuple(written["industry_chains"]),
        )
        scores = [
            ndcg([m.supplier_id for m in index.rank(q, "all", everyone)], demand["relevance"])
            for q in (chinese, translated)
        ]
        held_out = bool(written.get("held_out"))
        rows.append((demand["ref"], scores[0], scores[1], written["title"], held_out))
    print(f"{len(rows)} demands, nDCG@10 of our ranker (full form); * held out")
    print(f"{'demand':8s}{'chinese':>9s}{'english':>9s}  title")
    for ref, zh, en, title, held_out in rows:
        print(f"{ref + ('*' if held_out else ''):8s}{zh:9.4f}{en:9.4f}  {title}")
    for label, part in (
        ("read", [r for r in rows if not r[4]]),
        ("held out", [r for r in rows if r[4]]),
        ("all", rows),
    ):
        if part:
            zh_mean = statistics.fmean(r[1] for r in part)
            en_mean = statistics.fmean(r[2] for r in part)
            print(
                f"mean of {label} ({len(part)}): chinese {zh_mean:.4f}, english {en_mean:.4f}, "
                f"english keeps {en_mean / zh_mean:.1%}"
            )


if __name__ == "__main__":
    main()
