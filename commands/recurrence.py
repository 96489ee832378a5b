"""Things that happen on the wall clock every week: "every monday 9:00", "every day 07:00".

The time is kept as a wall-clock time in a zone, never as a fixed interval, so a reminder set
for 9:00 stays at 9:00 on both sides of a daylight-saving change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from . import when
from .converters import Converter
from .errors import BadArgument

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EVERY_DAY = tuple(range(7))
WEEKDAYS = tuple(range(5))


@dataclass(frozen=True)
class Weekly:
    """On these days (Monday = 0) at this wall-clock time."""

    days: tuple[int, ...]
    at: time

    def next_after(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """The first occurrence strictly after ``moment``; a time skipped by DST moves forward."""
        day = moment.astimezone(tz).date()
        for _ in range(9):
            if day.weekday() in self.days:
                candidate = when.localize(datetime.combine(day, self.at), tz)
                if candidate > moment:
                    return candidate
            day += timedelta(days=1)
        raise ValueError(f"no occurrence of {self} within a week")  # days is never empty

    def last_until(self, start: datetime, end: datetime, tz: ZoneInfo) -> tuple[datetime | None, int]:
        """The latest occurrence in (start, end], and how many there were."""
        latest, count = None, 0
        nxt = self.next_after(start, tz)
        while nxt <= end:
            latest, count = nxt, count + 1
            nxt = self.next_after(nxt, tz)
        return latest, count

    @property
    def clock(self) -> str:
        return f"{self.at:%H:%M}"

    def describe(self) -> str:
        if tuple(self.days) == EVERY_DAY:
            days = "every day"
        elif tuple(self.days) == WEEKDAYS:
            days = "every weekday"
        else:
            days = "every " + ", ".join(DAY_NAMES[d] for d in self.days)
        return f"{days} at {self.clock}"


_DAY_WORDS: dict[str, tuple[int, ...]] = {"day": EVERY_DAY, "daily": EVERY_DAY, "weekday": WEEKDAYS}
for _i, _names in enumerate(
    [("monday", "mon"), ("tuesday", "tue", "tues"), ("wednesday", "wed"), ("thursday", "thu", "thur", "thurs"),
     ("friday", "fri"), ("saturday", "sat"), ("sunday", "sun")]
):
    for _name in _names:
        _DAY_WORDS[_name] = (_i,)


class Days(Converter):
    """``monday`` … ``sunday`` (or several: ``mon,wed,fri``), ``weekday`` or ``day``."""

    metavar = "weekday|day"

    def parse(self, text, env) -> tuple[int, ...]:
        days: set[int] = set()
        for word in re.split(r"[,+/]", text.strip().lower()):
            found = _DAY_WORDS.get(word.removesuffix("s")) or _DAY_WORDS.get(word)
            if not word or found is None:
                raise BadArgument(f"“{text}” is not a day; write a weekday such as monday, or `weekday` or `day`.")
            days.update(found)
        return tuple(sorted(days))


class TimeOfDay(Converter):
    metavar = "time"
    greedy = True  # "5 pm"

    def parse(self, text, env) -> time:
        t = when.parse_time_of_day(text)
        if t is None:
            raise BadArgument(f"“{text}” is not a time of day; try 9:00, 17:30 or 5pm.")
        return t
