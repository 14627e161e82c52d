"""How each style draws a figure (`pipelines.pose.drawn.render` picks the style, the paper and
the clutter): stick figures, bean figures, children's drawings, mannequins, body contours."""

from __future__ import annotations

import itertools
import math

import numpy as np
from PIL import Image, ImageDraw

from pipelines.pose.drawn.figures import Figure
from pipelines.pose.drawn.strokes import capsule, face, outline_of, polygon_ellipse, stroke

LIMBS = (
    ("left_shoulder", "left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow", "right_wrist"),
    ("left_hip", "left_knee", "left_ankle"),
    ("right_hip", "right_knee", "right_ankle"),
)


def stick(draw: ImageDraw.ImageDraw, f: Figure, rng: np.random.Generator, width: int) -> None:
    p, s = f.xy, f.trunk
    one_point = rng.random() < 0.5  # arms from one point below the neck, legs from the pelvis
    if one_point:
        top = p["neck"] + (p["pelvis"] - p["neck"]) * rng.uniform(0.0, 0.2)
        for side in ("left", "right"):
            p[f"{side}_shoulder"], p[f"{side}_hip"] = top.copy(), p["pelvis"].copy()
    head_r = f.head_radius * rng.uniform(0.8, 1.3)
    neck_top = (
        p["nose"]
        + (p["neck"] - p["nose"]) / max(float(np.linalg.norm(p["neck"] - p["nose"])), 1e-6) * head_r
    )
    kind = rng.random()
    box = [
        p["nose"][0] - head_r,
        p["nose"][1] - head_r,
        p["nose"][0] + head_r,
        p["nose"][1] + head_r,
    ]
    if kind < 0.65:
        draw.ellipse(box, outline=255, width=width)
    elif kind < 0.9:
        draw.ellipse(box, fill=255)
    else:
        neck_top = p["nose"]
        small = max(width * 1.5, head_r * 0.4)
        draw.ellipse(
            [
                p["nose"][0] - small,
                p["nose"][1] - small,
                p["nose"][0] + small,
                p["nose"][1] + small,
            ],
            fill=255,
        )
    stroke(draw, rng, [neck_top, p["pelvis"]], width, s)
    if not one_point:
        stroke(draw, rng, [p["left_shoulder"], p["right_shoulder"]], width, s)
        if rng.random() < 0.5:
            stroke(draw, rng, [p["left_hip"], p["right_hip"]], width, s)
    for limb in LIMBS:
        points = [p[name] for name in limb if name in p]
        if len(points) >= 2:
            stroke(draw, rng, points, width, s)
    if rng.random() < 0.3:
        for end in ("left_wrist", "right_wrist"):
            if end in p:
                r = max(width, 0.06 * s)
                draw.ellipse(
                    [p[end][0] - r, p[end][1] - r, p[end][0] + r, p[end][1] + r],
                    outline=255,
                    width=width,
                )
    if rng.random() < 0.3:
        for knee, ankle in (("left_knee", "left_ankle"), ("right_knee", "right_ankle")):
            if knee in p and ankle in p:
                sideways = np.array([rng.choice([-1, 1]) * 0.18 * s, 0.0])
                stroke(draw, rng, [p[ankle], p[ankle] + sideways], width, s)


