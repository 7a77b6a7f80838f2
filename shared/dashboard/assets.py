"""The dashboard's static files (shared/dashboard/static), served under content-hashed names by shared.assets."""

from __future__ import annotations

from pathlib import Path

from shared.assets import LONG_CACHE, Asset, AssetCatalogue, hashed_name

__all__ = ["LONG_CACHE", "STATIC_DIR", "Asset", "by_hashed_name", "hashed_name", "url_of"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
CATALOGUE = AssetCatalogue(STATIC_DIR)


def url_of(name: str, prefix: str) -> str:
    return CATALOGUE.url_of(name, prefix)


def by_hashed_name(name: str) -> Asset | None:
    return CATALOGUE.by_hashed_name(name)
