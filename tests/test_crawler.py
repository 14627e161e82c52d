"""The web crawler and the polite fetcher, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from pipelines.records import DecodedImage, IngestFailure
from pipelines.sources.base import SourceItem, decode_item, open_source
from pipelines.sources.crawler import WebCrawlSource, largest_candidate, parse_page, parse_srcset
from pipelines.sources.fetcher import USER_AGENT, Fetcher, FetchError, FetchPolicy, sniff_image_type
from pipelines.sources.robots_tags import robots_tag_block
from tests.local_http import LocalSite, Reply, jpeg_reply, png_reply, serve, textured_image

MAX_IMAGE_BYTES = 100_000
POLICY = FetchPolicy(
    min_interval_s=0.05,
    backoff_s=0.05,
    max_image_bytes=MAX_IMAGE_BYTES,
    max_wait_s=5.0,
    connect_timeout_s=5.0,
    read_timeout_s=5.0,
)
LICENCE = "https://creativecommons.org/licenses/by/4.0/"

INDEX = b"""<!doctype html><html><head>
<title>Gallery</title>
<meta property="og:image" content="/img/og.jpg">
<link rel="license" href="https://creativecommons.org/licenses/by/4.0/">
<meta name="author" content="Ada Lovelace">
</head><body>
<img src="/img/plain.png" alt="plain">
<img src="/img/small.png" srcset="/img/small.png 320w, /img/large.png 1200w, /img/medium.png 640w">
<img src="/private/hidden.png">
<img src="/img/noai.png">
<img src="/img/busy.png">
<img src="/img/old.png">
<img src="/img/huge.png">
<img src="/img/stream.png">
<img src="/img/fake.png">
<img src="/img/liar.png">
<img src="/img/missing.png">
<img src="data:image/png;base64,iVBORw0KGgo=">
<img src="/img/plain.png#again">
<a href="/gallery.html">gallery</a>
<a href="/gallery.html#top">gallery again</a>
<a href="/private/secret.html">secret</a>
<a href="http://elsewhere.invalid/page.html">another site</a>
<a href="/files/doc.pdf">a file</a>
<a href="/nofollow.html" rel="nofollow">not followed</a>
</body></html>"""

GALLERY = b"""<html><body>
<img src="/img/g.jpg">
<img src="/img/scoped.png">
<picture>
  <source type="image/avif" srcset="/img/p.avif 2x">
  <source srcset="/img/p-1x.jpg 1x, /img/p-2x.jpg 2x">
  <img src="/img/p-1x.jpg">
