"""Markdown to Matrix's allowed HTML, and handler messages to event content."""

from __future__ import annotations

import re

import markdown as md
import nh3

from commands.context import Message

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


def to_html(markdown_text: str) -> str:
    html = md.markdown(markdown_text, extensions=["fenced_code", "tables", "sane_lists", "nl2br"])
    return sanitise(html)


def sanitise(html: str) -> str:
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )
    # <img> may only show media from Matrix itself (spec: clients must not load other images).
    return re.sub(r'<img\b[^>]*\bsrc="(?!mxc://)[^"]*"[^>]*>', "", clean)


def plain(markdown_text: str) -> str:
    """The plain body: the markdown as typed, which every client shows readably."""
    return markdown_text


def content_for(message: Message) -> dict:
    """An m.notice for the message: body, sanitised HTML, intentional mentions, relations."""
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
    return content


def split_markdown(markdown_text: str, limit: int = MAX_EVENT_BYTES // 3) -> list[str]:
    """Split long text at line breaks into pieces whose rendered event stays under the limit."""
    if len(markdown_text.encode()) <= limit:
        return [markdown_text]
    pieces, current = [], ""
    for line in markdown_text.split("\n"):
        while len(line.encode()) > limit:  # a single enormous line: hard cut
            cut = line.encode()[:limit].decode(errors="ignore")
            if current:
                pieces.append(current)
                current = ""
            pieces.append(cut)
            line = line[len(cut):]
        if len((current + "\n" + line).encode()) > limit and current:
            pieces.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        pieces.append(current)
    return pieces