def bean(draw: ImageDraw.ImageDraw, f: Figure, rng: np.random.Generator, width: int) -> None:
    p, s = f.xy, f.trunk
    filled = rng.random() < 0.75
    shade = int(rng.uniform(110, 255)) if filled else 0  # a coloured fill, seen as a grey
    axis = p["neck"] - p["pelvis"]
    angle = math.atan2(axis[1], axis[0])
    top = p["neck"] - axis * rng.uniform(0.0, 0.12)
    bottom = p["pelvis"] + axis * rng.uniform(-0.05, 0.12)
    torso = polygon_ellipse(
        (top + bottom) / 2,
        float(np.linalg.norm(top - bottom)) / 2,
        s * rng.uniform(0.16, 0.34),
        angle,
    )
    draw.polygon(torso, fill=shade if filled else None, outline=255, width=width)
    head_r = f.head_radius * rng.uniform(1.0, 1.7)
    gap = head_r * rng.uniform(0.0, 0.4)  # the head floats off the trunk, or sits on it
    head = p["nose"] + (p["nose"] - p["neck"]) / max(float(np.linalg.norm(axis)), 1e-6) * gap
    draw.ellipse(
        [head[0] - head_r, head[1] - head_r, head[0] + head_r, head[1] + head_r],
        fill=shade if rng.random() < 0.8 else None,
        outline=255,
        width=width,
    )
    ends = rng.random() < 0.75
    r_end = s * rng.uniform(0.05, 0.1)
    for limb in LIMBS:
        points = [p[name] for name in limb if name in p]
        if len(points) < 2:
            continue
        stroke(draw, rng, points, width, s)
        if ends and limb[-1] in p:
            d = p[limb[-1]] - points[-2]
            end = p[limb[-1]] + d / max(float(np.linalg.norm(d)), 1e-6) * r_end * 0.6
            draw.polygon(
                polygon_ellipse(end, r_end * 1.3, r_end * 0.8, math.atan2(d[1], d[0])),
                fill=shade if filled else 255,
            )


def child(ink: Image.Image, f: Figure, rng: np.random.Generator, width: int) -> Image.Image:
    p, s = f.xy, f.trunk
    width = max(width, round(0.025 * s * rng.uniform(0.6, 1.6)))
    head_r = f.head_radius * rng.uniform(1.3, 2.0)
    axis = p["neck"] - p["pelvis"]
    up = axis / max(float(np.linalg.norm(axis)), 1e-6)
    head = p["neck"] + up * head_r * rng.uniform(0.7, 1.0)
    if rng.random() < 0.35:  # the whole body one chubby outline
        mask = Image.new("L", ink.size, 0)
        shape = ImageDraw.Draw(mask)
        for _, polygon, _ in body_parts(f, rng, rng.uniform(1.5, 2.2))[3:]:
            shape.polygon(polygon, fill=255)
        trunk = polygon_ellipse(
            (p["neck"] + p["pelvis"]) / 2,
            float(np.linalg.norm(axis)) * 0.6,
            s * rng.uniform(0.3, 0.45),
            math.atan2(axis[1], axis[0]),
        )
        shape.polygon(trunk, fill=255)
        ink = outline_of(mask, width)
        draw = ImageDraw.Draw(ink)
    else:
        draw = ImageDraw.Draw(ink)
        half = max(float(np.linalg.norm(p["left_shoulder"] - p["right_shoulder"])) / 2, 0.2 * s)
        side = np.array([up[1], -up[0]])
        top, bottom = p["neck"] - up * 0.05 * s, p["pelvis"] - up * rng.uniform(-0.25, 0.05) * s
        # a box, or a dress wider at the hem
        hem = half * (rng.uniform(0.8, 1.2) if rng.random() < 0.5 else rng.uniform(1.4, 2.2))
        body = [top - side * half, top + side * half, bottom + side * hem, bottom - side * hem]
        draw.polygon([tuple(q) for q in body], outline=255, width=width)
        tubes = rng.random() < 0.4
        for limb in LIMBS:
            points = [p[name] for name in limb if name in p]
            if len(points) < 2:
                continue
            if tubes:
                r = 0.07 * s
                for a, b in itertools.pairwise(points):
                    draw.polygon(capsule(a, b, r, r), outline=255, width=width)
            else:
                stroke(draw, rng, points, width, s)
    ends = rng.random()
    for end in ("left_wrist", "right_wrist", "left_ankle", "right_ankle"):
        if end in p and ends < 0.7:
            r = s * rng.uniform(0.05, 0.09)
            x, y = p[end]
            draw.ellipse([x - r, y - r, x + r, y + r], outline=255, width=width)
    draw.ellipse(
        [head[0] - head_r, head[1] - head_r, head[0] + head_r, head[1] + head_r],
        fill=0,
        outline=255,
        width=width,
    )
    if rng.random() < 0.85:
        face(draw, head, head_r, rng, width, 255)
    if rng.random() < 0.5:  # hair
        for _ in range(int(rng.integers(3, 9))):
            angle = rng.uniform(-math.pi * 0.9, -math.pi * 0.1)
            root = head + np.array([math.cos(angle), math.sin(angle)]) * head_r
            tip = root + np.array([math.cos(angle), math.sin(angle)]) * head_r * rng.uniform(
                0.2, 0.7
            )
            stroke(draw, rng, [root, tip], width, s)
    return ink


