"""Request dependencies, as `Annotated` aliases for the routers' signatures."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Query, Request

from config.settings import Settings
from serving.search_service import SearchService
from storage.store import Store


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_search_service(request: Request) -> SearchService:
    return cast(SearchService, request.app.state.search_service)


def get_store(service: Annotated[SearchService, Depends(get_search_service)]) -> Store:
    return service.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
SearchServiceDep = Annotated[SearchService, Depends(get_search_service)]
StoreDep = Annotated[Store, Depends(get_store)]
VersionQuery = Annotated[
    str | None,
    Query(description="Search table version number or tag (default: the served one)"),
]
