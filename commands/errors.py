"""Errors written for the person in the chat.

A ``UserError`` carries a sentence meant for the room; anything else that escapes a
handler is a bug, logged with a short reference and answered with that reference only.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix. ``str(error)`` is the sentence shown in the room."""

    show_usage = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadArgument(UserError):
    """Malformed or missing argument: the reply adds the command's usage."""

    show_usage = True


class NotAllowed(UserError):
    """The caller's role does not permit this, here."""


class NotFound(UserError):
    """The class, assignment, user or record named does not exist (for this caller)."""


class Conflict(UserError):
    """The request clashes with what is already recorded."""


class UnknownCommand(UserError):
    """No command by that name."""


def id_ranges(letter: str, numbers: list[int]) -> str:
    """Short ids as a reader scans them: ``A1–A3, A5``; for "not found" sentences that say what exists."""
    parts: list[str] = []
    run: list[int] = []
    for n in sorted(set(numbers)):
        if run and n != run[-1] + 1:
            parts.append(_run(letter, run))
            run = []
        run.append(n)
    if run:
        parts.append(_run(letter, run))
    return ", ".join(parts)


def _run(letter: str, run: list[int]) -> str:
    if len(run) == 1:
        return f"{letter}{run[0]}"
    joiner = ", " if len(run) == 2 else "–"
    return f"{letter}{run[0]}{joiner}{letter}{run[-1]}"
