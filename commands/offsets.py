"""Due times inside a programme of learning, as offsets from the day it starts.

A programme has no dates of its own: each class that uses it gives a start date, and every item's
due time is found from that. Teachers write offsets the way they plan:

- ``week 2 fri 17:00`` — the Friday of the programme's second week, at 17:00. Weeks run Monday to
  Sunday; week 1 is the week the start date falls in (start on a Monday for the usual case).
- ``day 3 09:00`` — the third day counting the start date as day 1.

The time may be ``17:00``, ``5pm`` or ``9:30am``, with or without ``at``; without one it is 23:59,
as for dates elsewhere. The moment is a wall-clock time in the class's zone, so "17:00" stays
17:00 across a daylight-saving change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from . import when

MAX_WEEK = 60
MAX_DAY = 7 * MAX_WEEK
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_OFFSET = re.compile(
    r"^(?:(?:week|wk|w)\s*(?P<week>\d{1,3})\s+(?P<weekday>[a-z]+)|(?:day|d)\s*(?P<day>\d{1,3}))"
    r"(?:\s+(?:at\s+)?(?P<time>.+))?$"
)


@dataclass(frozen=True)
class Offset:
    """``week`` + ``weekday`` (Monday = 0), or ``day``; and the time of day."""

    at: time
    week: int | None = None
    weekday: int | None = None
    day: int | None = None

    def text(self) -> str:
        """The canonical spelling, which :func:`parse_offset` reads back to the same offset."""
        clock = f"{self.at:%H:%M}"
        if self.day is not None:
            return f"day {self.day} {clock}"
        return f"week {self.week} {_DAY_NAMES[self.weekday]} {clock}"

    def date_from(self, start: date) -> date:
        if self.day is not None:
            return start + timedelta(days=self.day - 1)
        monday = start - timedelta(days=start.weekday())
        return monday + timedelta(weeks=self.week - 1, days=self.weekday)

    def moment(self, start: date, tz: ZoneInfo) -> datetime:
        """The due time for a class starting on ``start``, on the wall clock of ``tz``."""
        return when.localize(datetime.combine(self.date_from(start), self.at), tz)

    def sort_key(self) -> tuple[int, time]:
        """Order offsets as they fall for a programme started on a Monday."""
        return (self.date_from(date(2024, 1, 1)) - date(2024, 1, 1)).days, self.at


def parse_offset(text: str) -> Offset | None:
    """``week 2 fri 17:00`` or ``day 3 09:00`` → an :class:`Offset`; None when it is neither."""
    s = " ".join(text.strip().lower().replace(",", " ").split())
    m = _OFFSET.match(s)
    if m is None:
        return None
    at = when.END_OF_DAY
    if m.group("time"):
        at = when.parse_time_of_day(m.group("time"))
        if at is None:
            return None
    if m.group("week"):
        week, day_word = int(m.group("week")), m.group("weekday")
        if not 1 <= week <= MAX_WEEK or day_word not in when._WEEKDAYS:
            return None
        return Offset(at=at, week=week, weekday=when._WEEKDAYS[day_word])
    day = int(m.group("day"))
    return Offset(at=at, day=day) if 1 <= day <= MAX_DAY else None


def offset_of(due: datetime, reference: datetime, tz: ZoneInfo) -> Offset:
    """The offset that puts ``due`` where it fell, counting weeks from the week of ``reference``.

    Used to bring an assignment of a class into a programme: set on a Monday, due the next
    Friday at 17:00 → ``week 2 fri 17:00``.
    """
    local_due, local_ref = due.astimezone(tz), reference.astimezone(tz)
    monday = local_ref.date() - timedelta(days=local_ref.weekday())
    week = max(1, (local_due.date() - monday).days // 7 + 1)
    return Offset(at=time(local_due.hour, local_due.minute), week=min(week, MAX_WEEK), weekday=local_due.weekday())
