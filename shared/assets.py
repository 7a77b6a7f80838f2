"""Static files served by a function itself under content-hashed names (the dashboard's, the status pages').

A name carries the first 12 hex digits of its file's SHA-256 (app.css -> app.3f2a9c01b7de.css), so a reply can
be cached for a year: a changed file gets a new name, and pages rendered after the change link to it.
Nothing is fetched from another host, because self-hosted installs often have no internet.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

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


class AssetCatalogue:
    """The files of some folders and single files, read once per process on first use. A later source's file
    of the same name wins, so a function can add its own files beside another's shared ones."""

    def __init__(self, *sources: Path):
        self.sources = sources

    @cached_property
    def _tables(self) -> tuple[dict[str, Asset], dict[str, Asset]]:
        by_name: dict[str, Asset] = {}
        for source in self.sources:
            paths = sorted(source.iterdir()) if source.is_dir() else [source]
            for path in paths:
                if path.is_file():
                    content = path.read_bytes()
                    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    if media_type.startswith("text/") or media_type == "application/javascript":
                        media_type += "; charset=utf-8"
                    by_name[path.name] = Asset(hashed_name(path.name, content), content, media_type)
        return by_name, {asset.hashed_name: asset for asset in by_name.values()}

    def url_of(self, name: str, prefix: str) -> str:
        return f"{prefix}/static/{self._tables[0][name].hashed_name}"

    def by_hashed_name(self, name: str) -> Asset | None:
        return self._tables[1].get(name)
