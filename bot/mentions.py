"""The command a message carries: its text, without the reply fallback, mention pills written as Matrix ids.

A client shows a mention as a "pill": in the HTML (``formatted_body``) a link to
``https://matrix.to/#/@user:server`` labelled with the person's display name; the plain ``body``
has only the label. Whom a pill means is its link; the label is whatever that person (or their
server) chose to be called, and may equal any other word of the command — `A1`, or another
learner's id. So a label is replaced by the pill's id only at the pill's own place: the HTML's
text is walked alongside the body, and a label is rewritten only where the pill stands in it,
never wherever the same words first appear. When the two cannot be lined up, pills are left as
they are, and the command says which argument it could not read.
"""

from __future__ import annotations

import html
import re
from urllib.parse import unquote

from commands.message_text import without_reply_fallback

_PILL = re.compile(r'<a\s+href="https://matrix\.to/#/((?:@|%40)[^"?/]+)[^"]*"\s*>(.*?)</a>', re.S | re.I)
_REPLY = re.compile(r"<mx-reply>.*?</mx-reply>", re.S | re.I)
_BREAK = re.compile(r"<br\s*/?>|</(?:p|div|li|h[1-6]|blockquote|pre|tr)>", re.I)
_TAG = re.compile(r"<[^>]+>")


def command_text(content: dict) -> str:
    """The typed command: reply fallback removed, mention pills written as Matrix ids."""
    body = without_reply_fallback(content)
    formatted = content.get("formatted_body")
    if content.get("format") == "org.matrix.custom.html" and isinstance(formatted, str) and "matrix.to" in formatted:
        body = _pills_as_ids(body, _REPLY.sub("", formatted))
    return body.strip()


def _text_of(fragment: str) -> str:
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", fragment)))


def _pills_as_ids(body: str, formatted: str) -> str:
    """Walk the HTML's text and the body together; replace each pill's label where the pill is."""
    replacements: list[tuple[int, int, str]] = []
    cursor, last = 0, 0
    for pill in _PILL.finditer(formatted):
        # the text before the pill: each of its visible characters, in order, in the body
        for ch in _text_of(formatted[last : pill.start()]):
            if ch.isspace():
                continue
            found = body.find(ch, cursor)
            if found < 0:
                return _apply(body, replacements)
            cursor = found + 1
        last = pill.end()
        user_id, label = unquote(pill.group(1)), _text_of(pill.group(2)).strip()
        at = cursor
        while at < len(body) and body[at].isspace():
            at += 1
        if label and body.startswith(label, at):
            if label != user_id:
                replacements.append((at, at + len(label), user_id))
            cursor = at + len(label)
        elif body.startswith(user_id, at):  # the client wrote the id itself in the body
            cursor = at + len(user_id)
        else:  # the body does not have this pill where the HTML does: stop here, guess nothing
            break
    return _apply(body, replacements)


def _apply(body: str, replacements: list[tuple[int, int, str]]) -> str:
    for start, end, user_id in reversed(replacements):
        body = body[:start] + user_id + body[end:]
    return body
