"""The evaluation and benchmark commands run and print their figures (no thresholds here:
the figures are read, not asserted, except that they are sane)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def _one_person(
    size: tuple[int, int], body: tuple[int, int, int, int], shoulder: tuple[int, int]
) -> tuple[Any, Any]:
    """An evalset image of one annotated person (their box `body`, x0 y0 x1 y1, drawn dark on
    a light picture of `size`; one labelled joint, the left shoulder) and its picture."""
    import numpy as np
    from PIL import Image, ImageDraw

    from benchmarks.pose_eval_matching import EvalImage, Person

    picture = Image.new("RGB", size, (200, 190, 180))
    ImageDraw.Draw(picture).rectangle(body, fill=(10, 10, 10))
    keypoints = np.zeros((17, 3))
    keypoints[5] = (*shoulder, 2)
    x0, y0, x1, y1 = body
    person = Person("a.jpg", "photo", keypoints, (float(x0), float(y0), x1 - x0, y1 - y0))
    return EvalImage("a.jpg", "photo", "coco", (person,)), picture


def test_a_crowd_tiles_the_picture_and_moves_every_copys_people() -> None:
    import numpy as np

    from benchmarks.crowd_eval import tiled

    image, picture = _one_person((200, 160), (40, 20, 80, 140), (50, 40))
    crowd_image, crowd = tiled(image, picture, 2)
    assert crowd.size == (200, 160) and len(crowd_image.people) == 4
    pixels = np.asarray(crowd.convert("L"))
    for copy in crowd_image.people:
        x, y, w, h = copy.bbox
        assert (w, h) == (20.0, 60.0)
        assert pixels[int(y + h / 2), int(x + w / 2)] < 50  # the copy's body is where its box is
        assert tuple(copy.keypoints[5, :2]) == (x + 5, y + 10)  # the shoulder moved with it
    assert {p.bbox[:2] for p in crowd_image.people} == {(20, 10), (120, 10), (20, 90), (120, 90)}


def test_each_degradation_keeps_the_people_where_the_pixels_take_them() -> None:
    import numpy as np

    from benchmarks.degraded_eval import DEGRADATIONS

    image, picture = _one_person((400, 300), (100, 50, 140, 250), (110, 80))
    # Turned a quarter anticlockwise, (x, y) → (y, 400 − x); half a turn, (400 − x, 300 − y).
    turns = {
        "turn90": ((300, 400), (50, 260, 200, 40), (80, 290)),
        "turn180": ((400, 300), (260, 50, 40, 200), (290, 220)),
    }
    for name, degrade in DEGRADATIONS.items():
        moved, degraded = degrade(image, picture, 7)
        again = degrade(image, picture, 7)[1]
        assert np.array_equal(np.asarray(degraded), np.asarray(again)), name  # seeded
        assert degraded.mode == "RGB", name
        scale = degraded.width / picture.width
        box, shoulder = (100, 50, 40, 200), (110, 80)
        if name.startswith(("small", "large")):
            assert max(degraded.size) == int(name.removeprefix("small").removeprefix("large"))
            box, shoulder = tuple(v * scale for v in box), (110 * scale, 80 * scale)
        elif name in turns:
            size, box, shoulder = turns[name]
            assert degraded.size == size, name
        else:
            assert scale == 1.0, name
        if name != "none":
            assert not np.array_equal(np.asarray(degraded), np.asarray(picture)), name
        (copy,) = moved.people
        x, y, w, h = copy.bbox
        assert (x, y, w, h) == pytest.approx(box), name
        assert tuple(copy.keypoints[5, :2]) == pytest.approx(shoulder), name
        body = np.asarray(degraded.convert("L"))[int(y + h / 2), int(x + w / 2)]
        assert body < 80, name  # the person's box is still on the dark body
    grey = np.asarray(DEGRADATIONS["grey"](image, picture, 0)[1]).astype(int)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()


def _photo_of_nobody(tmp_path: Path) -> Path:
    """A folder holding one photo with nobody in it: a plain green field."""
    from PIL import Image

    nobody = tmp_path / "nobody"
    nobody.mkdir()
    Image.new("RGB", (320, 240), (90, 140, 60)).save(nobody / "field.png")
    return nobody


@pytest.mark.evalset
def test_degraded_eval_reads_degraded_photos_and_negatives(
    evalset, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    from benchmarks import degraded_eval

    nobody = _photo_of_nobody(tmp_path)
    argv = ["--evalset", str(evalset), "--only", "jpeg25", "--extra-negatives", str(nobody)]
    assert degraded_eval.main([*argv, "--options", '{"reread": false}']) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for prefix in ("jpeg25_", "option_jpeg25_"):
        assert 0.0 < result[prefix + "person_recall_10plus"] <= 1.0
        assert 0.0 < result[prefix + "pck02_photo"] <= 1.0
        assert result[prefix + "extra_images_with_people"] == 0
        by_source = result[prefix + "recall_10plus_by_source"]
        assert by_source and all(0.0 <= v <= 1.0 for v in by_source.values())
    assert result["extra_negative_images"] == 1 and result["options"] == '{"reread": false}'
    for wrong in ("reread", '{"no_such_option": 1}'):  # not JSON, an option it does not take
        with pytest.raises(SystemExit):
            degraded_eval.main([*argv, "--options", wrong])


@pytest.mark.evalset
def test_where_lost_names_a_stage_for_every_person_a_degradation_costs(
    evalset, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    from benchmarks import where_lost

    assert where_lost.main(["--evalset", str(evalset), "--only", "jpeg10"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    stages = [result[f"jpeg10_{stage}"] for stage in where_lost.STAGES]
    # Every person lost is lost at one stage, and only people found undegraded are lost.
    assert result["found_10plus"] > 0
    assert result["jpeg10_lost"] == sum(stages) <= result["found_10plus"]
    assert result["jpeg10_gained"] >= 0 and "blur_lost" not in result
    with pytest.raises(SystemExit):
        where_lost.main(["--evalset", str(evalset), "--only", "sepia"])


@pytest.mark.evalset
def test_reread_bars_sweeps_the_joint_agreement_after_a_degradation(
    evalset, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    from benchmarks import reread_bars

    nobody = _photo_of_nobody(tmp_path)
    argv = ["--evalset", str(evalset), "--negatives", str(nobody), "--bars", "0.25"]
    argv += ["--presences", "0.8", "--agreements", "0.8", "--floors", "0.5", "0.7"]
    assert reread_bars.main([*argv, "--degradation", "jpeg25"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["degradation"] == "jpeg25"
    people = result["evalset_people_10plus"]
    # Presence alone keeps no one the agreement would not: it only adds people; a higher
    # presence under it only takes them away.
    off, agreed = result["agreement-off_evalset_10plus"], result["agreement0.8_evalset_10plus"]
    assert 0 < off <= agreed <= people
    assert result["floor0.7_evalset_10plus"] <= result["floor0.5_evalset_10plus"]
    assert result["floor0.7_crowds_10plus"] <= result["floor0.5_crowds_10plus"] <= 4 * people
    false = [v for k, v in result.items() if k.endswith("_nobody_false")]  # per bar
    assert len(false) == 6 and not any(false)  # bar, presence, agreement, 2 floors, off
    with pytest.raises(SystemExit):
        reread_bars.main([*argv, "--degradation", "sepia"])
