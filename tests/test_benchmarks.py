"""The evaluation and benchmark commands run and print their figures (no thresholds here:
the figures are read, not asserted, except that they are sane)."""

from __future__ import annotations

import json

import pytest

from benchmarks import pose_eval

pytestmark = [pytest.mark.slow]


@pytest.mark.evalset
def test_pose_eval_prints_a_table_and_a_json_last_line(
    evalset, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    assert pose_eval.main(["--evalset", str(evalset)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("metric")
    result = json.loads(lines[-1])
    for key in (
        "pck02",
        "pck02_photo",
        "pck02_drawn",
        "person_recall",
        "false_people_on_negatives",
        "mirror_rank1",
        "ndcg10",
        "seconds_per_image",
    ):
        assert key in result, key
    assert 0.0 < result["pck02_photo"] <= 1.0
    assert 0.0 < result["person_recall"] <= 1.0
    assert 0.0 < result["ndcg10"] <= 1.0
    assert result["seconds_per_image"] > 0
    assert result["annotated_people"] > 0 and result["negative_images"] > 0


def test_search_bench_runs_the_service_ranking_against_brute_force(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A small run of the issue's benchmark: the server process ranks with the published
    ANN index, the figures the issue names are all there, and recall is measured."""
    from benchmarks import search_bench

    assert search_bench.main(["--rows", "3000", "--queries", "20"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("metric")
    result = json.loads(lines[-1])
    for key in ("rows", "p50_ms", "p99_ms", "recall10", "brute_p50_ms", "speedup",
                "index_build_s", "rss_mb"):  # fmt: skip
        assert key in result, key
    assert result["rows"] == 3000
    assert 0.5 <= result["recall10"] <= 1.0
    assert result["p50_ms"] > 0 and result["rss_mb"] > 0
