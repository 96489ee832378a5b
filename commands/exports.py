"""Exports, sent as files to the caller's direct message with the bot (SPEC §3 "Grading and feedback").

`!export grades`: a CSV gradebook. `!export calendar`: an iCalendar file of the class's due dates.
Files go to the DM, never to a class room, because a gradebook is private to the people entitled to it.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Annotated

import icalendar

from storage.models import RoomKind, server_of

from . import when
from .checks import Check
from .context import Context, Role, Where
from .converters import ServerName, number
from .direct import is_dm_of, not_alone, open_dm
from .errors import NotAllowed, NotFound
from .finding import learners_of, teaches
from .registry import registry
from .standing import standings


async def dm_with(ctx: Context) -> tuple[str, bool]:
    """The caller's direct message with the bot (just the two of them), started now if there is none; True when new."""
    if await is_dm_of(ctx.services, ctx.room, ctx.caller.user_id):
        return ctx.room_id, False
    return await open_dm(ctx, ctx.caller.user_id)


async def send_file_to_dm(ctx: Context, text: str, file: tuple[bytes, str, str]) -> None:
    room_id, new = await dm_with(ctx)
    if room_id == ctx.room_id:
        ctx.reply(text, file=file)
        return
    ctx.send(room_id, text, file=file)
    where = "a new direct message with you (accept my invitation to open it)" if new else "our direct message"
    room = ctx.room
    why = not_alone("exports") + " " if room is not None and room.kind == RoomKind.DM and room.owner == ctx.caller.user_id else ""
    ctx.reply(f"{why}I've sent {file[1]} to {where}.")


# What makes a spreadsheet read a cell as a formula (CSV injection; OWASP), the full-width forms too.
_FORMULA_START = frozenset("=+-@\t\r\n|%＝＋－＠")


def _cell(value: object) -> str:
    """One cell of a CSV export, guarded: text a spreadsheet would run as a formula starts with an apostrophe.

    Every cell, user ids included: a guest's server (``allow_guests``) names its users as it likes,
    and `@=HYPERLINK(…)` is a formula to a spreadsheet."""
    text = str(value)
    return "'" + text if text.lstrip(" ")[:1] in _FORMULA_START else text


def csv_file(rows: list[list[object]]) -> bytes:
    """A CSV export: every cell of every row through :func:`_cell`."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue().encode("utf-8")


TEACHER_OR_SCHOOL_ADMIN = Check(
    lambda ctx: teaches(ctx) or bool(ctx.caller.admin_of),
    "Only a teacher of {klass}, or a school admin for their own school's learners, can export its grades.",
    "Teachers of the class; school admins for their own school's learners.",
)


@registry.command(
    "export grades",
    # who=ANYONE and a check: school admins may export their own school's learners of any class,
    # without teaching it, and no Role expresses "teacher of the class or admin of a school".
    who=Role.ANYONE,
    checks=[TEACHER_OR_SCHOOL_ADMIN],
    where=Where.CLASS,
    summary="The class's grades as a CSV file, sent to your direct message with me.",
    details=(
        "Teachers get the whole class, or one school's learners with `!export grades <server>`. "
        "A school admin gets their own school's learners. In a direct message: `!export grades PHYS12`."
    ),
    reads_only=True,
)
async def export_grades(ctx: Context, school: Annotated[str | None, ServerName()] = None) -> None:
    klass, caller = ctx.klass, ctx.caller
    if teaches(ctx):
        servers = {school} if school else None
    else:  # a school admin (the check): their own school's learners
        if school is not None and school not in caller.admin_of:
            raise NotAllowed(
                f"As a school admin you can export your own school's learners ({', '.join(sorted(caller.admin_of))}), "
                f"not those of {school}."
            )
        servers = {school} if school else set(caller.admin_of)
    learners = [u for u in await learners_of(ctx) if servers is None or server_of(u) in servers]
    if not learners:
        whom = f" from {', '.join(sorted(servers))}" if servers else ""
        raise NotFound(f"{klass.name} has no learners{whom} to export.")
    names = {s.server: s.name for s in await ctx.repos.schools.all()}
    found = await ctx.repos.assignments.of_class(klass.id, published_only=True)
    columns = [(a, await standings(ctx.repos, a, learners)) for a in found]

    header = ["learner", "school"]
    for a in found:
        header += [f"{a.short_id} {a.title} score", f"{a.short_id} out of", f"{a.short_id} late"]
    rows = [header]
    for learner in sorted(learners, key=lambda u: (names.get(server_of(u), server_of(u)), u)):
        server = server_of(learner)
        row = [learner, names.get(server, f"guest ({server})")]
        for a, marks in columns:
            s = marks[learner]
            score = number(s.grade.score) if s.grade else ""
            out_of = number(s.grade.max_score) if s.grade else number(a.points)
            late = "" if s.submission is None else ("yes" if s.late_by else "no")
            row += [score, out_of, late]
        rows.append(row)

    suffix = f"-{school}" if school else ""
    filename = f"grades-{klass.code}{suffix}.csv"
    text = (
        f"Grades of {klass.label}: {len(learners)} learner{'s' if len(learners) != 1 else ''}, "
        f"{len(found)} assignment{'s' if len(found) != 1 else ''}, as of {when.show(ctx.now, ctx.tz)}."
    )
    await send_file_to_dm(ctx, text, (csv_file(rows), filename, "text/csv"))


@registry.command(
    "export calendar",
    who=Role.MEMBER,
    where=Where.CLASS,
    summary="The class's due dates as an iCalendar file, sent to your direct message with me.",
    details="Import it into any calendar app. A learner's own extensions are used for their due dates.",
    reads_only=True,
)
async def export_calendar(ctx: Context) -> None:
    klass, tz, user = ctx.klass, ctx.tz, ctx.caller.user_id
    teacher = teaches(ctx)
    found = await ctx.repos.assignments.of_class(klass.id, published_only=not teacher)
    if not found:
        raise NotFound(f"{klass.name} has no assignments yet, so there are no due dates to export.")
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Ako//Classes on Matrix//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"{klass.name} — due dates")
    cal.add("x-wr-timezone", tz.key)
    dues = []
    for a in found:
        extension = None if teacher else await ctx.repos.extensions.get(a.id, user)
        due = a.due_for(extension).astimezone(tz)
        dues.append(due)
        event = icalendar.Event()
        event.add("uid", f"ako-assignment-{a.id}@{klass.server}")
        event.add("dtstamp", ctx.now)
        event.add("dtstart", due)
        event.add("dtend", due)
        event.add("summary", f"{a.short_id} {a.title} due — {klass.name}")
        details = [f"{number(a.points)} points."]
        if extension:
            details.append("Your extension.")
        if a.cutoff_at:
            details.append(f"Late work accepted until {when.show(a.cutoff_for(extension), tz)}.")
        if a.description:
            details.append(a.description)
        event.add("description", "\n".join(details))
        cal.add_component(event)
    # VTIMEZONE for the class's zone, covering the due dates (RFC 5545 §3.6.5)
    cal.add_missing_timezones(first_date=min(dues).date() - timedelta(days=366), last_date=max(dues).date() + timedelta(days=366))
    filename = f"due-dates-{klass.code}.ics"
    text = f"Due dates of {klass.label}, in {tz.key}: {len(found)} assignment{'s' if len(found) != 1 else ''}."
    await send_file_to_dm(ctx, text, (cal.to_ical(), filename, "text/calendar"))
