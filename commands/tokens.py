"""The one tokenizer: words, quoted strings (straight or curly quotes), and where each came from."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BadArgument

_QUOTES = {'"': '"', "“": "”", "„": "“", "«": "»", "'": "'", "‘": "’"}


@dataclass(frozen=True)
class Token:
    text: str
    quoted: bool
    start: int  # offset of the token's first character (its opening quote, if quoted)
    end: int  # offset just past the token (past its closing quote)


def tokenize(line: str) -> list[Token]:
    """Split one command line into tokens. A quote opens only at the start of a word."""
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        start = i
        close = _QUOTES.get(line[i])
        if close is not None:
            j = line.find(close, i + 1)
            if j < 0:
                raise BadArgument(
                    f"The quote {line[i]} before “{_preview(line[i + 1:])}” is never closed."
                )
            tokens.append(Token(line[i + 1 : j], True, start, j + 1))
            i = j + 1
            continue
        while i < n and not line[i].isspace():
            i += 1
        tokens.append(Token(line[start:i], False, start, i))
    return tokens


def _preview(text: str, limit: int = 20) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "…"
