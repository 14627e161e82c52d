"""Figures to draw: poses sampled within human joint ranges under a random view, or taken
from a labelled COCO-17 pose.

A `Figure` is what the drawing styles of `pipelines.pose.drawn.render` need: the 2D position of
each body point (image pixels, y down), its depth (towards the viewer is larger: parts are
drawn back to front), the head's radius and the figure's trunk length (neck to pelvis), the
unit of PCK. The points are the 13 joints the drawn-figure model reads (head centre,
shoulders, elbows, wrists, hips, knees, ankles) and the neck and pelvis between them.

Sampled poses come from a small 3D skeleton (proportions of an adult, height 1): the trunk
leans, bends and twists, arms swing in any direction a shoulder allows, elbows and knees
bend one way, and the whole figure is seen from any side (mostly from the front), sometimes
lying or upside down. A mixture of pose families (standing, walking and running, sitting,
kneeling, reaching, anything within the ranges) keeps both common and unusual poses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipelines.records import COCO17_INDEX, COCO17_NAMES, swap_sides

# The joints the drawn-figure model reads, in its output order (COCO-17's without the eyes
# and ears: a drawn head shows no face; "nose" is the head's centre), their COCO-17 index,
# and the output index of each joint's mirror image (left ↔ right).
JOINTS: tuple[str, ...] = tuple(n for n in COCO17_NAMES if not n.endswith(("_eye", "_ear")))
COCO_OF_JOINT: tuple[int, ...] = tuple(COCO17_INDEX[name] for name in JOINTS)
FLIP: tuple[int, ...] = tuple(JOINTS.index(swap_sides(name)) for name in JOINTS)


@dataclass
class Figure:
    xy: dict[str, np.ndarray]  # point name -> (x, y) pixels
    depth: dict[str, float]  # point name -> towards the viewer
    head_radius: float
    trunk: float

    def truth(self) -> np.ndarray:
        """(13, 3): x, y, labelled, in `JOINTS` order."""
        out = np.zeros((len(JOINTS), 3))
        for i, name in enumerate(JOINTS):
            if name in self.xy:
                out[i] = (*self.xy[name], 1.0)
        return out

    def transformed(self, scale: float, offset: np.ndarray) -> Figure:
        return Figure(
            {k: v * scale + offset for k, v in self.xy.items()},
            dict(self.depth),
            self.head_radius * scale,
            self.trunk * scale,
        )

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        points = np.array(list(self.xy.values()))
        pad = self.head_radius
        return points.min(axis=0) - pad, points.max(axis=0) + pad


def _rot(axis: str, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _bent(direction: np.ndarray, towards: np.ndarray, degrees: float) -> np.ndarray:
    """`direction` turned by `degrees` towards `towards` (made perpendicular to it)."""
    perpendicular = towards - direction * float(direction @ towards)
    if np.linalg.norm(perpendicular) < 1e-6:
        perpendicular = np.array([0.0, 0.0, 1.0]) - direction * direction[2]
    perpendicular = _unit(perpendicular)
    a = math.radians(degrees)
    return _unit(math.cos(a) * direction + math.sin(a) * perpendicular)


# Pose families: (weight, ranges). Angles in degrees; a range is (low, high).
FAMILIES: dict[str, tuple[float, dict[str, tuple[float, float]]]] = {
    "stand": (
        0.2,
        {
            "bend": (-10, 20),
            "twist": (-20, 20),
            "side": (-10, 10),
            "arm": (0, 70),
            "elbow": (0, 70),
            "flex": (-10, 25),
            "abduct": (0, 18),
            "knee": (0, 25),
        },
    ),
    "any": (
        0.35,
        {
            "bend": (-30, 75),
            "twist": (-45, 45),
            "side": (-25, 25),
            "arm": (0, 180),
            "elbow": (0, 150),
            "flex": (-30, 115),
            "abduct": (-10, 60),
            "knee": (0, 145),
        },
    ),
    "stride": (
        0.17,
        {
            "bend": (-5, 35),
            "twist": (-30, 30),
            "side": (-10, 10),
            "arm": (5, 80),
            "elbow": (10, 110),
            "flex": (-35, 75),
            "abduct": (0, 20),
            "knee": (0, 110),
        },
    ),
    "sit": (
        0.1,
        {
            "bend": (-15, 40),
            "twist": (-25, 25),
            "side": (-15, 15),
            "arm": (0, 100),
            "elbow": (0, 130),
            "flex": (60, 110),
            "abduct": (0, 35),
            "knee": (60, 120),
        },
    ),
    "kneel": (
        0.06,
        {
            "bend": (-10, 40),
            "twist": (-20, 20),
            "side": (-10, 10),
            "arm": (0, 120),
            "elbow": (0, 120),
            "flex": (-15, 90),
            "abduct": (0, 25),
            "knee": (80, 150),
        },
    ),
    "reach": (
        0.12,
        {
            "bend": (-25, 25),
            "twist": (-30, 30),
            "side": (-25, 25),
            "arm": (90, 180),
            "elbow": (0, 90),
            "flex": (-20, 60),
            "abduct": (0, 50),
            "knee": (0, 90),
        },
    ),
}


def sample_figure(rng: np.random.Generator) -> Figure:
    """A random pose under a random view, in units of the figure's height (y down)."""
    names = list(FAMILIES)
    weights = np.array([FAMILIES[n][0] for n in names])
    family = FAMILIES[names[int(rng.choice(len(names), p=weights / weights.sum()))]][1]

    def draw(key: str) -> float:
        low, high = family[key]
        return float(rng.uniform(low, high))

    trunk = float(rng.uniform(0.27, 0.33))
    torso = _rot("y", draw("twist")) @ _rot("x", draw("bend")) @ _rot("z", draw("side"))
    hip_half, shoulder_half = float(rng.uniform(0.07, 0.11)), float(rng.uniform(0.09, 0.13))
    p: dict[str, np.ndarray] = {"pelvis": np.zeros(3)}
    p["neck"] = torso @ np.array([0.0, trunk, 0.0])
    head_radius = float(rng.uniform(0.055, 0.075))
    nod = _rot("x", float(rng.uniform(-25, 35)))
    p["nose"] = p["neck"] + torso @ nod @ np.array([0.0, head_radius * 1.6, 0.01])
    forward_torso = torso @ np.array([0.0, 0.0, 1.0])
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder = p["neck"] + torso @ np.array([sign * shoulder_half, -0.025, 0.0])
        a, plane = math.radians(draw("arm")), math.radians(float(rng.uniform(-80, 130)))
        upper = torso @ np.array(
            [sign * math.sin(a) * math.cos(plane), -math.cos(a), math.sin(a) * math.sin(plane)]
        )
        towards = _rot("y", float(rng.uniform(-60, 60))) @ forward_torso
        fore = _bent(upper, towards + 0.3 * torso @ np.array([0, 1.0, 0]), draw("elbow"))
        p[f"{side}_shoulder"] = shoulder
        p[f"{side}_elbow"] = shoulder + upper * rng.uniform(0.16, 0.19)
        p[f"{side}_wrist"] = p[f"{side}_elbow"] + fore * rng.uniform(0.14, 0.17)
        flex, abduct = math.radians(draw("flex")), math.radians(draw("abduct"))
        thigh = _unit(
            np.array(
                [
                    sign * math.sin(abduct),
                    -math.cos(abduct) * math.cos(flex),
                    math.cos(abduct) * math.sin(flex),
                ]
            )
        )
        back = _rot("y", float(rng.uniform(-25, 25))) @ np.array([0.0, 0.0, -1.0])
        shin = _bent(thigh, back, draw("knee"))
        hip = np.array([sign * hip_half, 0.0, 0.0])
        p[f"{side}_hip"] = hip
        p[f"{side}_knee"] = hip + thigh * rng.uniform(0.23, 0.26)
        p[f"{side}_ankle"] = p[f"{side}_knee"] + shin * rng.uniform(0.22, 0.25)
    # The view: mostly from the front, any side sometimes; now and then lying or upside down.
    r = rng.random()
    yaw = (
        rng.uniform(-45, 45)
        if r < 0.5
        else rng.uniform(60, 120) * rng.choice([-1, 1])
        if (r < 0.7)
        else rng.uniform(0, 360)
    )
    roll = rng.normal(0, 8) if rng.random() < 0.9 else rng.uniform(0, 360)
    view = _rot("z", float(roll)) @ _rot("x", float(rng.uniform(-20, 20))) @ _rot("y", float(yaw))
    xy, depth = {}, {}
    for name, point in p.items():
        seen = view @ point
        xy[name] = np.array([seen[0], -seen[1]])
        depth[name] = float(seen[2])
    return Figure(xy, depth, head_radius, trunk)


