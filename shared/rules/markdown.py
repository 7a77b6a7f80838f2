"""Incident messages as safe HTML: Markdown in, markup that can run nothing out. Pure; used by the incidents API
(shared/api/services/status_incidents.py) and the public status pages.

markdown-it-py with raw HTML off escapes every tag a message holds (`<script>`, `<img onerror>`, HTML blocks),
so no attribute of ours can carry an event handler. Links keep only the schemes listed below, a stricter list
than the library's own (which refuses javascript:, vbscript:, file: and most data:). Images are off: a status
page makes no third-party request, and an image would be one."""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

# A link may point to the web or to a mail address; a link without a scheme (relative, #anchor) stays as well.
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"^\s*([a-z][a-z0-9+.-]*):", re.IGNORECASE)
# CommonMark's escapable characters: every ASCII punctuation mark
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def _allowed_link(url: str) -> bool:
    scheme = _SCHEME.match(url)
    return scheme is None or scheme.group(1).lower() in LINK_SCHEMES


def _link_open(self, tokens, index, options, env) -> str:
    # user-written links on a public page: no referrer, no ranking credit, no window.opener
    tokens[index].attrSet("rel", "nofollow ugc noopener noreferrer")
    return self.renderToken(tokens, index, options, env)


@cache
def _renderer() -> MarkdownIt:
    # loaded with the first message rendered: aggregate, which only escapes names, never loads the parser
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).disable("image")
    md.validateLink = _allowed_link
    md.add_render_rule("link_open", _link_open)
    return md


def render_markdown(text: str) -> str:
    """`text` (an incident message, Markdown) as HTML that is safe to insert into a page as it is."""
    return _renderer().render(text or "")


def escape_markdown(text: str) -> str:
    """`text` shown literally inside Markdown (a monitor's name in a message the system writes)."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
