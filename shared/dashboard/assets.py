"""The dashboard's static files, served by the dashboard itself under content-hashed names.

A name carries the first 12 hex digits of its file's SHA-256 (app.css -> app.3f2a9c01b7de.css), so a reply can
be cached for a year: a changed file gets a new name, and pages rendered after the change link to it.
Nothing is fetched from another host, because self-hosted installs often have no internet.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
LONG_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    hashed_name: str
    content: bytes
    media_type: str


def hashed_name(name: str, content: bytes) -> str:
    stem, dot, extension = name.rpartition(".")
    digest = hashlib.sha256(content).hexdigest()[:12]
    return f"{stem}.{digest}.{extension}" if dot else f"{name}.{digest}"


@lru_cache(maxsize=1)
def catalogue() -> tuple[dict[str, Asset], dict[str, Asset]]:
    """(by plain name, by hashed name), read once per process."""
    by_name: dict[str, Asset] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            content = path.read_bytes()
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media_type.startswith("text/") or media_type == "application/javascript":
                media_type += "; charset=utf-8"
            by_name[path.name] = Asset(hashed_name(path.name, content), content, media_type)
    return by_name, {asset.hashed_name: asset for asset in by_name.values()}


def url_of(name: str, prefix: str) -> str:
    return f"{prefix}/static/{catalogue()[0][name].hashed_name}"


def by_hashed_name(name: str) -> Asset | None:
    return catalogue()[1].get(name)
