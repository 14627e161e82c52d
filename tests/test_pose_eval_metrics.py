"""The evaluation's pure parts: 10-plus counting, source naming, per-source counts, the
leave-one-source-out choice (never made with the held-out source's numbers). No models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import loso
from benchmarks.loso import Variant, choose_variant, leave_one_source_out, objective
from benchmarks.pose_eval_extra import (
    CeilingRecord,
    ceiling_metrics,
    ceiling_split,
    extra_images,
    extra_label,
    ground_truth_roi,
)
from benchmarks.pose_eval_matching import (
    EvalImage,
    Person,
    SourceCounts,
    counts_by_source,
    detection_metrics,
    labelled_joints,
    match_image,
    pooled,
    source_name,
    torso_size,
)
from pipelines.records import Pose


def person(labelled: int, left: float = 100.0) -> Person:
    """A standing figure at x `left` to `left` + 100, y 100–400, its first `labelled` joints
    labelled."""
    rng = np.random.default_rng(labelled)
    keypoints = np.zeros((17, 3))
    keypoints[:, 0] = left + 100 * rng.random(17)
    keypoints[:, 1] = np.linspace(100, 400, 17)
    keypoints[:labelled, 2] = 2
    return Person("images/x.jpg", "photo", keypoints, (left, 100.0, 100.0, 300.0))


def as_pose(p: Person, shift: float = 0.0) -> Pose:
    """A detection of `p`'s labelled joints (the others unseen), moved right by `shift`."""
    arr = p.keypoints.astype(np.float64).copy()
    arr[:, 0] += shift
    arr[:, 2] = np.where(arr[:, 2] > 0, 0.9, 0.0)
    return Pose.from_array(arr)


# ---------------------------------------------------------------- 10-plus and sources


def test_labelled_joints_counts_v_above_zero() -> None:
    kp = np.zeros((17, 3))
    kp[:9, 2] = 2
    kp[9, 2] = 1  # labelled but occluded still counts
    assert labelled_joints(kp) == 10
    assert labelled_joints(np.zeros((17, 3))) == 0


@pytest.mark.parametrize(
    ("source_path", "file", "expected"),
    [
        ("tests/data/coco/000000000785.jpg", "images/coco__000000000785.jpg", "coco"),
        ("tests/data/ochuman/003799.jpg", "", "ochuman"),
        ("tests/data/humanart/2D_virtual_human/digital_art/000000001648.jpg", "", "humanart"),
        ("tests/data/h36m/S1/S1_Directions_1.54138969/x.jpg", "", "h36m"),
        ("tests/data/ap10k/000000000004.jpg", "images/neg_ap10k__000000000004.jpg", "ap10k"),
        ("examples/characters/char1/texture.png", "images/animdraw__char1_texture.png", "animdraw"),
        ("examples/characters/char5/texture.png", "", "animdraw"),
        ("demo/resources/sunglasses.jpg", "images/neg_mmpose__sunglasses.jpg", "mmpose"),
        ("", "images/neg_locust__630.jpg", "locust"),
    ],
)
def test_source_name_is_the_dataset_folder(source_path: str, file: str, expected: str) -> None:
    assert source_name(source_path, file) == expected


def test_recall_10plus_counts_only_people_with_ten_labelled_joints() -> None:
    full, nine, ten = person(17), person(9, left=400), person(10, left=700)
    image = EvalImage("images/x.jpg", "photo", "coco", (full, nine, ten))
    # `full` found, `nine` found, `ten` missed; plus a negative image with one false person.
    found = match_image(image, [as_pose(full), as_pose(nine)])
    negative = match_image(EvalImage("images/n.jpg", "photo", "ap10k", ()), [as_pose(full)])
    metrics = detection_metrics([found, negative])
    assert metrics["annotated_people"] == 3
    assert metrics["person_recall"] == round(2 / 3, 4)
    assert metrics["annotated_people_10plus"] == 2
    assert metrics["person_recall_10plus"] == 0.5
    assert metrics["false_people_on_negatives"] == 1
    assert metrics["per_source"]["coco"] == {
        "images": 1,
        "people": 3,
        "recalled": 2,
        "people_10plus": 2,
        "recall_10plus": 0.5,
        "pck02": 1.0,
        "negative_images": 0,
        "false_people": 0,
    }
    assert metrics["per_source"]["ap10k"]["false_people"] == 1
    assert metrics["per_source"]["ap10k"]["recall_10plus"] is None