def body_parts(
    f: Figure, rng: np.random.Generator, bulk: float
) -> list[tuple[float, list[tuple], str]]:
    """(depth, polygon, name) of each body part, with widths in units of the trunk × `bulk`:
    "trunk", "pelvis", "head", then each limb segment by the joint it starts at (a
    shoulder's upper arm, an elbow's forearm, a hip's thigh, a knee's shin)."""
    p, s, z = f.xy, f.trunk * bulk, f.depth
    axis = p["neck"] - p["pelvis"]
    angle = math.atan2(axis[1], axis[0]) + math.pi / 2
    shoulder_w = float(np.linalg.norm(p["left_shoulder"] - p["right_shoulder"]))
    hip_w = float(np.linalg.norm(p["left_hip"] - p["right_hip"]))
    parts = [
        (
            z["neck"] - 0.01,
            polygon_ellipse(
                p["neck"] * 0.62 + p["pelvis"] * 0.38,
                max(shoulder_w * 0.6, 0.2 * s),
                0.36 * f.trunk,
                angle,
            ),
            "trunk",
        ),
        (
            z["pelvis"],
            polygon_ellipse(p["pelvis"], max(hip_w * 0.8, 0.2 * s), 0.2 * f.trunk, angle),
            "pelvis",
        ),
        (
            z["nose"],
            polygon_ellipse(
                p["nose"], f.head_radius * 0.85, f.head_radius * rng.uniform(1.0, 1.25), angle
            ),
            "head",
        ),
    ]
    radii = {
        "shoulder": 0.11,
        "elbow": 0.085,
        "wrist": 0.06,
        "hip": 0.16,
        "knee": 0.11,
        "ankle": 0.07,
    }
    for limb in LIMBS:
        for a, b in itertools.pairwise(limb):
            if a in p and b in p:
                ra, rb = (radii[n.split("_")[1]] * s for n in (a, b))
                depth = (z.get(a, 0) + z.get(b, 0)) / 2
                parts.append((depth, capsule(p[a], p[b], ra, rb), a))
    return parts


def mannequin(draw: ImageDraw.ImageDraw, f: Figure, rng: np.random.Generator, width: int) -> None:
    opaque, shaded = rng.random() < 0.65, rng.random() < 0.3
    for _, polygon, _ in sorted(body_parts(f, rng, rng.uniform(0.8, 1.3)), key=lambda d: d[0]):
        fill = int(rng.uniform(40, 160)) if shaded else 0
        draw.polygon(polygon, fill=fill if (opaque or shaded) else None, outline=255, width=width)
    if rng.random() < 0.5:
        r = 0.06 * f.trunk
        for name in (
            "left_elbow",
            "right_elbow",
            "left_knee",
            "right_knee",
            "left_shoulder",
            "right_shoulder",
        ):
            if name in f.xy:
                x, y = f.xy[name]
                draw.ellipse(
                    [x - r, y - r, x + r, y + r],
                    fill=0 if opaque else None,
                    outline=255,
                    width=width,
                )


def contour(ink: Image.Image, f: Figure, rng: np.random.Generator, width: int) -> Image.Image:
    mask = Image.new("L", ink.size, 0)
    draw = ImageDraw.Draw(mask)
    parts = body_parts(f, rng, rng.uniform(0.9, 1.4))
    for _, polygon, _ in parts:
        draw.polygon(polygon, fill=255)
    kind = rng.random()
    if kind < 0.3:
        return mask.point(lambda v: int(v * rng.uniform(0.5, 1.0)) if v else 0)
    outline = outline_of(mask, width)
    if kind > 0.7:  # the limbs in front of the trunk drawn over it
        front = ImageDraw.Draw(outline)
        trunk_depth = parts[0][0]
        for depth, polygon, _ in parts[3:]:
            if depth > trunk_depth:
                front.polygon(polygon, fill=0, outline=255, width=width)
    return outline
