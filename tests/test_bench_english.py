"""bench/english.py: its hand-written English demands, and the comparison it prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import english

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_the_english_demands_are_english_and_name_dev_demands() -> None:
    demands = json.loads(english.ENGLISH.read_text("utf-8"))["demands"]
    assert len(demands) >= 10 and any(d.get("held_out") for d in demands)
    assert len({d["ref"] for d in demands}) == len(demands)
    for d in demands:
        assert re.fullmatch(r"D\d{3}", d["ref"])
        for text in (d["title"], d["description"], *d["tags"], *d["industry_chains"]):
            assert text.strip() and not CJK.search(text), (d["ref"], text)


def test_it_ranks_each_demand_in_both_languages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def supplier(ref: str, name: str, description: str) -> dict[str, object]:
        return {
            "ref": ref,
            "kind": "platform",
            "name": name,
            "description": description,
            "industry_chains": ["新能源"],
            "tags": [],
        }

    data = {
        "suppliers": [
            supplier("P001", "钠离子电池中试平台", "钠离子电池软包电芯试制"),
            supplier("P002", "食品发酵中试平台", "益生菌发酵放大"),
        ],
        "demands": [
            {
                "ref": "D001",
                "title": "钠离子软包电芯试制",
                "description": "需要试制钠离子软包电芯",
                "industry_chains": ["新能源"],
                "tags": [],
                "relevance": {"P001": 3},
            }
        ],
    }
    written = {
        "demands": [
            {
                "ref": "D001",
                "title": "Sodium-ion pouch cell prototyping",
                "description": "We need sodium-ion pouch cells built",
                "tags": [],
                "industry_chains": ["New Energy"],
            }
        ]
    }
    (tmp_path / "dev.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    (tmp_path / "en.json").write_text(json.dumps(written), "utf-8")
    english.main(["--data", str(tmp_path / "dev.json"), "--english", str(tmp_path / "en.json")])
    out = capsys.readouterr().out
    assert re.search(r"^D001\s+1\.0000\s+1\.0000\s+Sodium-ion", out, re.MULTILINE), out
    assert "mean of read (1): chinese 1.0000, english 1.0000, english keeps 100.0%" in out
    assert "held out (" not in out  # no held-out demand in this file
