"""Rebuild `samples/corpus/`, the demo's embedded images, from Debian's `openclipart-png`.

    python samples/curate.py [--source /usr/share/openclipart/png] [--dest samples/corpus]

Every image is public domain (the Open Clip Art Library's dedication, see
/usr/share/doc/openclipart-png/copyright). Each chosen file is flattened onto white (the pose
model reads opaque images and the package's PNGs are transparent), scaled down to at most
`MAX_SIDE` pixels on its longer side (never up) and saved as a lossless PNG; `CREDITS.tsv`
is written beside them. Titles and artists come from the RDF metadata of the same drawings
in Debian's `openclipart-svg` package (the PNG package has none); they are written out below
so that a rebuild needs only `openclipart-png`.

Needs Pillow (`.venv/bin/python samples/curate.py` in the project). The output depends only
on the package's files and the Pillow version, so a rebuild reproduces the committed files.
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

DEFAULT_SOURCE = Path("/usr/share/openclipart/png")
DEFAULT_DEST = Path(__file__).resolve().parent / "corpus"
MAX_SIDE = 640
LICENCE = "CC0-1.0 (public domain, Open Clip Art Library)"
CREDITS_HEADER = ("file", "title", "licence", "attribution", "source_url")
IMAGE_SUFFIXES = (".png", ".jpg")


@dataclass(frozen=True)
class Choice:
    path: str  # relative to the package's png folder
    name: str  # the file name in the corpus, without its extension
    title: str
    artist: str


# Artists of many drawings, as the metadata spells them.
ROLLANDIN = "Architetto Francesco Rollandin"
GERALD_G = "Gerald G."
BUCULEI = "Nicu Buculei"
KACHI = "Yutaka Kachi"
ABICLIPART = "AbiClipart"

# People first (drawn, sports, stick men), then images with nobody in them. Most of the
# people are ones the project's MediaPipe detector finds a figure in, so the demo shows
# skeletons; a few it misses (outline figures, a sketch, a seated reader) are kept for variety.
CHOICES: tuple[Choice, ...] = tuple(
    Choice(*row)
    for row in (
        ("people/aerobics_architetto_fran_01.png", "aerobics-leap", "Aerobics", ROLLANDIN),
        ("people/ballerina_architetto_fra_01.png", "ballerina", "Ballerina", ROLLANDIN),
        ("people/breakdance_juliane_krug_01.png", "breakdancer", "Breakdance", "Juliane Krug"),
        ("people/bride1_jarno_vasamaa_01.png", "bride", "Bride", "Jarno Vasamaa"),
        (
            "people/bussiness_woman_donna_i_01.png",
            "businesswoman-walking",
            "Business woman walking",
            ROLLANDIN,
        ),
        ("people/enthusiast.png", "man-pointing", "Enthusiast", "ringe"),
        (
            "people/fitness_architetto_franc_01.png",
            "fitness-side-stretch",
            "Fitness: side stretch",
            ROLLANDIN,
        ),
        ("people/golf_drive_ganson.png", "golfer-drive", "Golf driver swing", GERALD_G),
        ("people/groom1_jarno_vasamaa_01.png", "groom", "Groom", "Jarno Vasamaa"),
        ("people/handstand_andrew_fitzsim_01.png", "handstand", "Handstand", "Andrew Fitzsimon"),
        (
            "people/io_bambina_architetto_fr_01.png",
            "girl-kicking-ball",
            "Girl kicking a ball",
            ROLLANDIN,
        ),
        ("people/io_donna_uomo_architetto_01.png", "couple-dancing", "Couple dancing", ROLLANDIN),
        ("people/kid_01.png", "kid-arms-out", "Kid with arms out", "Philippe Faes"),
        (
            "people/nonno_sport_architetto_f_01.png",
            "old-man-jogging",
            "Grandfather jogging",
            ROLLANDIN,
        ),
        ("people/pattinatrici_sul_ghiacc_01.png", "ice-skaters", "Ice skaters", ROLLANDIN),
        (
            "people/rich_young_man_going_aw_01.png",
            "young-man-walking-away",
            "Rich young man, going away sad",
            "Galion GBC",
        ),
        (
            "people/water_fight__ganson.png",
            "water-balloon-throw",
            "Water balloon throw",
            ABICLIPART,
        ),
        (
            "people/woman_fashion_01_gerald__01.png",
            "woman-hands-on-hips",
            "Woman, hands on hips",
            GERALD_G,
        ),
        (
            "people/woman_fashion_02_gerald__01.png",
            "woman-in-long-dress",
            "Woman in a long dress",
            GERALD_G,
        ),
        ("people/woman_police_01_gerald_g_01.png", "policewoman", "Police woman", GERALD_G),
        ("people/woman_police_02_gerald_g_01.png", "policewoman-2", "Police woman", GERALD_G),
        ("people/yoga_architetto_francesc_01.png", "yoga-lotus", "Yoga: lotus", ROLLANDIN),
        (
            "people/a_boy_plays_soccer_01.png",
            "boy-playing-soccer",
            "A boy plays soccer",
            "Tapio Kautto",
        ),
        (
            "people/police_man_ganson.png",
            "policeman-stop",
            "Police man signalling stop",
            ABICLIPART,
        ),
        (
            "people/sport_architetto_frances_01.png",
            "woman-arm-raised",
            "Sport: arm raised",
            ROLLANDIN,
        ),
        (
            "people/inservice_presentation_01.png",
            "woman-presenting",
            "Presentation",
            "Galion Public Library",
        ),
        ("people/blacksmiti_ganson.png", "blacksmith", "Blacksmith working", GERALD_G),
        (
            "people/architetto_francesco_ro_01.png",
            "architect-with-plans",
            "Architect with plans",
            ROLLANDIN,
        ),
        ("people/hikinh_ganson.png", "hiker", "Hiker hiking", ABICLIPART),
        ("people/man01.png", "man-pictogram", "Man pictogram", BUCULEI),
        ("people/woman02.png", "woman-stick-pictogram", "Woman stick pictogram", BUCULEI),
        ("recreation/sports/karate_kick_frouke_01.png", "karate-kick", "Karate kick", "Frouke"),
        (
            "recreation/sports/sport_stacco01.png",
            "weightlifter-deadlift",
            "Weightlifter: deadlift",
            ROLLANDIN,
        ),
        ("recreation/sports/water_skier_ganson.png", "water-skier", "Slalom water skier", GERALD_G),
        (
            "recreation/sports/sport_garudasana.png",
            "yoga-eagle-pose",
            "Yoga: eagle pose (garudasana)",
            ROLLANDIN,
        ),
        ("transportation/bicycle_philippe_colin_01.png", "cyclist", "Cyclist", "Philippe Colin"),
        ("people/stickmen/blueman_108_01.png", "stickman-blue-running", "Blue man running", KACHI),
        (
            "people/stickmen/blueman_202_01.png",
            "stickman-blue-saluting",
            "Blue man saluting",
            KACHI,
        ),
        (
            "people/stickmen/blueman_211_01.png",
            "stickman-blue-squatting",
            "Blue man squatting",
            KACHI,
        ),
        (
            "people/stickmen/blueman_302_01.png",
            "stickman-blue-crouching",
            "Blue man crouching",
            KACHI,
        ),
        ("people/stickmen/blueman_104_02.png", "stickman-blue-kick", "Blue man kicking", KACHI),
        ("people/stickmen/sm_002.png", "stickman-leaping", "Stick man leaping", BUCULEI),
        ("people/stickmen/sm_003.png", "stickman-arms-out", "Stick man, arms out", BUCULEI),
        ("people/stickmen/sm_006.png", "stickman-lying", "Stick man lying down", BUCULEI),
        ("people/stickmen/sm_008.png", "stickman-running", "Stick man running", BUCULEI),
        ("people/stickmen/sm_010.png", "stickman-waving", "Stick man waving", BUCULEI),
        ("people/stickmen/sm_011.png", "stickman-arms-up", "Stick man, arms up", BUCULEI),
        ("people/stickmen/sm_013.png", "stickman-hand-raised", "Stick man, hand raised", BUCULEI),
        ("people/stickmen/sm_015.png", "stickman-lunge", "Stick man lunging", BUCULEI),
        ("people/stickmen/sm_017.png", "stickman-pointing", "Stick man pointing", BUCULEI),
        ("people/stickmen/sm_020.png", "stickman-leaning", "Stick man leaning", BUCULEI),
        ("people/stickmen/sm_022.png", "stickman-squat", "Stick man squatting", BUCULEI),
        (
            "people/dancer_sketch_erich_schu_01.png",
            "dancer-sketch",
            "Dancer sketch",
            "Erich Schubert",
        ),
        (
            "people/silhouette_female_1.png",
            "figure-female-outline",
            "Female figure outline",
            BUCULEI,
        ),
        ("people/silhouette_male_2.png", "figure-male-outline", "Male figure outline", BUCULEI),
        (
            "people/woman_reading_gerald_g._01.png",
            "woman-reading-seated",
            "Woman reading, seated",
            GERALD_G,
        ),
        ("people/roller_blader_ganson.png", "roller-blader", "Rollerblading beginner", ABICLIPART),
        ("animals/mammals/cartoon_cat_gerald_g._01.png", "cat", "Cartoon cat", GERALD_G),
        ("animals/mammals/deer_matt_todd_01.png", "deer-leaping", "Deer", "Matt Todd"),
        ("animals/mammals/dog_01_drawn_with_strai_01.png", "dog-sitting", "Dog", GERALD_G),
        ("animals/mammals/contour_elephant.png", "elephant-silhouette", "Elephant", BUCULEI),
        ("recreation/music/cello_ganson.png", "cello", "Cello", GERALD_G),
        ("food/fruit/applf.png", "apple", "Apple", GERALD_G),
        ("food/fruit/banana.png", "banana", "Banana", BUCULEI),
        (
            "buildings/furniture/sedia_in_legno_architett_01.png",
            "wooden-chair",
            "Wooden chair",
            ROLLANDIN,
        ),
    )
)


def flatten(image: Image.Image) -> Image.Image:
    """`image` as opaque RGB on white, scaled down to fit `MAX_SIDE`."""
    rgba = image.convert("RGBA")
    opaque = Image.new("RGB", rgba.size, (255, 255, 255))
    opaque.paste(rgba, mask=rgba.getchannel("A"))
    opaque.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return opaque


def encode(image: Image.Image) -> bytes:
    """A lossless PNG. JPEG would be half the size, but at quality 90 (4:4:4) the pose model
    lost the figure in 7 drawings where it finds one in the PNG (ringing on thin lines)."""
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def credits_line(*cells: str) -> str:
    return "\t".join(cell.replace("\t", " ") for cell in cells) + "\n"


def build(source: Path, dest: Path) -> int:
    """Write every chosen image and CREDITS.tsv into `dest`; returns the bytes written."""
    dest.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()
    lines = [credits_line(*CREDITS_HEADER)]
    total = 0
    for choice in CHOICES:
        with Image.open(source / choice.path) as original:
            data = encode(flatten(original))
        name = choice.name + ".png"
        (dest / name).write_bytes(data)
        written.add(name)
        total += len(data)
        # openclipart.org's detail pages are numbered, not named after the file: the
        # package path is the stable way to find the original.
        source_url = f"debian:openclipart-png/{choice.path}"
        lines.append(credits_line(name, choice.title, LICENCE, choice.artist, source_url))
    credits = "".join(lines)
    (dest / "CREDITS.tsv").write_text(credits, encoding="utf-8")
    for stale in sorted(dest.iterdir()):
        if stale.suffix in IMAGE_SUFFIXES and stale.name not in written:
            stale.unlink()
            print(f"removed {stale.name} (no longer chosen)")
    return total + len(credits.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help=f"openclipart-png's png folder (default: {DEFAULT_SOURCE})",
    )
    parser.add_argument(
        "--dest", type=Path, default=DEFAULT_DEST, help=f"output folder (default: {DEFAULT_DEST})"
    )
    args = parser.parse_args(argv)
    missing = [c.path for c in CHOICES if not (args.source / c.path).is_file()]
    if missing:
        print(
            f"error: {len(missing)} chosen file(s) are not in {args.source} (install Debian's "
            f"openclipart-png: `make clipart`): {', '.join(missing[:5])}",
            file=sys.stderr,
        )
        return 1
    size = build(args.source, args.dest)
    print(f"{len(CHOICES)} images and CREDITS.tsv in {args.dest}: {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
