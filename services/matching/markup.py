"""Texts as rich-text editors send them: HTML markup taken out before any text is analysed.

A web form's description field is often a rich-text editor, and its text arrives as
``<p>需要<strong>固态电池</strong>试制&nbsp;200只</p>``. Left in, the markup becomes words
(``strong``, ``span``, ``nbsp``) that match every other supplier written the same way, and it
shows up in the explanation's statements. ``plain_text`` drops the tags of HTML elements
(``HTML_ELEMENTS``): a block element's tag (``<p>``, ``<br/>``, ``<li>``) ends a clause, an
inline one (``<strong>``, ``<span style=…>``) goes without a trace so that the words around it
stay one; character references (``&nbsp;``, ``&amp;``, ``&#8451;``) become their characters.
Only tags naming an HTML element are markup: ``粒径<10μm`` and ``<Q235>`` are left as written.
"""

from __future__ import annotations

import html
import re

__all__ = ["HTML_BLOCK_ELEMENTS", "HTML_ELEMENTS", "plain_text"]

HTML_BLOCK_ELEMENTS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
"""Elements whose tags end a clause (a paragraph, a line break, a list item, a cell)."""

HTML_ELEMENTS = HTML_BLOCK_ELEMENTS | frozenset(
    [
        "a",
        "abbr",
        "b",
        "big",
        "cite",
        "code",
        "del",
        "em",
        "font",
        "i",
        "img",
        "ins",
        "kbd",
        "label",
        "mark",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "u",
        "var",
        "wbr",
    ]
)
"""Every element whose tags are taken out: the block ones and the inline ones of rich text."""

_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)(?:\s[^<>]*)?/?>")
_REFERENCE = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")


def _tag(match: re.Match[str]) -> str:
    name = match.group(2).lower()
    if name in HTML_BLOCK_ELEMENTS:
        return "\n"
    return "" if name in HTML_ELEMENTS else match.group(0)


def plain_text(text: str) -> str:
    """``text`` without HTML markup (see the module). A text without ``<`` or ``&`` is
    returned as it is, after one scan for each."""
    if "<" in text:
        text = _TAG.sub(_tag, text)
    if "&" in text:
        text = _REFERENCE.sub(lambda m: html.unescape(m.group(0)), text)
    return text