</picture>
<a href="/deeper.html">deeper</a>
</body></html>"""

DEEPER = b'<html><body><img src="/img/deep.png"></body></html>'
ROBOTS = b"User-agent: *\nDisallow: /private/\n\nUser-agent: otherbot\nDisallow: /\n"


def _noise_png(side: int) -> bytes:
    pixels = (np.random.default_rng(0).random((side, side, 3)) * 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


IMAGES = {
    name: textured_image(seed)
    for seed, name in enumerate(
        [
            "plain",
            "small",
            "large",
            "medium",
            "hidden",
            "noai",
            "busy",
            "moved",
            "g",
            "scoped",
            "p-1x",
            "p-2x",
            "deep",
            "og",
        ]
    )
}


def busy(asked: int) -> Reply:
    if asked == 0:
        return Reply(429, b"slow down", headers=(("Retry-After", "1"),), content_type="text/plain")
    return png_reply(IMAGES["busy"])


def site_routes() -> dict[str, object]:
    huge = _noise_png(300)
    assert len(huge) > MAX_IMAGE_BYTES
    return {
        "/robots.txt": Reply(200, ROBOTS, content_type="text/plain"),
        "/index.html": Reply(200, INDEX),
        "/gallery.html": Reply(200, GALLERY),
        "/deeper.html": Reply(200, DEEPER),
        "/nofollow.html": Reply(200, DEEPER),
        "/private/secret.html": Reply(200, DEEPER),
        "/img/plain.png": png_reply(IMAGES["plain"]),
        "/img/small.png": png_reply(IMAGES["small"]),
        "/img/large.png": png_reply(IMAGES["large"]),
        "/img/medium.png": png_reply(IMAGES["medium"]),
        "/private/hidden.png": png_reply(IMAGES["hidden"]),
        "/img/noai.png": png_reply(IMAGES["noai"], ("X-Robots-Tag", "noai")),
        "/img/scoped.png": png_reply(IMAGES["scoped"], ("X-Robots-Tag", "otherbot: noindex")),
        "/img/busy.png": busy,
        "/img/old.png": Reply(301, b"", headers=(("Location", "/img/moved.png"),)),
        "/img/moved.png": png_reply(IMAGES["moved"]),
        "/img/huge.png": png_reply(huge),
        "/img/stream.png": Reply(200, huge[:150_000], content_type="image/png", send_length=False),
        "/img/fake.png": Reply(200, b"<html>not an image</html>"),
        "/img/liar.png": Reply(200, b"<html>still not an image</html>", content_type="image/png"),
        "/img/g.jpg": jpeg_reply(textured_image(20, fmt="JPEG")),
        "/img/p-1x.jpg": jpeg_reply(textured_image(21, fmt="JPEG")),
        "/img/p-2x.jpg": jpeg_reply(textured_image(22, fmt="JPEG")),
        "/img/p.avif": Reply(200, b"avif", content_type="image/avif"),
        "/img/deep.png": png_reply(IMAGES["deep"]),
        "/img/og.jpg": jpeg_reply(textured_image(23, fmt="JPEG")),
    }


@pytest.fixture(scope="module")
def crawled() -> Iterator[tuple[LocalSite, list[SourceItem | IngestFailure]]]:
    with serve(site_routes()) as site:  # type: ignore[arg-type]
        source = WebCrawlSource(seeds=(site.url("/index.html"),), depth=1, fetch=POLICY)
        yield site, list(source.items())


def _path(site: LocalSite, url: str) -> str:
    assert url.startswith(site.url("")), url
    return url[len(site.url("")) :]


def test_the_crawler_takes_exactly_the_images_it_should(crawled) -> None:  # type: ignore[no-untyped-def]
    site, results = crawled
    fetched = [_path(site, r.source_uri) for r in results if isinstance(r, SourceItem)]
    assert fetched == [
        "/img/og.jpg",  # og:image, in the head
        "/img/plain.png",
        "/img/large.png",  # the largest srcset candidate, not src
        "/img/busy.png",  # 429, then 200 after the Retry-After
        "/img/moved.png",  # /img/old.png, redirected
        "/img/g.jpg",  # one link away
        "/img/scoped.png",  # its X-Robots-Tag is scoped to another crawler
        "/img/p-2x.jpg",  # the largest decodable candidate of a <picture>
    ]


def test_the_crawler_records_each_refusal_with_its_reason(crawled) -> None:  # type: ignore[no-untyped-def]
    site, results = crawled
    failures = {
        _path(site, r.source_uri): r.reason for r in results if isinstance(r, IngestFailure)
    }
    assert set(failures) == {
        "/private/hidden.png",
        "/img/noai.png",
        "/img/huge.png",
        "/img/stream.png",
        "/img/fake.png",
        "/img/liar.png",
        "/img/missing.png",
        "/private/secret.html",
    }
    assert failures["/private/hidden.png"] == "disallowed by robots.txt"
    assert failures["/private/secret.html"] == "page: disallowed by robots.txt"
    assert failures["/img/noai.png"] == "X-Robots-Tag: noai"
    assert failures["/img/huge.png"].startswith("too large: ")
    assert f"(limit {MAX_IMAGE_BYTES})" in failures["/img/huge.png"]
    assert failures["/img/stream.png"] == f"too large: more than {MAX_IMAGE_BYTES} bytes"
    assert failures["/img/fake.png"] == "not an image: content type text/html"
    assert failures["/img/liar.png"].startswith("not an image: the content of this image/png")
    assert failures["/img/missing.png"] == "HTTP 404"


def test_the_crawler_never_asks_for_what_it_must_not(crawled) -> None:  # type: ignore[no-untyped-def]
    site, _ = crawled
    paths = [p.split("#")[0] for p in site.paths()]
    assert not [p for p in paths if p.startswith("/private/")], "robots.txt disallows /private/"
    for never in (
        "/deeper.html",  # two links away, depth is 1
        "/nofollow.html",  # rel=nofollow
        "/files/doc.pdf",  # a file, not a page
        "/img/small.png",  # srcset's smaller candidates
        "/img/medium.png",
        "/img/p-1x.jpg",
        "/img/p.avif",  # a type we cannot decode
        "/img/deep.png",
    ):
        assert never not in paths, never
    assert paths.count("/robots.txt") == 1
    assert paths.count("/img/plain.png") == 1  # the same image twice on a page: fetched once
    assert paths.count("/gallery.html") == 1
    assert paths.count("/img/busy.png") == 2


def test_the_crawler_identifies_itself_spaces_requests_and_honours_retry_after(crawled) -> None:  # type: ignore[no-untyped-def]
    site, _ = crawled
    assert {h.user_agent for h in site.hits} == {USER_AGENT}
    times = [h.time for h in site.hits]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Measured where the server receives them, so each arrival carries some jitter of
    # connection set-up (one gap may look short because the one before it looked long); no
    # burst, though: any run of requests spans at least one interval fewer than its gaps.
    assert sorted(gaps)[len(gaps) // 2] >= POLICY.min_interval_s * 0.9, "requests are spaced"
    for i, j in itertools.combinations(range(len(times)), 2):
        assert times[j] - times[i] >= (j - i - 1) * POLICY.min_interval_s, (i, j)
    busy_times = [h.time for h in site.hits if h.path == "/img/busy.png"]
    assert busy_times[1] - busy_times[0] >= 0.95, "Retry-After: 1 was honoured"


def test_crawled_images_keep_their_page_licence_and_attribution(crawled) -> None:  # type: ignore[no-untyped-def]
    site, results = crawled
    items = {_path(site, r.source_uri): r for r in results if isinstance(r, SourceItem)}
    plain = items["/img/plain.png"]
    assert plain.page_url == site.url("/index.html")
    assert plain.licence == LICENCE
    assert plain.attribution == "Ada Lovelace"
    assert plain.fetched_at is not None
    assert plain.data == IMAGES["plain"]
    gallery = items["/img/g.jpg"]
    assert gallery.page_url == site.url("/gallery.html")
    assert gallery.licence is None and gallery.attribution is None
    decoded = decode_item(plain)
    assert isinstance(decoded, DecodedImage)
    assert (decoded.page_url, decoded.licence, decoded.attribution) == (
        plain.page_url,
        LICENCE,
        "Ada Lovelace",
    )
    assert decoded.fetched_at == plain.fetched_at
    assert decoded.phash is not None and len(decoded.phash) == 16


def test_depth_zero_reads_the_seed_page_only() -> None:
    with serve(site_routes()) as site:  # type: ignore[arg-type]
        source = WebCrawlSource(
            seeds=(site.url("/gallery.html"),), depth=0, max_images=2, fetch=POLICY
        )
        results = list(source.items())
        assert "/deeper.html" not in site.paths()
    fetched = [_path(site, r.source_uri) for r in results if isinstance(r, SourceItem)]
    assert fetched == ["/img/g.jpg", "/img/scoped.png"]  # max_images stops the crawl


def test_meta_robots_noimageai_keeps_a_pages_images_out() -> None:
    page = (
        b'<html><head><meta name="robots" content="noimageai"></head>'
        b'<body><img src="/a.png"></body></html>'
    )
    with serve({"/p.html": Reply(200, page), "/a.png": png_reply(IMAGES["plain"])}) as site:
        results = list(WebCrawlSource(seeds=(site.url("/p.html"),), fetch=POLICY).items())
        assert "/a.png" not in site.paths()
    assert results == [
        IngestFailure(site.url("/p.html"), "page: images not taken: robots directive noimageai")
    ]


def test_crawl_options_come_from_plain_configuration() -> None:
    source = open_source(
        "crawl",
        {"seeds": ["https://example.org/"], "depth": 2, "fetch": {"min_interval_s": 3.0}},
    )
    assert isinstance(source, WebCrawlSource)
    assert source.seeds == ("https://example.org/",)
    assert source.fetch.min_interval_s == 3.0
    with pytest.raises(ValueError, match="unknown option"):
        open_source("crawl", {"seeds": ["https://example.org/"], "dept": 2})
    with pytest.raises(ValueError, match="not an http"):
        open_source("crawl", {"seeds": ["ftp://example.org/"]})


# ---------------------------------------------------------------- parsing


def test_srcset_parsing_follows_the_html_rules() -> None:
    assert parse_srcset("a.png 1x, b.png 2x") == [("a.png", "1x"), ("b.png", "2x")]
    assert parse_srcset("/w_300,h_200/a.jpg 300w, /w_600,h_400/a.jpg 600w") == [
        ("/w_300,h_200/a.jpg", "300w"),
        ("/w_600,h_400/a.jpg", "600w"),
    ]
    assert largest_candidate("s.png 320w, l.png 1200w, m.png 640w") == "l.png"
    assert largest_candidate("a.png, b.png 3x, c.png 2x") == "b.png"
    assert largest_candidate("") is None


def test_page_parsing_resolves_against_base_and_skips_data_uris() -> None:
    html = """<html><head><base href="https://cdn.example.org/assets/"></head><body>
    <img src="a.png"><img data-src="lazy.png" src="data:image/gif;base64,R0lGOD">
    <a href="../about.html">about</a><a href="mailto:x@example.org">mail</a></body></html>"""
    page = parse_page(html, "https://example.org/index.html")
    assert page.images == [
        "https://cdn.example.org/assets/a.png",
        "https://cdn.example.org/assets/lazy.png",
    ]
    assert page.links == ["https://cdn.example.org/about.html"]


def test_x_robots_tag_directives_and_their_scope() -> None:
    token = "poseframerbot"
    assert robots_tag_block(["noai"], token) == "noai"
    assert robots_tag_block(["noindex, nofollow"], token) == "noindex"
    assert robots_tag_block(["NoImageAI"], token) == "noimageai"
    assert robots_tag_block(["otherbot: noindex"], token) is None
    assert robots_tag_block(["otherbot: noindex", "noai"], token) == "noai"
    assert robots_tag_block(["poseframerbot: noai"], token) == "noai"
    assert robots_tag_block(["unavailable_after: 25 Jun 2030 15:00:00 PST"], token) is None
    assert robots_tag_block(["nofollow"], token) is None


def test_magic_bytes_name_the_format() -> None:
    assert sniff_image_type(textured_image(1)) == "image/png"
    assert sniff_image_type(textured_image(1, fmt="JPEG")) == "image/jpeg"
    assert sniff_image_type(textured_image(1, fmt="WEBP")) == "image/webp"
    assert sniff_image_type(textured_image(1, fmt="GIF")) == "image/gif"
    assert sniff_image_type(b"<html>") is None


# ---------------------------------------------------------------- the fetcher


def test_an_unreachable_robots_txt_disallows_and_a_missing_one_allows() -> None:
    policy = FetchPolicy(min_interval_s=0.0, backoff_s=0.01, max_attempts=2)
    down = {"/robots.txt": Reply(500, b"oops"), "/a.png": png_reply(IMAGES["plain"])}
    with serve(down) as site, Fetcher(policy) as fetcher:  # type: ignore[arg-type]
        with pytest.raises(FetchError, match=r"disallowed by robots\.txt"):
            fetcher.fetch_image(site.url("/a.png"))
        assert site.count("/robots.txt") == 2  # retried once, then given up
        assert site.count("/a.png") == 0
    with serve({"/a.png": png_reply(IMAGES["plain"])}) as site, Fetcher(policy) as fetcher:
        assert fetcher.fetch_image(site.url("/a.png")).data == IMAGES["plain"]


def test_retries_give_up_after_the_last_attempt_with_the_status() -> None:
    policy = FetchPolicy(min_interval_s=0.0, backoff_s=0.01, max_attempts=3, obey_robots=False)
    with serve({"/a.png": Reply(503, b"busy")}) as site, Fetcher(policy) as fetcher:
        with pytest.raises(FetchError, match=r"^HTTP 503 after 3 attempts$"):
            fetcher.fetch_image(site.url("/a.png"))
        assert site.count("/a.png") == 3


def test_a_retry_after_longer_than_the_limit_gives_up_at_once() -> None:
    policy = FetchPolicy(min_interval_s=0.0, max_wait_s=10.0, obey_robots=False)
    route = Reply(429, b"", headers=(("Retry-After", "3600"),))
    with serve({"/a.png": route}) as site, Fetcher(policy) as fetcher:
        with pytest.raises(FetchError, match="Retry-After of 3600 s exceeds"):
            fetcher.fetch_image(site.url("/a.png"))
        assert site.count("/a.png") == 1


def test_crawl_delay_in_robots_txt_spaces_requests() -> None:
    robots = b"User-agent: poseframerbot\nCrawl-delay: 1\nAllow: /\n"
    routes = {"/robots.txt": Reply(200, robots, content_type="text/plain")}
    routes |= {f"/{i}.png": png_reply(IMAGES["plain"]) for i in range(2)}
    with serve(routes) as site, Fetcher(FetchPolicy(min_interval_s=0.0)) as fetcher:  # type: ignore[arg-type]
        for i in range(2):
            fetcher.fetch_image(site.url(f"/{i}.png"))
    first, second = (h.time for h in site.hits if h.path.endswith(".png"))
    assert second - first >= 0.9


def test_redirects_to_a_disallowed_path_are_refused() -> None:
    routes = {
        "/robots.txt": Reply(200, ROBOTS, content_type="text/plain"),
        "/go.png": Reply(302, b"", headers=(("Location", "/private/x.png"),)),
        "/private/x.png": png_reply(IMAGES["plain"]),
    }
    with serve(routes) as site, Fetcher(FetchPolicy(min_interval_s=0.0)) as fetcher:  # type: ignore[arg-type]
        with pytest.raises(FetchError, match=r"disallowed by robots.txt \(redirected to"):
            fetcher.fetch_image(site.url("/go.png"))
        assert site.count("/private/x.png") == 0


def test_only_http_urls_are_fetched() -> None:
    with Fetcher(POLICY) as fetcher, pytest.raises(FetchError, match="unsupported URL scheme"):
        fetcher.fetch_image("file:///etc/passwd")
