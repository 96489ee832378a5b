"""Markdown to Matrix's allowed HTML, and handler messages to event content."""

from __future__ import annotations

import html as html_lib
import json
import logging
import re

import nh3
from markdown_it import MarkdownIt

from commands.context import Message

log = logging.getLogger("ako.render")

# The HTML the Matrix spec lists for m.room.message formatted_body (client-server API,
# "m.room.message msgtypes": tags and attributes clients should allow).
ALLOWED_TAGS = {
    "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol", "sup", "sub",
    "li", "b", "i", "u", "strong", "em", "s", "code", "hr", "br", "div", "table", "thead",
    "tbody", "tr", "th", "td", "caption", "pre", "span", "img", "details", "summary",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "target"},
    "img": {"width", "height", "alt", "title", "src"},
    "ol": {"start"},
    "code": {"class"},
    "span": {"data-mx-spoiler", "data-mx-color", "data-mx-bg-color"},
}
URL_SCHEMES = {"https", "http", "ftp", "mailto", "magnet", "mxc"}

MAX_EVENT_BYTES = 60_000  # under Matrix's 64 KiB event limit, leaving room for the envelope

# CommonMark (what Element and most clients write), parsed in linear time with a nesting cap:
# text from learners is rendered here, so a pathological message (thousands of unclosed
# brackets, lists 500 deep) must cost milliseconds, not minutes or a RecursionError.
# Python-Markdown took 40 s on 20,000 "[" and overflowed the stack on deep lists.
_MARKDOWN = MarkdownIt("commonmark", {"breaks": True, "html": True, "maxNesting": 20}).enable(["table", "strikethrough"])
# Links of any scheme become <a>; the sanitiser then drops an href whose scheme is not allowed, so
# [x](javascript:…) shows as the word x, not as literal markdown.
_MARKDOWN.validateLink = lambda url: True


# Brackets are the costliest markup to parse (about 0.1 ms each, every one a possible link):
# text with more than this many is shown as plain text, so no message takes more than ~0.5 s.
MAX_BRACKETS = 2_000


def to_html(markdown_text: str) -> str:
    if markdown_text.count("[") > MAX_BRACKETS:
        return _plain_html(markdown_text)
    try:
        html = _MARKDOWN.render(markdown_text)
    except Exception:  # a bug in the renderer must not lose the message: send it as plain text
        log.exception("Markdown could not be rendered; sending it as plain text")
        return _plain_html(markdown_text)
    return sanitise(html).strip()


def _plain_html(text: str) -> str:
    return html_lib.escape(text, quote=False).replace("\n", "<br>")


_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)


def _absolute_links_only(tag: str, attribute: str, value: str) -> str | None:
    """A message has no address of its own, so a relative link ("0:", "/x") leads nowhere: dropped.
    (The sanitiser has already dropped every scheme not in URL_SCHEMES.)"""
    if attribute in ("href", "src"):
        found = _SCHEME.match(value.strip())
        if not found or found.group(1).lower() not in URL_SCHEMES:
            return None
    return value


def sanitise(html: str) -> str:
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
        attribute_filter=_absolute_links_only,
    )
    # <img> may only show media from Matrix itself (spec: clients must not load other images).
    return re.sub(r'<img\b(?![^>]*\bsrc="mxc://)[^>]*>', "", clean)


def plain(markdown_text: str) -> str:
    """The plain body: the markdown as typed, which every client shows readably."""
    return markdown_text


def event_bytes(content: dict) -> int:
    """The size of the content as the homeserver counts it (JSON, UTF-8; only control characters escaped)."""
    return len(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode())


def content_for(message: Message) -> dict:
    """An m.notice for the message: body, sanitised HTML, intentional mentions, relations.

    The body is at most a third of the event limit (see :func:`split_markdown`); when escaping
    makes the HTML too big for one event (every ``&`` becomes ``&amp;``), the HTML is left out
    and the plain body alone is sent rather than an event the server refuses."""
    content: dict = {
        "msgtype": "m.notice",
        "body": plain(message.markdown),
        "format": "org.matrix.custom.html",
        "formatted_body": to_html(message.markdown),
        "m.mentions": {"user_ids": list(message.mentions)} if message.mentions else {},
    }
    if message.room_mention:
        content["m.mentions"]["room"] = True
    relates: dict = {}
    if message.thread_root:
        relates = {"rel_type": "m.thread", "event_id": message.thread_root, "is_falling_back": message.reply_to is None}
        relates["m.in_reply_to"] = {"event_id": message.reply_to or message.thread_root}
    elif message.reply_to:
        relates = {"m.in_reply_to": {"event_id": message.reply_to}}
    if relates:
        content["m.relates_to"] = relates
    if event_bytes(content) > MAX_EVENT_BYTES:
        del content["format"], content["formatted_body"]
    return content


def media_content(message: Message) -> dict:
    """The message's media as its own event (``m.image``, ``m.file``, …) with the markdown as its
    caption (a ``body`` other than the ``filename``, as Matrix 1.10 reads it); without markdown the
    body is the file's name, as older clients expect."""
    media = message.media
    content = content_for(message if message.markdown else Message(**{**message.__dict__, "markdown": media.name}))
    if not message.markdown:
        del content["format"], content["formatted_body"]
    info: dict = {}
    if media.mimetype:
        info["mimetype"] = media.mimetype
    if media.size is not None:
        info["size"] = media.size
    if media.width and media.height:
        info["w"], info["h"] = media.width, media.height
    content.update({"msgtype": media.msgtype, "filename": media.name, "url": media.url, "info": info})
    return content


def _cost(text: str) -> int:
    """Bytes the text takes in an event's JSON (quotes, backslashes and control characters are escaped)."""
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def split_markdown(markdown_text: str, limit: int = MAX_EVENT_BYTES // 3) -> list[str]:
    """Split long text at line breaks into pieces whose event body stays under ``limit`` bytes."""
    if _cost(markdown_text) <= limit:
        return [markdown_text]
    pieces, current, current_cost = [], "", 0
    for line in markdown_text.split("\n"):
        line_cost = _cost(line)
        if line_cost > limit:  # a single enormous line: hard cut, character by character
            if current:
                pieces.append(current)
                current, current_cost = "", 0
            cut, cut_cost = [], 0
            for ch in line:
                c = _cost(ch)
                if cut_cost + c > limit:
                    pieces.append("".join(cut))
                    cut, cut_cost = [], 0
                cut.append(ch)
                cut_cost += c
            line, line_cost = "".join(cut), cut_cost
        if current and current_cost + 2 + line_cost > limit:
            pieces.append(current)
            current, current_cost = line, line_cost
        else:
            current, current_cost = (f"{current}\n{line}", current_cost + 2 + line_cost) if current else (line, line_cost)
    if current:
        pieces.append(current)
    return pieces