def test_pck_counts_the_labelled_joints_of_matched_people() -> None:
    p = person(17)
    image = EvalImage("images/x.jpg", "photo", "coco", (p,))
    exact = match_image(image, [as_pose(p)]).matches[0]
    assert exact.matched and (exact.pck_hits, exact.pck_total) == (17, 17)
    # Shifted by more than 0.2 torso, yet still matched by box IoU: no joint hits.
    torso = torso_size(p.keypoints)
    assert torso is not None
    shifted = match_image(image, [as_pose(p, shift=0.25 * torso)]).matches[0]
    assert shifted.matched and shifted.pck_hits == 0 and shifted.pck_total == 17


def test_counts_pool_additively_across_sources() -> None:
    images = [
        match_image(EvalImage(f"images/{i}.jpg", "photo", src, (person(17),)), [])
        for i, src in enumerate(["coco", "mpii", "coco"])
    ]
    by_source = counts_by_source(images)
    assert list(by_source) == ["coco", "mpii"]
    assert by_source["coco"].people == 2 and by_source["mpii"].people == 1
    assert pooled(by_source.values()).people == 3


def test_ground_truth_roi_is_an_upright_square_around_the_person() -> None:
    roi = ground_truth_roi(person(17))
    assert roi.rotation == 0.0
    x0, y0, x1, y1 = roi.box()
    assert x1 - x0 == pytest.approx(y1 - y0)
    assert x0 <= 100 and y0 <= 100 and x1 >= 200 and y1 >= 400


def test_the_ceiling_tells_detector_misses_from_landmark_misses() -> None:
    a, b, c = person(17), person(12, left=400), person(11, left=700)
    image = EvalImage("images/x.jpg", "photo", "coco", (a, b, c))
    result = match_image(image, [as_pose(a)])  # b and c missed by the system

    def record(index: int, accepted: bool, hits: int) -> CeilingRecord:
        return CeilingRecord(
            image="images/x.jpg",
            index=index,
            source="coco",
            labelled=17,
            presence=0.9,
            pose_score=0.8,
            accepted=accepted,
            matched=accepted,
            pck_hits=hits,
            pck_total=17,
        )

    # On its true region the landmark model accepts a (worse than the system) and b, not c.
    records = [record(0, True, 10), record(1, True, 17), record(2, False, 0)]
    split = ceiling_split(records, [result])
    assert split["missed_10plus_photo"] == 2
    assert split["missed_10plus_ceiling_accepts"] == 1  # b: the detector's miss
    assert split["matched_pck02_system"] == 1.0
    assert split["matched_pck02_ceiling"] == round(10 / 17, 4)
    figures = ceiling_metrics(records)
    assert figures["ceiling_accept"] == round(2 / 3, 4)
    assert figures["ceiling_pck02"] == round(27 / 34, 4)
    assert figures["ceiling_pck02_all"] == round(27 / 51, 4)


