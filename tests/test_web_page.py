"""Browser tier: the web page at `/`, in headless Chromium against the real uvicorn server.

The browser is Debian's `chromium` package (/usr/bin/chromium) driven by Playwright; nothing
is downloaded (`playwright install` is never needed). Without either, the browser tests skip
and say why; `.ci/run` installs both. Screenshots (desktop 1280 × 900 and phone 390 × 844,
with and without text search, and of a drawing) land in test-artifacts/ (gitignored).

The pictures searched are the evalset's when it is there, else the embedded public-domain
corpus in samples/corpus/; the query image is one whose figure the indexer found.

The fast tests at the top check how the page is served, with FastAPI's TestClient.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from serving.app import create_app
from storage.store import Store
from tests.conftest import EVALSET, make_settings
from tests.test_server import live_server

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
STATIC = REPO / "serving" / "static"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CORPUS = REPO / "samples" / "corpus"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}
EVALSET_QUERY = "coco__000000000785.jpg"  # one skier, whole body in view
EVALSET_NOBODY = "neg_locust__630.jpg"
PAGE_SIZE = 8  # the page's `?k=`: small, so "load more" has more to load
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Weights that are not there: the service then has no text search (pose search works).
MISSING_CLIP_WEIGHTS = "/nonexistent/poseframer-clip-weights.pt"
SERVER_PATHS = ("/work/", "/tmp/", "/home/", "/srv/", "/root/", str(REPO))


# ---------------------------------------------------------------------- serving the page


class _AssetLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in ("src", "href") and tag in ("script", "link", "img"):
                self.links.append(value)


@pytest.fixture(scope="module")
def page_client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    # No lifespan (no `with`): serving the page needs neither an index nor CLIP.
    home = tmp_path_factory.mktemp("page-home")
    return TestClient(create_app(make_settings(home)))


def test_root_serves_the_page_and_its_assets(page_client: TestClient) -> None:
    page = page_client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy

    parser = _AssetLinks()
    parser.feed(page.text)
    assert {"static/app.js", "static/style.css"} <= set(parser.links)
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for link in parser.links:
        asset = page_client.get(f"/{link}")
        assert asset.status_code == 200, link
        assert asset.headers["content-type"].startswith(types[Path(link).suffix]), link

    script = page_client.get("/static/app.js")
    cached = page_client.get("/static/app.js", headers={"If-None-Match": script.headers["etag"]})
    assert cached.status_code == 304


@pytest.mark.parametrize(
    "path", ["/static/missing.js", "/static/..%2Fapp.py", "/static/app.py", "/static/.hidden"]
)
def test_only_shipped_static_files_are_served(page_client: TestClient, path: str) -> None:
    response = page_client.get(path)
    assert response.status_code == 404
    assert "detail" in response.json()


def test_page_fetches_nothing_from_elsewhere() -> None:
    # The only absolute URL allowed is the SVG namespace, an identifier nothing fetches.
    allowed = {"http://www.w3.org/2000/svg"}
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        urls = set(re.findall(r"https?://[^\s\"'`)<>]+", text)) - allowed
        assert not urls, f"{path.name} refers to outside URLs: {sorted(urls)}"
        assert not re.search(r"""(src|href)\s*=\s*["']//""", text), path.name
        assert "@import" not in text, path.name


def test_static_files_ship_with_the_package() -> None:
    # pyproject's package data (`static/*`) puts them in the wheel; an editable install reads
    # them from the source tree. Either way the app finds them through importlib.resources.
    shipped = resources.files("serving").joinpath("static")
    for name in ("index.html", "app.js", "style.css", "favicon.svg"):
        assert shipped.joinpath(name).is_file(), name


# ---------------------------------------------------------------------- what the browser searches


@dataclass(frozen=True)
class Pictures:
    """The indexed pictures the browser tests search, and the files they upload."""

    name: str  # "evalset" or "corpus"
    home: Path  # an indexed POSEFRAMER_HOME (servers run on copies of it)
    query: Path  # a picture whose figure the detector finds: one person, limbs apart
    nobody: Path  # a picture in which it finds nobody


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def corpus_file(source_uri: str) -> Path:
    """The corpus file behind a folder source's `source_uri` (absolute, or relative to it)."""
    path = Path(source_uri)
    return path if path.is_absolute() else CORPUS / path


def clearly_posed(row: dict[str, Any]) -> bool:
    """Most joints seen, and the right wrist (the one the flow test drags) well inside the
    picture and apart from every other joint, so a pointer lands on it and nowhere else."""
    flat = row["keypoints"]
    points = [flat[i : i + 3] for i in range(0, len(flat), 3)][:17]
    if sum(c >= 0.3 for _, _, c in points) < 13:
        return False
    width, height = row["width"], row["height"]
    wx, wy, wc = points[10]
    if wc < 0.3 or wy < 0.15 * height or not (0 < wx < width):
        return False
    apart = 0.06 * max(width, height)
    return all(
        ((wx - x) ** 2 + (wy - y) ** 2) ** 0.5 > apart
        for i, (x, y, _) in enumerate(points)
        if i != 10
    )


def corpus_queries(home: Path) -> tuple[Path, Path | None]:
    """From the corpus index: a picture with one clearly posed figure (the detector found it
    when indexing, and the service runs the same detector on the same bytes), and one with
    nobody in it, if any."""
    store = Store.at_home(home)
    table = store.search_table_at(store.resolve_publication().version)
    columns = ["image_id", "person_index", "source_uri", "keypoints", "width", "height"]
    rows = table.select(columns).to_pylist()
    people: dict[str, int] = {}
    for row in rows:
        if row["person_index"] >= 0:
            people[row["image_id"]] = people.get(row["image_id"], 0) + 1
    posed = sorted(
        (
            -sum(c >= 0.3 for c in row["keypoints"][2::3]),
            row["source_uri"],
        )
        for row in rows
        if row["person_index"] == 0
        and people[row["image_id"]] == 1
        and corpus_file(row["source_uri"]).is_file()
        and clearly_posed(row)
    )
    assert posed, f"no picture in {CORPUS} has one clearly posed figure for the browser flow"
    nobody = sorted(
        row["source_uri"]
        for row in rows
        if row["person_index"] < 0
        and row["image_id"] not in people
        and corpus_file(row["source_uri"]).is_file()
    )
    return corpus_file(posed[0][1]), corpus_file(nobody[0]) if nobody else None


