"""Argument types of the classroom: each turns typed text into a value or a sentence saying why not."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from . import when
from .errors import BadArgument

# Matrix user ids (spec appendix "User Identifiers"), ASCII only: a lookalike letter from
# another script is refused rather than matched to a real account.
_USER_ID = re.compile(r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(:\d{1,5})?\Z")
_SERVER = re.compile(r"^(?=.{1,255}$)[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)*(:\d{1,5})?\Z")
_CODE = re.compile(r"^[A-Za-z0-9]{3,16}\Z")
_ASSIGNMENT = re.compile(r"^[Aa](\d{1,6})\Z")
MAX_AHEAD = timedelta(days=3653)  # dates further than ten years from now are refused


@dataclass(frozen=True)
class ParseEnv:
    """What converters may depend on: the clock and the zone the caller's times are read in."""

    now: datetime
    tz: ZoneInfo


class Converter:
    metavar = "value"
    greedy = False  # may take several words (a date such as "friday 5pm")

    def convert(self, text: str, env: ParseEnv) -> Any:
        raise NotImplementedError


class Text(Converter):
    def __init__(self, metavar: str = "text", max_len: int = 200):
        self.metavar, self.max_len = metavar, max_len

    def convert(self, text, env):
        text = text.strip()
        if not text:
            raise BadArgument(f"The {self.metavar} is empty.")
        if len(text) > self.max_len:
            raise BadArgument(f"The {self.metavar} is {len(text)} characters long; at most {self.max_len} are allowed.")
        if any(ord(c) < 32 and c not in "\n\t" for c in text):
            raise BadArgument(f"The {self.metavar} contains control characters.")
        return text


class Markdown(Text):
    """Rest of the message, markdown, rendered and sanitised on the way out."""

    def __init__(self, metavar: str = "text", max_len: int = 20_000):
        super().__init__(metavar, max_len)


class UserId(Converter):
    metavar = "@user:server"

    def convert(self, text, env):
        text = text.strip()
        if not text.startswith("@"):
            raise BadArgument(f"“{text}” is not a Matrix user; write it in full, like @ana:school-b.example.")
        if not _USER_ID.match(text):
            raise BadArgument(
                f"“{text}” is not a valid Matrix user id (lower-case letters, digits and ._=-/+ before the colon, a server name after)."
            )
        return text


class ServerName(Converter):
    metavar = "server"

    def convert(self, text, env):
        text = text.strip().lower()
        if not _SERVER.match(text):
            raise BadArgument(f"“{text}” is not a homeserver name such as school-b.example.")
        return text


class ClassCode(Converter):
    metavar = "class code"

    def convert(self, text, env):
        text = text.strip()
        if not _CODE.match(text):
            raise BadArgument(f"“{text}” is not a class code (3–16 letters and digits, like PHYS12).")
        return text.upper()


class AssignmentId(Converter):
    metavar = "assignment"

    def convert(self, text, env):
        m = _ASSIGNMENT.match(text.strip())
        if not m:
            raise BadArgument(f"“{text}” is not an assignment id; they look like A1, A2, …")
        return f"A{int(m.group(1))}"


class When(Converter):
    """A moment, read in the class's (or caller's) zone. Past moments are refused unless allowed."""

    metavar = "when"
    greedy = True

    def __init__(self, allow_past: bool = False):
        self.allow_past = allow_past

    def convert(self, text, env):
        moment = when.parse_when(text, env.now, env.tz)
        if moment is None:
            raise BadArgument(
                f"“{text}” is not a date or time I understand; try 2026-12-04 17:00, friday 5pm, tomorrow 9:00 or in 3 days."
            )
        if not self.allow_past and moment <= env.now:
            raise BadArgument(f"{when.show(moment, env.tz)} is in the past.")
        if abs(moment - env.now) > MAX_AHEAD:  # later sums (reminders, calendars) must stay in range
            raise BadArgument(f"{when.show(moment, env.tz)} is more than ten years away; give a date within ten years.")
        return moment


class Duration(Converter):
    metavar = "duration"

    def convert(self, text, env) -> timedelta:
        d = when.parse_duration(text)
        if d is None:
            raise BadArgument(f"“{text}” is not a duration; try 24h, 90m, 2d or 1h30m.")
        return d


class TimeZone(Converter):
    metavar = "Area/City"

    def convert(self, text, env) -> str:
        try:
            return when.zone(text.strip()).key
        except ValueError as e:
            raise BadArgument(str(e)) from None


class Choice(Converter):
    def __init__(self, *choices: str):
        self.choices = choices
        self.metavar = "|".join(choices)

    def convert(self, text, env) -> str:
        word = text.strip().lower()
        if word not in self.choices:
            raise BadArgument(f"“{text}” is not one of: {', '.join(self.choices)}.")
        return word


class Number(Converter):
    def __init__(self, metavar: str = "number", minimum: float | None = 0, maximum: float | None = None, integer: bool = False):
        self.metavar, self.minimum, self.maximum, self.integer = metavar, minimum, maximum, integer

    def convert(self, text, env):
        try:
            value = int(text) if self.integer else float(text)
        except ValueError:
            kind = "a whole number" if self.integer else "a number"
            raise BadArgument(f"“{text}” is not {kind}.") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise BadArgument(f"“{text}” is not a number.")
        if self.minimum is not None and value < self.minimum:
            raise BadArgument(f"The {self.metavar} must be at least {self.minimum:g}.")
        if self.maximum is not None and value > self.maximum:
            raise BadArgument(f"The {self.metavar} must be at most {self.maximum:g}.")
        return value


class Version(Converter):
    """A version of a learner's work: ``v2`` (or ``2``)."""

    metavar = "vN"
    _RE = re.compile(r"^[Vv]?(\d{1,6})\Z")

    def convert(self, text, env) -> int:
        m = self._RE.match(text.strip())
        if not m or int(m.group(1)) < 1:
            raise BadArgument(f"“{text}” is not a version; write v1, v2, …")
        return int(m.group(1))
