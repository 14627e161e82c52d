"""The Openverse source, against a fake Openverse API on 127.0.0.1."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from pipelines.records import IngestFailure
from pipelines.sources.base import SourceItem, SourceUnavailableError, open_source
from pipelines.sources.fetcher import FetchPolicy
from pipelines.sources.openverse import OpenverseSource, attribution_of, licence_name
from tests.local_http import LocalSite, Reply, jpeg_reply, png_reply, serve, textured_image

POLICY = FetchPolicy(min_interval_s=0.0, backoff_s=0.01, max_attempts=2)


def result(site_url: str, n: int, **extra: object) -> dict[str, object]:
    return {
        "id": f"id-{n}",
        "title": f"Dancer {n}",
        "url": f"{site_url}/img/{n}.jpg",
        "foreign_landing_url": f"https://www.flickr.com/photos/someone/{n}",
        "creator": f"Creator {n}",
        "license": "by",
        "license_version": "2.0",
        "license_url": "https://creativecommons.org/licenses/by/2.0/",
        "attribution": f'"Dancer {n}" by Creator {n} is licensed under CC BY 2.0.',
        **extra,
    }


class FakeOpenverse:
    """Pages of results keyed by the request's `page` parameter."""

    def __init__(self) -> None:
        self.site: LocalSite | None = None
        self.pages: list[list[dict[str, object]]] = []
        self.fail_page: int | None = None

    def answer(self, asked: int) -> Reply:
        assert self.site is not None
        query = parse_qs(urlsplit(self.site.paths()[-1]).query)
        page = int(query["page"][0])
        if page == self.fail_page:
            return Reply(500, b"broken", content_type="text/plain")
        body = {
            "result_count": sum(len(p) for p in self.pages),
            "page_count": len(self.pages),
            "page_size": int(query["page_size"][0]),
            "page": page,
            "results": self.pages[page - 1] if page <= len(self.pages) else [],
        }
        return Reply(200, json.dumps(body).encode(), content_type="application/json")


@pytest.fixture
def openverse():  # type: ignore[no-untyped-def]
    fake = FakeOpenverse()
    routes: dict[str, object] = {"/v1/images/": fake.answer}
    routes |= {f"/img/{n}.jpg": jpeg_reply(textured_image(n, fmt="JPEG")) for n in range(1, 6)}
    routes["/img/3.jpg"] = png_reply(textured_image(3), ("X-Robots-Tag", "noimageai"))
    with serve(routes) as site:  # type: ignore[arg-type]
        fake.site = site
        base = site.url("")
        fake.pages = [
            [
                result(base, 1),
                result(base, 2, attribution=None, license="cc0", license_version="1.0"),
            ],
            [result(base, 3), result(base, 4, license="pdm", license_version="")],
            [result(base, 5)],
        ]
        yield fake, site


def test_pages_through_results_keeping_licence_and_creator(openverse) -> None:  # type: ignore[no-untyped-def]
    _fake, site = openverse
    source = OpenverseSource(
        query="ballet dancer",
        licences=("by", "cc0", "pdm"),
        page_size=2,
        api_base=site.url(""),
        fetch=POLICY,
    )
    results = list(source.items())
    items = [r for r in results if isinstance(r, SourceItem)]
    failures = [r for r in results if isinstance(r, IngestFailure)]
    assert [urlsplit(i.source_uri).path for i in items] == [
        "/img/1.jpg",
        "/img/2.jpg",
        "/img/4.jpg",
        "/img/5.jpg",
    ]
    assert failures == [IngestFailure(site.url("/img/3.jpg"), "X-Robots-Tag: noimageai")]
    first, second, fourth = items[0], items[1], items[2]
    assert first.licence == "CC BY 2.0"
    assert first.attribution == '"Dancer 1" by Creator 1 is licensed under CC BY 2.0.'
    assert first.page_url == "https://www.flickr.com/photos/someone/1"
    assert second.licence == "CC0 1.0"
    assert second.attribution == '"Dancer 2" by Creator 2 is licensed under CC0 1.0'
    assert fourth.licence == "Public Domain Mark 1.0"
    api_calls = [parse_qs(urlsplit(p).query) for p in site.paths() if p.startswith("/v1/")]
    assert [c["page"] for c in api_calls] == [["1"], ["2"], ["3"]]
    assert api_calls[0]["q"] == ["ballet dancer"]
    assert api_calls[0]["license"] == ["by,cc0,pdm"]
    assert api_calls[0]["page_size"] == ["2"]
    assert api_calls[0]["mature"] == ["false"]
    assert "/robots.txt" in site.paths()  # images are fetched politely; the API is not crawled


def test_max_images_stops_the_paging(openverse) -> None:  # type: ignore[no-untyped-def]
    _, site = openverse
    source = OpenverseSource(
        query="q", max_images=3, page_size=2, api_base=site.url(""), fetch=POLICY
    )
    results = list(source.items())
    assert len(results) == 3
    assert sum(1 for p in site.paths() if p.startswith("/v1/")) == 2


def test_an_api_failure_on_the_first_page_fails_the_source(openverse) -> None:  # type: ignore[no-untyped-def]
    fake, site = openverse
    fake.fail_page = 1
    source = OpenverseSource(query="q", api_base=site.url(""), fetch=POLICY)
    with pytest.raises(SourceUnavailableError, match="HTTP 500 after 2 attempts"):
        list(source.items())


def test_a_later_page_failure_keeps_what_was_found(openverse) -> None:  # type: ignore[no-untyped-def]
    fake, site = openverse
    fake.fail_page = 2
    source = OpenverseSource(query="q", page_size=2, api_base=site.url(""), fetch=POLICY)
    results = list(source.items())
    assert sum(isinstance(r, SourceItem) for r in results) == 2
    assert isinstance(results[-1], IngestFailure)
    assert results[-1].reason == "Openverse page: HTTP 500 after 2 attempts"


def test_licence_names_and_attribution_fallbacks() -> None:
    assert licence_name({"license": "by-sa", "license_version": "4.0"}) == "CC BY-SA 4.0"
    assert licence_name({"license": "cc0"}) == "CC0 1.0"
    assert licence_name({}) is None
    assert attribution_of(
        {"title": "T", "creator": "C", "license": "by", "license_version": "3.0"}
    ) == ('"T" by C is licensed under CC BY 3.0')
    assert attribution_of({}) is None


def test_configuration_validates_options() -> None:
    source = open_source("openverse", {"query": "dance", "licences": ["cc0"], "max_images": 5})
    assert isinstance(source, OpenverseSource) and source.licences == ("cc0",)
    with pytest.raises(ValueError, match="needs a query"):
        open_source("openverse", {"query": " "})
    with pytest.raises(ValueError, match="api_base"):
        open_source("openverse", {"query": "q", "api_base": "ftp://x"})