@pytest.fixture(scope="module")
def pictures(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    index_settings_for: Any,
) -> Pictures:
    """The evalset when it is there (indexed once per session), else the embedded corpus."""
    if (EVALSET / "annotations.json").is_file():
        folder = EVALSET / "images"
        home: Path = request.getfixturevalue("indexed_home")
        return Pictures("evalset", home, folder / EVALSET_QUERY, folder / EVALSET_NOBODY)
    if not image_files(CORPUS):
        pytest.skip(
            f"nothing to search: neither the evalset ({EVALSET}; set POSEFRAMER_EVALSET) nor "
            f"the embedded corpus ({CORPUS}) is present"
        )
    from assets.indexing import index_folder

    home = tmp_path_factory.mktemp("corpus-home")
    report = index_folder(CORPUS, index_settings_for(home), batch_id="corpus")
    assert report.success, "indexing samples/corpus failed"
    query, nobody = corpus_queries(home)
    if nobody is None:
        nobody = tmp_path_factory.mktemp("nobody") / "blank.png"
        Image.new("RGB", (640, 480), (236, 236, 232)).save(nobody)
    return Pictures("corpus", home, query, nobody)


# ---------------------------------------------------------------------- the servers


@dataclass(frozen=True)
class Served:
    base: str
    health: dict[str, Any]  # its first /health answer