def figure_from_keypoints(keypoints: np.ndarray, min_score: float = 0.3) -> Figure | None:
    """A figure from a COCO-17 pose (x, y, score or labelled): joints below `min_score` are
    left out (their limbs are not drawn). None without both shoulders or both hips."""
    kp = np.asarray(keypoints, dtype=np.float64)
    seen = kp[:, 2] >= min_score

    def at(name: str) -> np.ndarray | None:
        i = COCO17_INDEX[name]
        return kp[i, :2].copy() if seen[i] else None

    xy: dict[str, np.ndarray] = {}
    for name in JOINTS[1:]:
        point = at(name)
        if point is not None:
            xy[name] = point
    needed = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
    if any(n not in xy for n in needed):
        return None
    xy["neck"] = (xy["left_shoulder"] + xy["right_shoulder"]) / 2
    xy["pelvis"] = (xy["left_hip"] + xy["right_hip"]) / 2
    trunk = float(np.linalg.norm(xy["neck"] - xy["pelvis"]))
    if trunk < 1.0:
        return None
    face = [
        kp[COCO17_INDEX[n], :2]
        for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
        if seen[COCO17_INDEX[n]]
    ]
    head_radius = 0.22 * trunk
    if face:
        centre = np.mean(face, axis=0)
        # The head's centre sits a little above the face points, towards the crown.
        xy["nose"] = centre + _unit(centre - xy["neck"]) * 0.05 * trunk
    else:
        xy["nose"] = xy["neck"] + _unit(xy["neck"] - xy["pelvis"]) * 0.35 * trunk
    return Figure(xy, {name: 0.0 for name in xy}, head_radius, trunk)
