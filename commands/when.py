"""Dates, times and durations as teachers type them, read in a time zone.

ISO (``2026-12-04 17:00``) and the natural forms people use (``friday 5pm``,
``tomorrow 9:00``, ``in 3 days``) are parsed here; anything else falls back to
dateparser. The result is always an aware datetime; :func:`show` echoes it back
as an absolute time with its zone.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_WEEKDAYS = {
    name: i
    for i, names in enumerate(
        [
            ("monday", "mon"),
            ("tuesday", "tue", "tues"),
            ("wednesday", "wed"),
            ("thursday", "thu", "thur", "thurs"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        ]
    )
    for name in names
}
_UNITS = {
    "s": "seconds", "sec": "seconds", "secs": "seconds", "second": "seconds", "seconds": "seconds",
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "wk": "weeks", "week": "weeks", "weeks": "weeks",
}
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2}))?$")
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
_IN = re.compile(r"^in\s+(\d+)\s*([a-z]+)$")
_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)", re.I)

END_OF_DAY = time(23, 59)


def zone(name: str) -> ZoneInfo:
    """The IANA zone by name, or ValueError naming the problem."""
    try:
        if name not in _zone_names():
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"“{name}” is not a time zone; use an Area/City name such as Pacific/Auckland.") from None


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def localize(naive: datetime, tz: ZoneInfo) -> datetime:
    """Attach a zone to a wall-clock time; a time skipped by a DST change moves forward."""
    aware = naive.replace(tzinfo=tz)
    return aware.astimezone(timezone.utc).astimezone(tz)


def parse_time_of_day(text: str) -> time | None:
    m = _TIME.match(text.strip().lower())
    if not m:
        return None
    hour, minute, ampm = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    elif m.group(2) is None:
        return None  # a bare number is not a time
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def parse_when(text: str, now: datetime, tz: ZoneInfo) -> datetime | None:
    """Read ``text`` as a moment in ``tz``; None when it is not a date or time."""
    if len(text) > 100:  # no date is this long; dateparser would take seconds to say so
        return None
    try:
        return _parse_when(text, now, tz)
    except (OverflowError, ValueError):  # "in 99999999999 days", year 9999 in a zone behind UTC
        return None


def _parse_when(text: str, now: datetime, tz: ZoneInfo) -> datetime | None:
    s = " ".join(text.strip().lower().replace(",", " ").split())
    if not s:
        return None
    local_now = now.astimezone(tz)

    m = _ISO.match(s)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        try:
            day = date(y, mo, d)
        except ValueError:
            return None
        t = time(int(m.group(4)), int(m.group(5))) if m.group(4) else END_OF_DAY
        if t.hour > 23:
            return None
        return localize(datetime.combine(day, t), tz)

    m = _IN.match(s)
    if m:
        n, unit = int(m.group(1)), _UNITS.get(m.group(2))
        if unit is None:
            return None
        if unit in ("seconds", "minutes", "hours"):  # elapsed time: exact across DST changes
            return (now + timedelta(**{unit: n})).astimezone(tz)
        return localize(local_now.replace(tzinfo=None) + timedelta(**{unit: n}), tz)

    words = s.split()
    day: date | None = None
    rest = words
    if words[0] in ("today", "tonight"):
        day, rest = local_now.date(), words[1:]
    elif words[0] == "tomorrow":
        day, rest = local_now.date() + timedelta(days=1), words[1:]
    else:
        nxt = words[0] == "next" and len(words) > 1
        wd_word = words[1] if nxt else words[0]
        if wd_word in _WEEKDAYS:
            ahead = (_WEEKDAYS[wd_word] - local_now.weekday()) % 7
            if nxt and ahead == 0:
                ahead = 7
            day, rest = local_now.date() + timedelta(days=ahead), words[2 if nxt else 1 :]
    if day is not None:
        rest = [w for w in rest if w != "at"]
        if not rest:
            t = time(18, 0) if words[0] == "tonight" else END_OF_DAY
        else:
            t = parse_time_of_day(" ".join(rest))
            if t is None:
                return None
        result = localize(datetime.combine(day, t), tz)
        if words[0] not in ("today", "tonight", "tomorrow") and result <= now:
            result = localize(datetime.combine(day + timedelta(days=7), t), tz)
        return result

    t = parse_time_of_day(s)
    if t is not None:  # a time alone: the next time the clock shows it
        result = localize(datetime.combine(local_now.date(), t), tz)
        if result <= now:
            result = localize(datetime.combine(local_now.date() + timedelta(days=1), t), tz)
        return result

    return _dateparser(s, local_now, tz)


def _dateparser(s: str, local_now: datetime, tz: ZoneInfo) -> datetime | None:
    if not re.search(r"[a-z]", s) and not re.search(r"\d", s):
        return None
    import dateparser  # slow to import; loaded on first use

    parsed = dateparser.parse(
        s,
        languages=["en"],
        settings={
            "RELATIVE_BASE": local_now.replace(tzinfo=None),
            "PREFER_DATES_FROM": "future",
            "RETURN_AS_TIMEZONE_AWARE": False,
            "STRICT_PARSING": False,
        },
    )
    if parsed is None:
        return None
    if parsed.time() == time(0, 0) and not re.search(r"\d", s.replace("midnight", "")):
        parsed = datetime.combine(parsed.date(), END_OF_DAY)
    return localize(parsed, tz)


def parse_duration(text: str) -> timedelta | None:
    """``24h``, ``1h30m``, ``90m``, ``2d``, ``1w``, ``30s`` → timedelta; None if not a duration."""
    s = text.strip().lower().replace(" ", "")
    if not s or _DURATION_PART.sub("", s):
        return None
    total = timedelta()
    try:
        for n, unit in _DURATION_PART.findall(s):
            total += timedelta(**{_UNITS[unit.lower()]: int(n)})
    except OverflowError:  # "99999999999w": no duration a classroom means
        return None
    return total if total > timedelta() else None


def show(moment: datetime, tz: ZoneInfo) -> str:
    """An absolute time with its zone: ``Fri 4 Dec 2026, 17:00 NZDT (Pacific/Auckland)``."""
    local = moment.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()} ({tz.key})"


def show_duration(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes = seconds // 60
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} h")
    if minutes and not days:
        parts.append(f"{minutes} min")
    return " ".join(parts) or "less than a minute"