def serve(
    pictures: Pictures, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[Served]:
    """The real `poseframer serve` process over a copy of the indexed pictures."""
    workdir = tmp_path_factory.mktemp(name)
    home = workdir / "home"
    shutil.copytree(pictures.home, home)
    with live_server(home, env, workdir) as server:
        yield Served(server.base, server.health)


@pytest.fixture(scope="module")
def server(
    pictures: Pictures, tiny_clip_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """With the tiny random-weight CLIP: text search is available (plumbing only)."""
    yield from serve(pictures, tiny_clip_env, tmp_path_factory, "web-page")


@pytest.fixture(scope="module")
def server_without_text(
    pictures: Pictures, tiny_clip_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """With CLIP weights that are not there: no text search, pose search as usual."""
    env = {**tiny_clip_env, "POSEFRAMER_CLIP_PRETRAINED": MISSING_CLIP_WEIGHTS}
    yield from serve(pictures, env, tmp_path_factory, "web-page-no-text")


def health_of(served: Served) -> dict[str, Any]:
    """The service's `/health` now."""
    answer: dict[str, Any] = httpx.get(f"{served.base}/health", timeout=10).json()
    return answer


def speaks_issue_10(health: dict[str, Any]) -> bool:
    """The service sends `status`, the text search `summary`, search `warnings` and
    attributions; an older one does not, and the page copes without them."""
    return "summary" in (health.get("text_search") or {})


# ---------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(
            f"{CHROMIUM} not found: install Debian's chromium package "
            "(apt-get install chromium; .ci/run does it)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


class PageWatch:
    """What a page did that it should not: script errors, and requests to other origins."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.expected: list[str] = []  # console errors a test provokes on purpose

    def expect_console_error(self, text: str) -> None:
        self.expected.append(text)

    def attach(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: self._console(msg.type, msg.text),
        )
        page.on("request", self._request)

    def _console(self, kind: str, text: str) -> None:
        if kind == "error" and not any(e in text for e in self.expected):
            self.errors.append(f"console: {text}")

    def _request(self, request: Any) -> None:
        url: str = request.url
        if not url.startswith((self.base + "/", "blob:", "data:")):
            self.outside.append(url)


@contextmanager
def browser_page(
    chromium: Any, base: str, viewport: dict[str, int] = DESKTOP, ready: bool = True
) -> Iterator[tuple[Any, PageWatch]]:
    """A fresh page on the search page at `viewport` (a phone's is a touch screen), once the
    service's status is shown unless `ready` is False; checked for errors when done."""
    phone = viewport["width"] < 600
    context = chromium.new_context(
        viewport=viewport, accept_downloads=True, is_mobile=phone, has_touch=phone
    )
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        watch = PageWatch(base)
        watch.attach(page)
        if ready:
            open_search_page(page, base)
        yield page, watch
    finally:
        context.close()
    assert not watch.outside, f"the page fetched from elsewhere: {watch.outside}"
    assert not watch.errors, "\n".join(watch.errors)


def open_search_page(page: Any, base: str) -> None:
    page.goto(f"{base}/?k={PAGE_SIZE}")
    page.get_by_test_id("service-status").filter(has_text="index version").wait_for()


@pytest.fixture
def browser(server: Served, chromium: Any) -> Iterator[tuple[Any, PageWatch]]:
    with browser_page(chromium, server.base) as opened:
        yield opened


@pytest.fixture
def page(browser: tuple[Any, PageWatch]) -> Any:
    return browser[0]


@pytest.fixture
def watch(browser: tuple[Any, PageWatch]) -> PageWatch:
    return browser[1]


def search_seq(page: Any) -> int:
    return int(page.get_by_test_id("results").get_attribute("data-seq"))


def wait_for_search(page: Any, before: int) -> None:
    page.wait_for_function(
        "s => Number(document.querySelector('[data-testid=results]').dataset.seq) > s",
        arg=before,
    )


@contextmanager
def searching(page: Any) -> Iterator[Any]:
    """Around an action that searches: the `/search` response (`.value`), once the page has
    shown it."""
    before = search_seq(page)
    with page.expect_response(
        lambda r: r.url.endswith("/search") and r.request.method == "POST"
    ) as response:
        yield response
    wait_for_search(page, before)
    assert response.value.ok, response.value.text()


def wait_for_text_search(page: Any, state: str, timeout: float = 90_000) -> None:
    """Until the page shows text search as `state` (available, unavailable, loading)."""
    page.wait_for_function(
        "s => document.querySelector('[data-testid=text-field]').dataset.textSearch === s",
        arg=state,
        timeout=timeout,
    )


def shown_results(page: Any) -> list[tuple[str, float]]:
    """The result cards on the page: (id, score), in order."""
    rows = page.eval_on_selector_all(
        "[data-testid=result]", "cards => cards.map(c => [c.dataset.id, c.dataset.score])"
    )
    return [(row[0], float(row[1])) for row in rows]


def body_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.request.post_data_json
    return body


def drag(page: Any, joint: str, dx: float, dy: float) -> None:
    box = page.locator(f"[data-testid=joint][data-joint={joint}]").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=8)
    page.mouse.up()


def download_of(page: Any, test_id: str, within: Any = None) -> Path:
    with page.expect_download() as info:
        (within or page).get_by_test_id(test_id).click()
    path = info.value.path()
    assert path is not None
    return Path(path)


def screenshot(page: Any, name: str) -> None:
    """The whole page as test-artifacts/`name`, every picture in it loaded (the thumbnails
    load lazily, so those below the fold would otherwise be blank)."""
    page.evaluate(
        """() => Promise.all(Array.from(document.images, (img) => {
          img.loading = "eager";
          return img.getAttribute("src") ? img.decode().catch(() => null) : null;
        }))"""
    )
    page.evaluate("() => window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def check_openpose_json(path: Path, keypoints: list[list[float]], width: int, height: int) -> None:
    data = json.loads(path.read_text())
    assert data["version"] == 1.3
    assert (data["canvas_width"], data["canvas_height"]) == (width, height)
    assert len(data["people"]) == 1
    flat = data["people"][0]["pose_keypoints_2d"]
    assert len(flat) == 18 * 3
    points = [flat[i : i + 3] for i in range(0, 54, 3)]
    # COCO-18: nose, neck, r_sho, r_elb, r_wri, l_sho, l_elb, l_wri, r_hip, r_knee, r_ank,
    # l_hip, l_knee, l_ank, r_eye, l_eye, r_ear, l_ear (from COCO-17 indices; neck computed).
    coco = [0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]
    for point, source in zip(points, coco, strict=True):
        if source is None:
            continue
        x, y, c = keypoints[source]
        if c >= 0.3:
            assert point[0] == pytest.approx(x, abs=0.01)
            assert point[1] == pytest.approx(y, abs=0.01)
            assert point[2] > 0
        else:
            assert point == [0, 0, 0]
    l_sho, r_sho = keypoints[5], keypoints[6]
    if min(l_sho[2], r_sho[2]) >= 0.3:
        assert points[1][0] == pytest.approx((l_sho[0] + r_sho[0]) / 2, abs=0.01)
        assert points[1][1] == pytest.approx((l_sho[1] + r_sho[1]) / 2, abs=0.01)


def check_openpose_png(path: Path, width: int, height: int) -> None:
    image = Image.open(io.BytesIO(path.read_bytes()))
    assert image.format == "PNG"
    assert image.size == (width, height)
    rgb = image.convert("RGB")
    colours = {c for _, c in rgb.getcolors(maxcolors=1 << 20) or []}
    assert (0, 0, 0) in colours  # black background
    assert (255, 0, 0) in colours  # the nose, in OpenPose's first colour
    assert len(colours) > 10  # limbs in their colours


# What a person reads or hears on the page: its text, and the titles, alt texts and labels.
PAGE_WORDS = """() => [
  document.body.innerText,
  ...Array.from(document.querySelectorAll("[title], [alt], [aria-label], [placeholder]"),
    (e) => ["title", "alt", "aria-label", "placeholder"].map((a) => e.getAttribute(a) || "")
      .join(" ")),
].join("\\n")"""


def check_no_server_paths(page: Any) -> None:
    words: str = page.evaluate(PAGE_WORDS)
    for path in SERVER_PATHS:
        assert path not in words, f"the page shows a server path ({path}…)"


def check_picture_first(page: Any, least_share: float = 0.55) -> None:
    """Each card leads with its picture, full width, taking most of the card; the scores
    are small print beneath it."""
    cards = page.get_by_test_id("result")
    assert cards.count() > 0
    for i in range(min(cards.count(), 4)):
        card = cards.nth(i)
        leads = card.evaluate(
            "c => { const f = c.firstElementChild; "
            "return Boolean(f && (f.matches('img') || f.querySelector(':scope > img'))); }"
        )
        assert leads, "a result card must lead with its picture"
        card_box = card.bounding_box()
        image_box = card.locator("img").bounding_box()
        assert abs(image_box["y"] - card_box["y"]) <= 2
        assert image_box["width"] >= card_box["width"] - 4
        assert image_box["height"] >= least_share * card_box["height"]
        scores = card.locator("[data-field=scores]")
        assert scores.evaluate("e => parseFloat(getComputedStyle(e).fontSize)") <= 13


def check_no_sideways_scroll(page: Any) -> None:
    widths = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


def check_credits_shown(page: Any, results: list[dict[str, Any]]) -> None:
    """What the service knows of who made a picture and its licence is on its card."""
    for result in results:
        card = page.locator(f"[data-testid=result][data-id='{result['id']}']")
        credit = card.locator("[data-field=source]").inner_text()
        if result.get("attribution"):
            assert result["attribution"].strip() in credit
        if result.get("licence"):
            assert card.locator("[data-field=licence]").inner_text() == result["licence"].strip()


# ---------------------------------------------------------------------- the flows


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first test also indexes the pictures and starts the server
def test_search_by_photo_edit_text_lambda_mirror_and_export(page: Any, pictures: Pictures) -> None:
    # Upload: the photo is sent as an image query; the figure found in it is drawn.
    with searching(page) as response:
        page.get_by_test_id("upload").set_input_files(pictures.query)
    request = body_of(response.value)
    assert request["image"].startswith("data:image/")
    assert "keypoints" not in request
    detected = response.value.json()["query_keypoints"]
    assert detected is not None and len(detected) == 17
    joints = page.get_by_test_id("joint")
    assert joints.count() == 17
    assert page.locator("#editor line.bone:not(.hidden)").count() >= 10
    cards = page.get_by_test_id("result")
    assert cards.count() == PAGE_SIZE
    first = cards.first
    assert first.locator("svg.overlay line").count() > 0  # its skeleton, over its thumbnail
    first.locator("img").evaluate("img => img.decode()")
    assert first.locator("img").evaluate("img => img.naturalWidth") > 0
    assert (
        first.get_by_test_id("result-image").get_attribute("href")
        == (response.value.json()["results"][0]["image_url"])
    )
    check_picture_first(page)
    check_credits_shown(page, response.value.json()["results"])
    check_no_server_paths(page)
    after_upload = shown_results(page)

    # Drag a joint: the search re-runs with the edited pose as keypoints.
    with searching(page) as response:
        drag(page, "right_wrist", 40, -60)
    request = body_of(response.value)
    assert "image" not in request
    sent = request["keypoints"]
    moved = [
        i
        for i in range(17)
        if abs(sent[i][0] - detected[i][0]) > 1 or abs(sent[i][1] - detected[i][1]) > 1
    ]
    assert moved == [10], "only the right wrist should have moved"
    assert sent[10][1] < detected[10][1] - 10  # dragged up, in image pixels
    after_drag = shown_results(page)
    assert after_drag != after_upload

    # Text: usable once CLIP has loaded in the server; results then carry a text score.
    # λ weighs pose against text: off (and saying why) until there is text to weigh.
    wait_for_text_search(page, "available")
    lam = page.get_by_test_id("lambda")
    assert lam.is_disabled() and lam.get_attribute("aria-disabled") == "true"
    assert "description" in lam.get_attribute("title")
    text = page.get_by_test_id("text-input")
    with searching(page) as response:
        text.fill("a skier on a snowy slope")
    request = body_of(response.value)
    assert request["text"] == "a skier on a snowy slope"
    assert "keypoints" in request
    assert all(r["clip_score"] is not None for r in response.value.json()["results"])
    after_text = shown_results(page)
    assert after_text != after_drag
    assert page.get_by_test_id("result").first.locator("[data-field=clip]").inner_text() != "—"
    assert lam.is_enabled() and lam.get_attribute("aria-disabled") == "false"
    assert page.get_by_test_id("warnings").is_hidden()

    # The look of the uploaded picture: sent beside the edited pose and the text, and off again.
    with searching(page) as response:
        page.get_by_test_id("use-look").check()
    request = body_of(response.value)
    assert request["image_use"] == "look" and request["image"].startswith("data:image/")
    assert request["keypoints"] == sent and request["text"] == "a skier on a snowy slope"
    assert "look of your picture" in page.get_by_test_id("summary").inner_text()
    assert shown_results(page) != after_text
    with searching(page) as response:
        page.get_by_test_id("use-look").uncheck()
    assert "image" not in body_of(response.value)
    assert shown_results(page) == after_text

    # λ: the same pose and text, weighted differently: the scores change.
    with searching(page) as response:
        lam.fill("0.9")
    assert body_of(response.value)["lambda"] == pytest.approx(0.9)
    assert "0.90" in page.get_by_test_id("lambda-value").inner_text()
    after_lambda = shown_results(page)
    assert [s for _, s in after_lambda] != [s for _, s in after_text]

    # Mirror toggle.
    with searching(page) as response:
        page.get_by_test_id("mirror").check()
    assert body_of(response.value)["mirror"] is True
    shown = response.value.json()["results"]

    # Load more: the next page, no result twice.
    with searching(page):
        page.get_by_test_id("load-more").click()
    ids = [i for i, _ in shown_results(page)]
    assert len(ids) > PAGE_SIZE
    assert len(set(ids)) == len(ids)

    # Framing filter: only the checked framings are asked for.
    with searching(page) as response:
        page.get_by_test_id("framing-no_person").uncheck()
    assert sorted(body_of(response.value)["framing"]) == ["full_body", "portrait", "upper_body"]
    assert all(r["framing"] != "no_person" for r in response.value.json()["results"])
    shown = response.value.json()["results"]

    # The skeletons over the pictures can be hidden, to see the pictures alone.
    overlay = page.get_by_test_id("result").first.locator("svg.overlay")
    page.get_by_test_id("show-skeletons").uncheck()
    assert overlay.is_hidden()
    page.get_by_test_id("show-skeletons").check()
    assert overlay.is_visible()

    screenshot(page, "page-desktop.png")

    # Export a result's skeleton.
    result = next(r for r in shown if r["keypoints"] is not None)
    card = page.locator(f"[data-testid=result][data-id='{result['id']}']")
    path = download_of(page, "export-result-json", within=card)
    check_openpose_json(path, result["keypoints"], result["width"], result["height"])
    path = download_of(page, "export-result-png", within=card)
    check_openpose_png(path, result["width"], result["height"])

    # "Use this pose": the result's keypoints become the query, in its image's frame.
    chosen = next(r for r in shown[1:] if r["keypoints"] is not None)
    card = page.locator(f"[data-testid=result][data-id='{chosen['id']}']")
    with searching(page) as response:
        card.get_by_test_id("use-pose").click()
    request = body_of(response.value)
    flat = [v for kp in chosen["keypoints"] for v in kp]
    assert [v for kp in request["keypoints"] for v in kp] == pytest.approx(flat, abs=0.01)
    assert page.locator("#editor-backdrop").get_attribute("src") == chosen["image_url"]
    again = next(r for r in response.value.json()["results"] if r["id"] == chosen["id"])
    assert again["pose_score"] == pytest.approx(1.0, abs=0.01)  # its own pose, found again

    # Export the query pose (now the chosen result's) as OpenPose JSON and as a PNG.
    page.locator("details.export summary").click()
    path = download_of(page, "export-query-json")
    check_openpose_json(path, chosen["keypoints"], chosen["width"], chosen["height"])
    path = download_of(page, "export-query-png")
    check_openpose_png(path, chosen["width"], chosen["height"])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pose_the_default_figure(page: Any, watch: PageWatch, pictures: Pictures) -> None:
    # A picture with nobody in it: the service's message, and the default figure placed over it.
    width, height = Image.open(pictures.nobody).size
    watch.expect_console_error("status of 422")
    before = search_seq(page)
    page.get_by_test_id("upload").set_input_files(pictures.nobody)
    wait_for_search(page, before)
    assert "no human figure" in page.get_by_test_id("error").inner_text()
    assert page.get_by_test_id("joint").count() == 0
    with searching(page) as response:
        page.get_by_test_id("default-figure").click()
    placed = body_of(response.value)["keypoints"]
    assert all(0 <= x <= width and 0 <= y <= height for x, y, _ in placed)
    assert page.get_by_test_id("error").is_hidden()

    # The default figure on a blank canvas (512 × 768), posed by hand.
    page.get_by_test_id("clear-query").click()
    with searching(page) as response:
        page.get_by_test_id("default-figure").click()
    sent = body_of(response.value)["keypoints"]
    assert len(sent) == 17 and all(c == 1 for _, _, c in sent)
    assert all(0 <= x <= 512 and 0 <= y <= 768 for x, y, _ in sent)
    assert page.get_by_test_id("result").count() > 0

    # Keyboard posing: a focused joint moves with the arrow keys.
    wrist = page.locator("[data-testid=joint][data-joint=left_wrist]")
    wrist.focus()
    with searching(page) as response:
        for _ in range(5):
            page.keyboard.press("Shift+ArrowUp")
    moved = body_of(response.value)["keypoints"]
    assert moved[9][1] < sent[9][1] - 100
    assert moved[:9] == sent[:9]

    with searching(page) as response:
        drag(page, "right_knee", 30, -40)
    assert body_of(response.value)["keypoints"][14] != sent[14]

    screenshot(page, "web-page-figure.png")

    # Clear: no query, no results, and the page says what to do.
    page.get_by_test_id("clear-query").click()
    page.get_by_test_id("summary").filter(has_text="Upload a photo").wait_for()
    assert page.get_by_test_id("result").count() == 0
    assert page.get_by_test_id("joint").count() == 0

    # A drawing whose figure reads otherwise from its mirror image: searched all the same,
    # and the page says to check the skeleton; once a joint is moved, the warning goes.
    with searching(page) as response:
        page.get_by_test_id("upload").set_input_files(CORPUS / "policeman-stop.png")
    assert [w["code"] for w in response.value.json()["warnings"]] == ["unsure_figure"]
    shown = page.get_by_test_id("warnings").locator("[data-code=unsure_figure]")
    shown.wait_for()
    assert "skeleton" in shown.inner_text()
    assert page.get_by_test_id("joint").count() == 17
    with searching(page) as response:
        drag(page, "right_knee", 20, -20)
    assert "keypoints" in body_of(response.value)
    assert page.get_by_test_id("warnings").is_hidden()


# ---------------------------------------------------------------------- drawing on the page

# A stick figure with its left arm raised, in the drawing's frame (the blank canvas, 512 ×
# 768): the strokes the tests draw, and the pose a canned answer says was read from them.
DRAWN_POSE = [
    [256, 130, 0.9],
    [270, 118, 0.9],
    [242, 118, 0.9],
    [284, 126, 0.9],
    [228, 126, 0.9],
    [296, 200, 0.9],
    [216, 200, 0.9],
    [350, 150, 0.9],
    [170, 280, 0.9],
    [400, 90, 0.9],
    [150, 370, 0.9],
    [286, 420, 0.9],
    [226, 420, 0.9],
    [305, 560, 0.9],
    [207, 560, 0.9],
    [320, 700, 0.9],
    [192, 700, 0.9],
]
HEAD = [
    (256 + 40 * math.cos(2 * math.pi * i / 24), 130 + 40 * math.sin(2 * math.pi * i / 24))
    for i in range(25)
]
FIGURE_STROKES: list[list[tuple[float, float]]] = [
    HEAD,
    [(256, 170), (256, 420)],
    [(216, 200), (296, 200)],
    [(296, 200), (350, 150), (400, 90)],
    [(216, 200), (170, 280), (150, 370)],
    [(226, 420), (286, 420)],
    [(286, 420), (305, 560), (320, 700)],
    [(226, 420), (207, 560), (192, 700)],
]
NO_FIGURE_DETAIL = (
    "no human figure was found in the uploaded image. Sketches work best as clear, filled "
    "figures on a plain background."
)
# The canvas's pixels, as the person sees them: its data URL, and how many are ink.
SKETCH_PIXELS = """() => {
  const c = document.querySelector("[data-testid=sketch]");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let ink = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i] < 128) ink += 1;
  return { url: c.toDataURL(), ink };
}"""


def on_page(page: Any, x: float, y: float) -> tuple[float, float]:
    """Where a point of the drawing's frame is on the screen (the editor letterboxes it)."""
    point: list[float] = page.evaluate(
        "([x, y]) => { const m = document.getElementById('editor').getScreenCTM(); "
        "return [m.a * x + m.e, m.d * y + m.f]; }",
        [x, y],
    )
    return point[0], point[1]


def draw_stroke(page: Any, points: list[tuple[float, float]]) -> None:
    """One stroke with the mouse, through `points` (in the drawing's frame)."""
    screen = [on_page(page, x, y) for x, y in points]
    page.mouse.move(*screen[0])
    page.mouse.down()
    for x, y in screen[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()


def touch_stroke(cdp: Any, page: Any, points: list[tuple[float, float]]) -> None:
    """One stroke with a finger (touch events, as a phone sends them)."""
    screen = [on_page(page, x, y) for x, y in points]
    start = {"x": screen[0][0], "y": screen[0][1]}
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [start]})
    for (ax, ay), (bx, by) in itertools.pairwise(screen):
        for step in range(1, 7):
            t = step / 6
            point = {"x": ax + (bx - ax) * t, "y": ay + (by - ay) * t}
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def strokes_drawn(page: Any) -> int:
    return int(page.get_by_test_id("sketch").get_attribute("data-strokes"))


def check_drawing_sent(body: dict[str, Any]) -> None:
    """The drawing goes as an uploaded picture does: a PNG on white of the drawing's frame,
    as `image` for its pose, and `mirror` is left to the service."""
    assert "mirror" not in body, "mirror is sent only when the box is ticked"
    assert "keypoints" not in body
    assert body.get("image_use", "pose") == "pose"
    head, _, data = body["image"].partition(",")
    assert head == "data:image/png;base64"
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    assert image.format == "PNG" and image.size == (512, 768)
    rgba = image.convert("RGBA")
    assert rgba.getextrema()[3] == (255, 255), "the drawing must have no transparency"
    assert rgba.getpixel((0, 0)) == (255, 255, 255, 255)
    assert rgba.getpixel((256, 300))[:3] == (0, 0, 0)  # on the body's line


class DrawingAnswers:
    """Answers the page's `/search` for a drawing as the test says: the real service
    (`real`), real results for DRAWN_POSE with that pose as `query_keypoints` (`canned`,
    whatever the pose reader makes of the drawing), or the service's 422 (`refuse`). Every
    request body is kept."""

    def __init__(self, page: Any) -> None:
        self.mode = "canned"
        self.bodies: list[dict[str, Any]] = []
        page.route("**/search", self._answer)

    def _answer(self, route: Any) -> None:
        body = route.request.post_data_json
        self.bodies.append(body)
        if self.mode == "real" or "image" not in body:
            route.continue_()
        elif self.mode == "refuse":
            route.fulfill(status=422, json={"detail": NO_FIGURE_DETAIL})
        else:
            asked = {k: v for k, v in body.items() if k not in ("image", "image_use")}
            response = route.fetch(post_data=json.dumps({**asked, "keypoints": DRAWN_POSE}))
            data = response.json()
            data["query_keypoints"] = DRAWN_POSE
            route.fulfill(response=response, json=data)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_draw_a_figure_and_search_by_its_pose(page: Any, watch: PageWatch) -> None:
    watch.expect_console_error("status of 422")
    answers = DrawingAnswers(page)
    page.get_by_test_id("draw-mode").click()
    sketch = page.get_by_test_id("sketch")
    assert sketch.is_visible() and page.get_by_test_id("draw-tools").is_visible()
    assert page.get_by_test_id("draw-mode").get_attribute("aria-pressed") == "true"
    assert strokes_drawn(page) == 0 and page.evaluate(SKETCH_PIXELS)["ink"] == 0
    assert page.get_by_test_id("find-pose").is_disabled()
    assert page.get_by_test_id("draw-undo").is_disabled()

    # A stroke: the pose is read from the drawing by itself, a moment after the last stroke.
    with searching(page) as response:
        draw_stroke(page, FIGURE_STROKES[1])
    check_drawing_sent(body_of(response.value))
    one = page.evaluate(SKETCH_PIXELS)
    assert strokes_drawn(page) == 1 and one["ink"] > 100

    # Undo takes back the last stroke, with Ctrl+Z or the button; the canvas is as before.
    for undo in ("Control+z", "button"):
        draw_stroke(page, FIGURE_STROKES[3])
        two = page.evaluate(SKETCH_PIXELS)
        assert strokes_drawn(page) == 2 and two["ink"] > one["ink"]
        if undo == "button":
            page.get_by_test_id("draw-undo").click()
        else:
            page.keyboard.press(undo)
        assert strokes_drawn(page) == 1
        assert page.evaluate(SKETCH_PIXELS) == one

    # Clear empties the page (and is itself undone by Undo).
    page.get_by_test_id("draw-clear").click()
    assert strokes_drawn(page) == 0 and page.evaluate(SKETCH_PIXELS)["ink"] == 0
    assert page.get_by_test_id("find-pose").is_disabled()
    page.get_by_test_id("draw-undo").click()
    assert page.evaluate(SKETCH_PIXELS) == one
    page.get_by_test_id("draw-clear").click()
    assert page.evaluate(SKETCH_PIXELS)["ink"] == 0

    # A whole figure, read by the real service: a pose over the drawing, or one sentence
    # saying none was found; either way the drawing stays.
    for stroke in FIGURE_STROKES:
        draw_stroke(page, stroke)
    drawn = page.evaluate(SKETCH_PIXELS)
    answers.mode = "real"
    before = search_seq(page)
    with page.expect_response(lambda r: r.url.endswith("/search")) as real:
        page.get_by_test_id("find-pose").click()
    wait_for_search(page, before)
    check_drawing_sent(body_of(real.value))
    assert real.value.status in (200, 422), real.value.text()
    if real.value.status == 200:
        assert page.get_by_test_id("joint").count() == 17
    else:
        assert page.get_by_test_id("draw-status").inner_text().startswith("No figure found")
    assert page.evaluate(SKETCH_PIXELS) == drawn

    # "Find pose in drawing", answered with a known pose: it is shown over the drawing,
    # and the results come.
    answers.mode = "canned"
    with searching(page) as response:
        page.get_by_test_id("find-pose").click()
    check_drawing_sent(body_of(response.value))
    assert page.get_by_test_id("joint").count() == 17
    assert page.get_by_test_id("pose-editor").get_attribute("data-state") == "posed"
    wrist = page.locator("[data-testid=joint][data-joint=left_wrist] circle.dot")
    assert float(wrist.get_attribute("cx")) == pytest.approx(400)
    assert float(wrist.get_attribute("cy")) == pytest.approx(90)
    assert sketch.is_visible() and page.evaluate(SKETCH_PIXELS) == drawn
    assert page.get_by_test_id("result").count() > 0
    assert "your drawing" in page.get_by_test_id("summary").inner_text()
    assert page.get_by_test_id("draw-status").is_hidden()

    # The pose is adjusted with the editor; the search then sends the edited pose (mirrored
    # too, as the service matched the drawing it came from).
    page.get_by_test_id("draw-joints").click()
    with searching(page) as response:
        drag(page, "right_wrist", 30, -40)
    request = body_of(response.value)
    assert "image" not in request and request["mirror"] is True
    sent = request["keypoints"]
    assert sent[10][1] < DRAWN_POSE[10][1] - 10
    assert [kp[:2] for i, kp in enumerate(sent) if i != 10] == [
        kp[:2] for i, kp in enumerate(DRAWN_POSE) if i != 10
    ]
    assert page.evaluate(SKETCH_PIXELS) == drawn  # dragging a joint draws nothing
    screenshot(page, "page-draw-desktop.png")

    # No figure found: one friendly sentence, and the drawing stays to be finished.
    answers.mode = "refuse"
    before = search_seq(page)
    page.get_by_test_id("find-pose").click()
    wait_for_search(page, before)
    status = page.get_by_test_id("draw-status")
    assert status.is_visible()
    assert status.inner_text().startswith("No figure found in your drawing yet")
    assert len(re.findall(r"[.!?](?:\s|$)", status.inner_text())) == 1
    assert page.get_by_test_id("error").is_hidden()
    assert page.get_by_test_id("joint").count() == 0
    assert strokes_drawn(page) == len(FIGURE_STROKES)
    assert page.evaluate(SKETCH_PIXELS) == drawn

    # The default figure, posed over the drawing instead: the joints answer the pointer now.
    with searching(page) as response:
        page.get_by_test_id("default-figure").click()
    request = body_of(response.value)
    assert "image" not in request and len(request["keypoints"]) == 17
    assert request["mirror"] is True
    assert page.get_by_test_id("joint").count() == 17
    assert page.get_by_test_id("draw-joints").get_attribute("aria-pressed") == "true"
    assert status.is_hidden() and page.evaluate(SKETCH_PIXELS) == drawn

    # Leaving Draw mode keeps the drawing for later; Clear starts over.
    page.get_by_test_id("draw-mode").click()
    assert sketch.is_hidden() and page.get_by_test_id("draw-tools").is_hidden()
    page.get_by_test_id("clear-query").click()
    page.get_by_test_id("summary").filter(has_text="Upload a photo").wait_for()
    assert [b for b in answers.bodies if "image" in b and "mirror" in b] == []


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_draw_with_a_finger_on_a_phone(server: Served, chromium: Any) -> None:
    with browser_page(chromium, server.base, viewport=PHONE) as (page, _):
        answers = DrawingAnswers(page)
        page.get_by_test_id("draw-mode").tap()
        page.get_by_test_id("sketch").scroll_into_view_if_needed()
        cdp = page.context.new_cdp_session(page)
        scrolled = page.evaluate("() => window.scrollY")
        for stroke in FIGURE_STROKES:
            touch_stroke(cdp, page, stroke)
        # A finger draws (touch-action: none): no scrolling, every stroke kept.
        assert page.evaluate("() => window.scrollY") == scrolled
        assert strokes_drawn(page) == len(FIGURE_STROKES)
        assert page.evaluate(SKETCH_PIXELS)["ink"] > 500
        with searching(page) as response:
            page.get_by_test_id("find-pose").tap()
        check_drawing_sent(body_of(response.value))
        assert page.get_by_test_id("joint").count() == 17
        assert page.get_by_test_id("result").count() > 0
        assert answers.bodies
        tools = page.get_by_test_id("draw-tools").bounding_box()
        assert tools["x"] >= 0 and tools["x"] + tools["width"] <= PHONE["width"]
        check_no_sideways_scroll(page)
        screenshot(page, "page-draw-phone.png")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_result_cards_credit_the_picture_not_the_file(page: Any) -> None:
    # Sources the index at hand may lack (web pages, attributions, licences, a server path as
    # an older service sends it) and a response without the images' sizes: the page shows
    # who made a picture and its licence, a file's name only as a last resort, never a path,
    # and takes the overlay's frame from the original image when the size is missing.
    web = "https://example.org/photos/dancer.jpg"
    gallery = "https://example.org/gallery"
    licence_url = "https://creativecommons.org/licenses/by/4.0/"

    def patched(route: Any) -> None:
        response = route.fetch()
        data = response.json()
        first, second, third, fourth = data["results"][:4]
        first.update(
            source="openverse",
            source_uri=web,
            attribution="Jane Doe",
            licence="CC BY 4.0",
            licence_url=licence_url,
            page_url=gallery,
        )
        second.update(source="urls", source_uri=web, attribution=None, licence=None)
        second["page_url"] = None
        del second["width"], second["height"]
        third.update(
            source="folder",
            source_uri="/srv/pictures/people/skier.png",
            attribution=None,
            licence="Public domain",
            page_url=None,
        )
        fourth.update(
            source="folder",
            source_uri="people/runner.png",
            attribution="Open Clip Art Library",
            licence="Public domain",
            page_url=None,
        )
        route.fulfill(response=response, json=data)

    page.route("**/search", patched)
    with searching(page) as response:
        page.get_by_test_id("default-figure").click()
    results = response.value.json()["results"]
    cards = page.get_by_test_id("result")

    first = cards.nth(0)
    source = first.locator("[data-field=source]")
    assert source.get_by_role("link", name="Jane Doe").get_attribute("href") == gallery
    assert "dancer.jpg" not in first.inner_text()
    licence = first.locator("[data-field=licence]")
    assert licence.inner_text() == "CC BY 4.0"
    assert licence.get_by_role("link").get_attribute("href") == licence_url
    assert first.get_by_test_id("result-image").get_attribute("href") == results[0]["image_url"]

    second = cards.nth(1)
    link = second.locator("[data-field=source]").get_by_role("link")
    assert link.inner_text() == "example.org/photos/dancer.jpg"
    assert link.get_attribute("href") == web
    assert second.locator("[data-field=licence]").is_hidden()
    if results[1]["keypoints"] is not None:
        overlay = second.locator("svg.overlay")
        page.wait_for_function(
            "svg => svg.getAttribute('viewBox') !== null", arg=overlay.element_handle()
        )
        box = [float(v) for v in overlay.get_attribute("viewBox").split()]
        original = page.evaluate(
            "url => new Promise(ok => { const i = new Image(); "
            "i.onload = () => ok([i.naturalWidth, i.naturalHeight]); i.src = url; })",
            results[1]["image_url"],
        )
        assert box == [0, 0, *original]

    third = cards.nth(2)
    assert third.locator("[data-field=source]").inner_text() == "skier.png"
    assert third.locator("[data-field=licence]").inner_text() == "Public domain"

    fourth = cards.nth(3)
    assert fourth.locator("[data-field=source]").inner_text() == "Open Clip Art Library"
    assert "runner.png" not in fourth.inner_text()
    check_no_server_paths(page)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_lambda_follows_the_text_box(page: Any) -> None:
    lam = page.get_by_test_id("lambda")
    wait_for_text_search(page, "available")
    assert lam.is_disabled() and lam.get_attribute("aria-disabled") == "true"
    assert page.get_by_test_id("lambda-value").inner_text() == "pose only"
    with searching(page):
        page.get_by_test_id("text-input").fill("a dancer")
    assert lam.is_enabled() and lam.get_attribute("aria-disabled") == "false"
    assert "λ = 0.50" in page.get_by_test_id("lambda-value").inner_text()
    before = search_seq(page)
    page.get_by_test_id("text-input").fill("")
    wait_for_search(page, before)
    assert lam.is_disabled()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_loading_models_then_ready(server: Served, chromium: Any) -> None:
    # The service answers `status: "loading"` at first: the page says so and asks again
    # until it is ready.
    answered: list[str] = []

    def health(route: Any) -> None:
        response = route.fetch()
        data = response.json()
        if len(answered) < 2:
            data["status"] = "loading"
            data["text_search"] = {
                **data["text_search"],
                "available": False,
                "reason": "the CLIP model is still loading",
                "summary": "Text search is starting up.",
            }
        answered.append(data["status"])
        route.fulfill(response=response, json=data)

    with browser_page(chromium, server.base, ready=False) as (page, _):
        page.route("**/health", health)
        page.goto(f"{server.base}/?k={PAGE_SIZE}")
        status = page.get_by_test_id("service-status")
        status.filter(has_text="Loading models…").wait_for()
        wait_for_text_search(page, "loading", timeout=10_000)
        assert "loading models…" in page.get_by_test_id("text-status").inner_text().lower()
        assert page.get_by_test_id("lambda").is_disabled()
        status.filter(has_text="index version").wait_for(timeout=20_000)
        wait_for_text_search(page, "available", timeout=90_000)
        assert answered[:2] == ["loading", "loading"] and len(answered) >= 3
        assert "loading" not in page.get_by_test_id("text-status").inner_text().lower()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_phone_layout_stacks_without_sideways_scroll(
    server: Served, chromium: Any, pictures: Pictures
) -> None:
    with browser_page(chromium, server.base, viewport=PHONE) as (page, _):
        with searching(page):
            page.get_by_test_id("upload").set_input_files(pictures.query)
        assert page.get_by_test_id("result").count() > 0
        query = page.locator("section.query").bounding_box()
        results = page.locator("section.results").bounding_box()
        assert results["y"] >= query["y"] + query["height"] - 1, "the panels must stack"
        for box in (query, results):
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        check_no_sideways_scroll(page)
        check_picture_first(page)
        check_no_server_paths(page)
        screenshot(page, "page-phone.png")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_without_text_search(server_without_text: Served, chromium: Any) -> None:
    served = server_without_text
    with browser_page(chromium, served.base) as (page, watch):
        wait_for_text_search(page, "unavailable", timeout=30_000)
        health = health_of(served)

        # One short sentence says so; the long reason waits behind "why?".
        note = page.get_by_test_id("text-status").inner_text().strip()
        assert 0 < len(note) < 200, note
        assert len(re.findall(r"[.!?](?:\s|$)", note)) <= 1, f"more than one sentence: {note}"
        if speaks_issue_10(health):
            assert note == health["text_search"]["summary"].strip()
        field = page.get_by_test_id("text-field")
        assert field.bounding_box()["height"] < 180, "the note must not fill the column"
        why = page.get_by_test_id("text-why")
        reason = why.locator("p")
        assert why.is_visible() and reason.is_hidden()
        why.locator("summary").click()
        assert reason.is_visible() and len(reason.inner_text()) > len(note)
        why.locator("summary").click()
        assert reason.is_hidden()

        lam = page.get_by_test_id("lambda")
        assert lam.is_disabled() and lam.get_attribute("aria-disabled") == "true"
        assert "unavailable" in lam.get_attribute("title")

        # Text alone is not sent (it would only be refused): the page says why, briefly.
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/search") else None)
        before = search_seq(page)
        page.get_by_test_id("text-input").fill("a dancer mid-leap")
        wait_for_search(page, before)
        assert not sent
        assert note in page.get_by_test_id("summary").inner_text()
        assert page.get_by_test_id("error").is_hidden()
        assert lam.is_disabled()

        # Text beside a pose: results ranked by pose, and a polite notice that the text was
        # not used (the service's `warnings`; a service that refuses the text instead gets
        # the same notice from the page).
        watch.expect_console_error("status of 503")
        responses: list[Any] = []
        page.on("response", lambda r: responses.append(r) if r.url.endswith("/search") else None)
        page.get_by_test_id("default-figure").click()
        warnings = page.get_by_test_id("warnings")
        warnings.wait_for()
        page.get_by_test_id("result").first.wait_for()
        assert "not used" in warnings.inner_text() or "ignored" in warnings.inner_text().lower()
        assert len(warnings.inner_text()) < 300
        assert page.get_by_test_id("error").is_hidden()
        if speaks_issue_10(health):
            answer = responses[0]
            assert answer.ok and body_of(answer)["text"] == "a dancer mid-leap"
            codes = [w["code"] for w in answer.json()["warnings"]]
            assert "text_ignored" in codes
            shown = warnings.locator("[data-code=text_ignored]").inner_text()
            assert shown == next(
                w["message"] for w in answer.json()["warnings"] if w["code"] == "text_ignored"
            )
        check_no_server_paths(page)
        check_picture_first(page)
        screenshot(page, "page-no-text.png")

    with browser_page(chromium, served.base, viewport=PHONE) as (page, _):
        wait_for_text_search(page, "unavailable", timeout=30_000)
        assert len(page.get_by_test_id("text-status").inner_text()) < 200
        with searching(page):
            page.get_by_test_id("default-figure").click()
        check_no_sideways_scroll(page)
        screenshot(page, "page-no-text-phone.png")
