"""bench.learning_curve on the tiny model: the mechanics (slices, equal steps, scores, reuse), not the curve."""

from __future__ import annotations

import json

import pytest

from bench.learning_curve import main

pytestmark = pytest.mark.slow

EVENT_TYPES = ["Conflict.Attack", "Life.Die", "Movement.Transport", "Contact.Meet"]


def test_rows_share_the_full_runs_steps_and_are_scored_on_both_tests(tiny_data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARABIC_NEWS_DATA", str(tiny_data_root))
    argv = [
        "--config",
        "configs/tiny.yaml",
        "--seeds",
        "13",
        "--rows",
        "quarter",
        "mix",
        "--out",
        str(tmp_path),
        f"layers.events={json.dumps(EVENT_TYPES)}",
        'roles=["Agent", "Patient", "Place"]',
        "data.dev=anercorp-events:dev",
        "data.test=anercorp-events:test",
        "training.epochs=1",
    ]
    assert main(argv) == 0
    results = {r["row"]: r for r in json.loads((tmp_path / "learning-curve.json").read_text())["results"]}
    assert set(results) == {"quarter", "full", "mix"}
    assert results["quarter"]["steps"] == results["full"]["steps"] == results["mix"]["steps"]
    assert results["quarter"]["tokens"] < results["full"]["tokens"] < results["mix"]["tokens"]
    for result in results.values():
        assert all(0 <= result[key] <= 100 for key in ("entities", "events", "wiki_events", "arguments"))
    table = (tmp_path / "learning-curve.md").read_text()
    assert "25% of ANERcorp-Events train" in table and "AQMAR events F1" in table
    assert "arguments F1, gold mentions" in table
    assert (tmp_path / "learning-curve.png").stat().st_size > 0
    capsys.readouterr()

    assert main(argv) == 0  # finished runs are reused, not trained again
    assert capsys.readouterr().err.count("reusing") == 3
