"""Argument types of the classroom: each turns typed text into a value or a sentence saying why not."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from storage.models import USER_ID, Class, ClassRole

from . import when
from .errors import BadArgument, NotAllowed, NotFound

_SERVER = re.compile(r"^(?=.{1,255}$)[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)*(:\d{1,5})?\Z")
_CODE = re.compile(r"^[A-Za-z0-9]{3,16}\Z")
MAX_AHEAD = timedelta(days=3653)  # dates further than ten years from now are refused


@dataclass(frozen=True)
class ParseEnv:
    """What converters may depend on: the clock and the zone the caller's times are read in."""

    now: datetime
    tz: ZoneInfo


class Converter:
    """Turns a parameter's text into its value, given the command's context (discord.py's
    ``Converter``). Converters of plain values implement :meth:`parse`, which needs only the clock
    and the zone; converters that find records (an assignment, a class) override :meth:`convert`."""

    metavar = "value"
    greedy = False  # may take several words (a date such as "friday 5pm")
    written: str | None = None  # the usage, written out, where the metavar does not say it

    async def convert(self, ctx: Any, text: str) -> Any:
        return self.parse(text, ctx)

    async def default(self, ctx: Any) -> Any:
        """The value of an optional parameter left out (discord.py's ``parameter(default=…)``): None,
        or what the context says, such as the programme whose room the command is typed in."""
        return None

    def parse(self, text: str, env: ParseEnv) -> Any:
        raise NotImplementedError


class Text(Converter):
    def __init__(self, metavar: str = "text", max_len: int = 200, greedy: bool = False):
        self.metavar, self.max_len, self.greedy = metavar, max_len, greedy

    def parse(self, text, env):
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

    def parse(self, text, env):
        text = text.strip()
        if not text.startswith("@"):
            raise BadArgument(f"“{text}” is not a Matrix user; write it in full, like @ana:school-b.example.")
        if not USER_ID.match(text):
            raise BadArgument(
                f"“{text}” is not a valid Matrix user id (lower-case letters, digits and ._=-/+ before the colon, a server name after)."
            )
        return text


class ServerName(Converter):
    metavar = "server"

    def parse(self, text, env):
        text = text.strip().lower()
        if not _SERVER.match(text):
            raise BadArgument(f"“{text}” is not a homeserver name such as school-b.example.")
        return text


class ClassCode(Converter):
    metavar = "class code"

    def parse(self, text, env):
        text = text.strip()
        if not _CODE.match(text):
            raise BadArgument(f"“{text}” is not a class code (3–16 letters and digits, like PHYS12).")
        return text.upper()


async def unknown_class(repos: Any, user: str, code: str) -> str:
    """A class code that names no class: say which classes the person is in (never anyone else's codes,
    which are how learners join)."""
    mine = [k for k, _ in await repos.classes.of_user(user)]
    if not mine:
        return f"No class has the code {code}, and you are in no class yet."
    return f"No class has the code {code}; yours: {', '.join(k.label for k in mine)}."


async def class_by_code(repos: Any, user: str, code: str) -> Class:
    """The class with that code, or a sentence for ``user`` saying there is none."""
    klass = await repos.classes.by_code(code)
    if klass is None:
        raise NotFound(await unknown_class(repos, user, code))
    return klass


class ClassRef(ClassCode):
    """A class, by its code: the record."""

    async def convert(self, ctx: Any, text: str) -> Class:
        return await class_by_code(ctx.repos, ctx.caller.user_id, self.parse(text, ctx))


class TaughtClass(ClassRef):
    """A class the caller teaches (operators may name any), not archived: the record. Whether the
    caller teaches it depends on the class named, so it is checked here rather than declared."""

    def __init__(self, doing: str):
        self.doing = doing  # "put a programme into it": the end of the refusal

    async def convert(self, ctx: Any, text: str) -> Class:
        klass = await super().convert(ctx, text)
        if not ctx.caller.is_operator and await ctx.repos.classes.role_of(klass.id, ctx.caller.user_id) != ClassRole.TEACHER:
            raise NotAllowed(f"Only a teacher of {klass.name} can {self.doing}.")
        if klass.archived:
            raise NotAllowed(f"{klass.name} is archived: it can be read, not changed.")
        return klass


class ShortId(Converter):
    """A record's short id, a letter and its number (A1, P2, I3): the number."""

    letter = ""
    what = ""  # "an assignment id"
    hint = ""  # said after the examples

    def parse(self, text, env) -> int:
        m = re.fullmatch(rf"[{self.letter}{self.letter.lower()}](\d{{1,6}})", text.strip())
        if not m:
            raise BadArgument(f"“{text}” is not {self.what}; they look like {self.letter}1, {self.letter}2, …{self.hint}")
        return int(m.group(1))


class AssignmentId(ShortId):
    metavar = "assignment"
    letter = "A"
    what = "an assignment id"


class When(Converter):
    """A moment, read in the class's (or caller's) zone. Past moments are refused unless allowed."""

    metavar = "when"
    greedy = True

    def __init__(self, allow_past: bool = False):
        self.allow_past = allow_past

    def parse(self, text, env):
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


class CutoffOrOff(When):
    """A cutoff for late work, or ``off`` (also ``none``) for none."""

    written = "<when>|off"

    def parse(self, text, env):
        return "off" if text.strip().lower() in ("off", "none") else super().parse(text, env)


class Duration(Converter):
    metavar = "duration"

    def parse(self, text, env) -> timedelta:
        d = when.parse_duration(text)
        if d is None:
            raise BadArgument(f"“{text}” is not a duration; try 24h, 90m, 2d or 1h30m.")
        return d


class TimeZone(Converter):
    metavar = "Area/City"

    def parse(self, text, env) -> str:
        try:
            return when.zone(text.strip()).key
        except ValueError as e:
            raise BadArgument(str(e)) from None


class Choice(Converter):
    def __init__(self, *choices: str):
        self.choices = choices
        self.metavar = "|".join(choices)

    def parse(self, text, env) -> str:
        word = text.strip().lower()
        if word not in self.choices:
            raise BadArgument(f"“{text}” is not one of: {', '.join(self.choices)}.")
        return word


class Number(Converter):
    def __init__(self, metavar: str = "number", minimum: float | None = 0, maximum: float | None = None, integer: bool = False):
        self.metavar, self.minimum, self.maximum, self.integer = metavar, minimum, maximum, integer

    def parse(self, text, env):
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


POINTS = Number("points", minimum=1, maximum=10_000)


def number(value: float) -> str:
    """A number as :class:`Number` reads it back: 17.0 → "17", 20.5 → "20.5", 1234567.25 → "1234567.25"."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


class Version(Converter):
    """A version of a learner's work: ``v2`` (or ``2``)."""

    metavar = "vN"
    _RE = re.compile(r"^[Vv]?(\d{1,6})\Z")

    def parse(self, text, env) -> int:
        m = self._RE.match(text.strip())
        if not m or int(m.group(1)) < 1:
            raise BadArgument(f"“{text}” is not a version; write v1, v2, …")
        return int(m.group(1))
