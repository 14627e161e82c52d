"""Browser tier: the web page at `/`, in headless Chromium against the real uvicorn server.

The browser is Debian's `chromium` package (/usr/bin/chromium) driven by Playwright; nothing
is downloaded (`playwright install` is never needed). Without either, the browser tests skip
and say why; `.ci/run` installs both. The screenshot lands in test-artifacts/ (gitignored).

The fast tests at the top check how the page is served, with FastAPI's TestClient.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from serving.app import create_app
from tests.conftest import make_settings
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
QUERY_IMAGE = "coco__000000000785.jpg"  # one skier, whole body in view
PAGE_SIZE = 8  # the page's `?k=`: small, so "load more" has more to load from the evalset


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


@pytest.fixture(scope="module")
def server(
    indexed_home: Path, tiny_clip_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The real `poseframer serve` process over a copy of the indexed evalset; its base URL."""
    workdir = tmp_path_factory.mktemp("web-page")
    home = workdir / "home"
    shutil.copytree(indexed_home, home)
    with live_server(home, tiny_clip_env, workdir) as server:
        yield server.base


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


@pytest.fixture
def watch(server: str) -> PageWatch:
    return PageWatch(server)


@pytest.fixture
def page(server: str, chromium: Any, watch: PageWatch) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    watch.attach(page)
    page.goto(f"{server}/?k={PAGE_SIZE}")
    page.get_by_test_id("service-status").filter(has_text="index version").wait_for()
    try:
        yield page
    finally:
        context.close()
    assert not watch.outside, f"the page fetched from elsewhere: {watch.outside}"
    assert not watch.errors, "\n".join(watch.errors)


def search_seq(page: Any) -> int:
    return int(page.get_by_test_id("results").get_attribute("data-seq"))


@contextmanager
def searching(page: Any) -> Iterator[Any]:
    """Around an action that searches: the `/search` response (`.value`), once the page has
    shown it."""
    before = search_seq(page)
    with page.expect_response(
        lambda r: r.url.endswith("/search") and r.request.method == "POST"
    ) as response:
        yield response
    page.wait_for_function(
        "s => Number(document.querySelector('[data-testid=results]').dataset.seq) > s",
        arg=before,
    )
    assert response.value.ok, response.value.text()


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


@pytest.mark.slow
@pytest.mark.evalset
def test_search_by_photo_edit_text_lambda_mirror_and_export(page: Any, evalset: Path) -> None:
    # Upload: the photo is sent as an image query; the figure found in it is drawn.
    with searching(page) as response:
        page.get_by_test_id("upload").set_input_files(evalset / "images" / QUERY_IMAGE)
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

    # Text: enabled once CLIP has loaded in the server; results then carry a text score.
    text = page.get_by_test_id("text-input")
    text.wait_for(state="visible")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=text-input]').disabled", timeout=90_000
    )
    with searching(page) as response:
        text.fill("a skier on a snowy slope")
    request = body_of(response.value)
    assert request["text"] == "a skier on a snowy slope"
    assert "keypoints" in request
    assert all(r["clip_score"] is not None for r in response.value.json()["results"])
    after_text = shown_results(page)
    assert after_text != after_drag
    assert page.get_by_test_id("result").first.locator("[data-field=clip]").inner_text() != "—"

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
        page.get_by_test_id("lambda").fill("0.9")
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

    page.screenshot(path=str(screenshot_path("web-page-search.png")), full_page=True)

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
    path = download_of(page, "export-query-json")
    check_openpose_json(path, chosen["keypoints"], chosen["width"], chosen["height"])
    path = download_of(page, "export-query-png")
    check_openpose_png(path, chosen["width"], chosen["height"])


@pytest.mark.slow
@pytest.mark.evalset
def test_pose_the_default_figure(page: Any, watch: PageWatch, evalset: Path) -> None:
    # A photo with nobody in it: the service's message, and the default figure placed over it.
    no_person = evalset / "images" / "neg_locust__630.jpg"
    width, height = Image.open(no_person).size
    watch.expect_console_error("status of 422")
    before = search_seq(page)
    page.get_by_test_id("upload").set_input_files(no_person)
    page.wait_for_function(
        "s => Number(document.querySelector('[data-testid=results]').dataset.seq) > s", arg=before
    )
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

    page.screenshot(path=str(screenshot_path("web-page-figure.png")), full_page=True)

    # Clear: no query, no results, and the page says what to do.
    page.get_by_test_id("clear-query").click()
    page.get_by_test_id("summary").filter(has_text="Upload a photo").wait_for()
    assert page.get_by_test_id("result").count() == 0
    assert page.get_by_test_id("joint").count() == 0


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


@pytest.mark.slow
@pytest.mark.evalset
def test_result_cards_link_sources_and_licences(page: Any) -> None:
    # Fields the evalset index lacks (web sources, licences) and a response without the
    # images' sizes, as an older service sends: the page must show the first and cope with
    # the second (the overlay then takes its frame from the original image).
    web = "https://example.org/photos/dancer.jpg"
    licence_url = "https://creativecommons.org/licenses/by/4.0/"

    def patched(route: Any) -> None:
        response = route.fetch()
        data = response.json()
        first, second = data["results"][0], data["results"][1]
        first.update(source_uri=web, licence="CC BY 4.0", licence_url=licence_url)
        first["page_url"] = "https://example.org/gallery"
        del second["width"], second["height"]
        route.fulfill(response=response, json=data)

    page.route("**/search", patched)
    with searching(page) as response:
        page.get_by_test_id("default-figure").click()
    results = response.value.json()["results"]

    cards = page.get_by_test_id("result")
    first = cards.nth(0)
    source = first.locator("[data-field=source]")
    assert (
        source.get_by_role("link", name="example.org/photos/dancer.jpg").get_attribute("href")
        == web
    )
    assert source.get_by_role("link", name="page").get_attribute("href") == (
        "https://example.org/gallery"
    )
    licence = first.locator("[data-field=licence]")
    assert licence.inner_text() == "Licence: CC BY 4.0"
    assert licence.get_by_role("link").get_attribute("href") == licence_url

    second = cards.nth(1)
    assert second.locator("[data-field=source] a").first.inner_text() == "original"
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