def test_extra_images_draws_a_fixed_sample(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for i in range(12):
        Image.new("RGB", (4, 4)).save(tmp_path / ("sub" if i % 2 else ".") / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    every = extra_images(tmp_path, limit=100)
    assert len(every) == 12
    sample = extra_images(tmp_path, limit=5)
    assert len(sample) == 5 and set(sample) <= set(every)
    assert sample == extra_images(tmp_path, limit=5)


# ---------------------------------------------------------------- leave-one-source-out


def counts(recall_10plus: tuple[int, int], false: tuple[int, int] = (0, 0)) -> SourceCounts:
    """Counts with `recalled` of `people` 10-plus people and `false` people on `negatives`."""
    recalled, people = recall_10plus
    return SourceCounts(
        images=max(people, 1),
        people=people,
        recalled=recalled,
        people_10plus=people,
        recalled_10plus=recalled,
        negative_images=false[1],
        false_people=false[0],
    )


def test_objective_weighs_recall_pck_and_false_people() -> None:
    c = SourceCounts(
        people_10plus=4,
        recalled_10plus=3,
        pck_photo_hits=8,
        pck_photo_total=10,
        negative_images=5,
        false_people=10,
    )
    assert objective(c) == pytest.approx(0.75 + 0.8 - 0.1 * 2)
    assert objective(SourceCounts()) == 0.0


def test_loso_never_chooses_with_the_held_out_source() -> None:
    # "tuned" wins only because of source C; on A and B the defaults are better.
    table = {
        "defaults": {"A": counts((8, 10)), "B": counts((7, 10)), "C": counts((0, 10))},
        "tuned": {"A": counts((7, 10)), "B": counts((6, 10)), "C": counts((10, 10))},
    }
    assert choose_variant(table, "C")[0] == "defaults"
    # Held out A or B, C's numbers take part and decide for "tuned".
    assert choose_variant(table, "A")[0] == "tuned"
    folds = {f.source: f for f in leave_one_source_out(table, ["A", "B", "C"])}
    assert folds["C"].chosen == "defaults"
    assert folds["C"].counts == table["defaults"]["C"]  # reported on the held-out source
    assert folds["A"].counts == table["tuned"]["A"]


def test_changing_the_held_out_numbers_never_changes_the_choice() -> None:
    rng = np.random.default_rng(0)
    sources = ["A", "B", "C", "D"]
    for _ in range(50):
        table = {
            name: {
                s: counts((int(rng.integers(0, 11)), 10), (int(rng.integers(0, 3)), 2))
                for s in sources
            }
            for name in ("v0", "v1", "v2")
        }
        for held_out in sources:
            chosen = choose_variant(table, held_out)
            for name in table:
                table[name][held_out] = counts((int(rng.integers(0, 11)), 10), (5, 1))
            assert choose_variant(table, held_out) == chosen


def test_loso_ties_go_to_the_first_variant_and_false_people_cost() -> None:
    same = {"A": counts((5, 10)), "B": counts((5, 10))}
    assert choose_variant({"defaults": same, "other": dict(same)}, "A")[0] == "defaults"
    noisy = {"A": counts((5, 10)), "B": counts((6, 10), false=(4, 2))}
    # +0.1 recall on B but 2 false people per negative image there: −0.2.
    assert choose_variant({"defaults": same, "noisy": noisy}, "A")[0] == "defaults"


def test_extra_sources_are_training_data_in_every_fold() -> None:
    table = {
        "defaults": {"A": counts((5, 10)), "B": counts((5, 10)), "extra:food": counts((0, 0))},
        "loose": {
            "A": counts((6, 10)),
            "B": counts((6, 10)),
            "extra:food": counts((0, 0), false=(30, 10)),
        },
    }
    folds = leave_one_source_out(table, ["A", "B"])
    assert [f.source for f in folds] == ["A", "B"]
    assert all(f.chosen == "defaults" for f in folds)


def test_grids_start_with_the_defaults_and_name_real_options() -> None:
    for grid in loso.GRIDS.values():
        assert grid[0] == Variant("defaults")
        assert len({v.name for v in grid}) == len(grid)
        loso.check_options(grid)  # every option is one the backend's constructor takes
    with pytest.raises(SystemExit, match="no option"):
        loso.check_options([Variant("bad", {"no_such_option": 1})])


def test_darkenings_by_name_and_a_wrong_one_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.dim_eval import darkening

    def darken(image: Image.Image, spec: str, seed: int) -> Image.Image:
        return darkening(spec)(image, seed)

    grey = Image.new("RGB", (40, 30), (150, 150, 150))
    for spec in ("gamma", "exposure:0.02", "exposure:0.005"):
        dark = darken(grey, spec, seed=1)
        assert dark.size == grey.size and np.asarray(dark).mean() < 60
        assert np.array_equal(np.asarray(dark), np.asarray(darken(grey, spec, seed=1)))
    assert loso.darkening is darkening  # loso darkens as dim_eval does
    # Less light, darker; a camera's frame is noisy.
    assert (
        np.asarray(darken(grey, "exposure:0.005", 1)).mean()
        < np.asarray(darken(grey, "exposure:0.02", 1)).mean()
    )
    assert np.asarray(darken(grey, "exposure:0.02", 1)).std() > 0
    for wrong in ("exposure", "exposure:0", "exposure:2", "exposure:x", "dusk"):
        with pytest.raises(ValueError, match="unknown darkening"):
            darken(grey, wrong, seed=1)
    assert loso.main(["--darken", "dusk"]) == 2
    assert "unknown darkening 'dusk'" in capsys.readouterr().err


def test_extra_folders_of_one_name_are_told_apart() -> None:
    folders = [Path("n/animals/dev"), Path("n/food/dev"), Path("n/stickmen")]
    labels = [extra_label(folder, folders) for folder in folders]
    assert labels == ["animals/dev", "food/dev", "stickmen"]


def test_extra_images_are_counted_as_prepared(tmp_path: Path) -> None:
    from benchmarks.pose_eval_extra import count_people

    for i in range(3):
        Image.new("RGB", (20, 20), (200, 200, 200)).save(tmp_path / f"{i}.png")
    paths = sorted(tmp_path.glob("*.png"))

    class DarkFinder:
        """One "person" in every image darker than mid-grey."""

        def detect(self, image: Image.Image) -> list[object]:
            return [object()] if np.asarray(image).mean() < 128 else []

    seeds: list[int] = []

    def dim(image: Image.Image, seed: int) -> Image.Image:
        seeds.append(seed)
        return image.point(lambda v: v // 4)

    assert count_people(DarkFinder(), tmp_path, paths).images_with_people == 0  # type: ignore[arg-type]
    found = count_people(DarkFinder(), tmp_path, paths, dim)  # type: ignore[arg-type]
    assert (found.images, found.images_with_people, found.people) == (3, 3, 3)
    assert seeds == [0, 1, 2]  # each image its own seed, by its place
