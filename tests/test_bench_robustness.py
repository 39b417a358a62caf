"""bench/robustness.py: its rewrites of a demand, and the table it prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import robustness
from services.matching.ranking import DemandQuery

DEMAND = DemandQuery(
    title="SiC模块封装",
    description="需要银烧结，200只",
    industry_chains=("半导体及集成电路",),
    tags=("功率模块",),
    stage="小批量试产",
)


def test_rewrites_change_only_what_they_say() -> None:
    r = {label: rewrite(DEMAND) for label, rewrite in robustness.rewrites().items()}
    assert r["as written"] == DEMAND
    assert r["traditional Chinese"].industry_chains == ("半導體及集成電路",)
    assert r["traditional Chinese"].description == "需要銀燒結，200只"
    assert r["in capitals"].title == "SIC模块封装"
    assert r["full-width letters"].title == "ＳｉＣ模块封装"
    assert r["rich-text HTML"].description.startswith("<p><span")
    assert "<br/>" in r["rich-text HTML"].description
    assert r["no tags"].tags == () and r["no tags"].industry_chains == DEMAND.industry_chains
    assert r["no chains"].industry_chains == () and r["no chains"].tags == DEMAND.tags
    assert r["no stage"].stage is None
    assert (r["title only"].title, r["title only"].description) == ("SiC模块封装", "")


def test_it_prints_both_rankers_for_every_rewrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {
        "suppliers": [
            {
                "ref": "P001",
                "kind": "platform",
                "name": "碳化硅模块封装平台",
                "description": "SiC功率模块银烧结封装",
                "industry_chains": ["半导体及集成电路"],
            },
            {"ref": "P002", "kind": "platform", "name": "食品中试平台", "description": "发酵"},
        ],
        "demands": [{"ref": "D001", "title": "SiC模块封装", "relevance": {"P001": 3}}],
    }
    (tmp_path / "dev.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    robustness.main(["--data", str(tmp_path / "dev.json")])
    rows = re.findall(r"^(.+?)\s+(\d\.\d{4})\s+(\d\.\d{4})$", capsys.readouterr().out, re.M)
    assert [label.strip() for label, _, _ in rows] == list(robustness.rewrites())
    assert all(float(ours) == 1.0 for _, _, ours in rows)
