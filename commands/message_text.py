"""The text a person wrote in a Matrix message, without the reply fallback.

A client that sends a reply may put the quoted message first in the body, each line after ``> ``,
then an empty line (the reply fallback, older clients' way of showing what is answered). What the
person wrote is what follows. Only a reply (``m.relates_to`` → ``m.in_reply_to``) has one: a message
that merely starts with a markdown quote is left whole.
"""

from __future__ import annotations


def without_reply_fallback(content: dict) -> str:
    """The message's body as its author wrote it (surrounding white space removed)."""
    body = str(content.get("body") or "")
    relates = content.get("m.relates_to")
    if isinstance(relates, dict) and relates.get("m.in_reply_to") and body.startswith("> "):
        lines = body.split("\n")
        while lines and lines[0].startswith("> "):
            lines.pop(0)
        if lines and lines[0] == "":
            lines.pop(0)
        body = "\n".join(lines)
    return body.strip()
