"""Reminders people set: ``!remind`` for a class, ``!remindme`` for oneself (SPEC §3 "Reminders").

A command records the reminder and tells the scheduler that the timetable changed; sending is
the scheduler's job (:mod:`commands.timetable`), once, with the downtime policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from storage.reminders import Reminder

from . import when
from .context import Context, Role, Where
from .converters import Converter, Markdown, When
from .direct import dm_for, is_dm_of, not_alone
from .errors import BadArgument, Conflict, NotAllowed, NotFound, id_ranges
from .forum import class_room_of
from .recurrence import Days, TimeOfDay, Weekly
from .registry import Param, registry
from .timetable import rule_of
from .zones import is_private, zone_of

MAX_PENDING_PER_PERSON = 50
TEXT = Markdown("text", max_len=2000)

_REMINDER_ID = re.compile(r"^[Rr]?(\d{1,9})$")


class ReminderId(Converter):
    metavar = "reminder"

    def convert(self, text, env) -> int:
        m = _REMINDER_ID.match(text.strip())
        if not m:
            raise BadArgument(f"“{text}” is not a reminder id; they look like R1, R2, …")
        return int(m.group(1))


@dataclass(frozen=True)
class MomentText:
    """A date or time as typed, read later in the zone of the person it is for."""

    text: str

    def read(self, now: datetime, tz: ZoneInfo) -> datetime:
        moment = when.parse_when(self.text, now, tz)
        if moment is None:  # the same words parsed in another zone; only a bug could bring us here
            raise BadArgument(f"“{self.text}” is not a date or time I understand.")
        if moment <= now:
            raise BadArgument(f"{when.show(moment, tz)} is in the past.")
        return moment


class PersonalWhen(When):
    """A moment for one person: checked here, read in their own zone by the handler."""

    def __init__(self):
        super().__init__(allow_past=True)

    def convert(self, text, env) -> MomentText:
        super().convert(text, env)
        return MomentText(text)


def describe(r: Reminder, tz: ZoneInfo) -> str:
    rule = rule_of(r)
    timing = f"{rule.describe()} ({tz.key}), next {when.show(r.next_at, tz)}" if rule else when.show(r.next_at, tz)
    text = r.text if len(r.text) <= 120 else r.text[:117] + "…"
    return f"- **{r.short_id}** · {timing} — {text}"


@registry.command(
    "remind",
    Param("moment", When()),
    Param("text", TEXT, rest=True),
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Remind the class: a notice in the class room at the time you give.",
    details="Example: `!remind friday 8:30 Bring your lab books.` Times are read in the class's zone.",
)
async def remind(ctx: Context, moment: datetime, text: str) -> None:
    room_id = await class_room_of(ctx)
    r = await ctx.repos.reminders.add(
        class_id=ctx.klass.id, created_by=ctx.caller.user_id, room_id=room_id, text=text, next_at=moment,
        timezone=ctx.klass.timezone, at=ctx.now,
    )
    ctx.services.timetable.changed()
    ctx.reply(
        f"I'll remind the class in its class room {when.show(moment, ctx.tz)} (**{r.short_id}**). "
        f"`{ctx.prefix}remind cancel {r.short_id}` cancels it."
    )


@registry.command(
    "remind every",
    Param("days", Days()),
    Param("at", TimeOfDay()),
    Param("text", TEXT, rest=True),
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Remind the class every week (or every day) at the same time on the class's clock.",
    details=(
        "Examples: `!remind every monday 9:00 Lab books out.`, `!remind every weekday 8:45 Roll call.`, "
        "`!remind every day 17:00 …`. Daylight saving does not move it."
    ),
)
async def remind_every(ctx: Context, days: tuple[int, ...], at: time, text: str) -> None:
    room_id = await class_room_of(ctx)
    rule = Weekly(days, at)
    first = rule.next_after(ctx.now, ctx.tz)
    r = await ctx.repos.reminders.add(
        class_id=ctx.klass.id, created_by=ctx.caller.user_id, room_id=room_id, text=text, next_at=first,
        timezone=ctx.klass.timezone, at=ctx.now, weekdays=days, local_time=rule.clock,
    )
    ctx.services.timetable.changed()
    ctx.reply(
        f"I'll remind the class {rule.describe()} ({ctx.klass.timezone}), starting {when.show(first, ctx.tz)} "
        f"(**{r.short_id}**). `{ctx.prefix}remind cancel {r.short_id}` stops it."
    )


@registry.command(
    "remindme",
    Param("moment", PersonalWhen()),
    Param("text", TEXT, rest=True),
    who=Role.ANYONE,
    summary="Remind yourself, privately, in our direct message.",
    details="Example: `!remindme tomorrow 8am mark the essays`. Times are read in your own zone (`!tz`).",
    reads_only=True,
)
async def remindme(ctx: Context, moment: MomentText, text: str) -> None:
    user = ctx.caller.user_id
    dm = ctx.room if await is_dm_of(ctx.services, ctx.room, user) else await dm_for(ctx.services, user)
    if dm is None:
        why = not_alone("your reminders") + " " if ctx.in_dm and ctx.room.owner == user else ""
        raise NotFound(
            f"{why}I remind you in our direct message, and we have none yet: start one with me "
            f"({ctx.settings.bot_user_id}) and ask there."
        )
    if len(await ctx.repos.reminders.pending_personal(user)) >= MAX_PENDING_PER_PERSON:
        raise Conflict(f"You have {MAX_PENDING_PER_PERSON} reminders waiting; cancel some first (`{ctx.prefix}reminders`).")
    tz = await zone_of(ctx.repos, user, ctx.tz)
    at = moment.read(ctx.now, tz)
    r = await ctx.repos.reminders.add(
        class_id=None, created_by=user, room_id=dm.room_id, text=text, next_at=at, timezone=tz.key, at=ctx.now
    )
    ctx.services.timetable.changed()
    where = "here" if dm.room_id == ctx.room_id else "in our direct message"
    ctx.reply(f"I'll remind you {where} {when.show(at, tz)} (**{r.short_id}**).")


@registry.command(
    "reminders",
    who=Role.ANYONE,
    summary="The reminders waiting: the class's here, and your own in our direct message.",
    reads_only=True,
)
async def reminders(ctx: Context) -> None:
    user = ctx.caller.user_id
    lines: list[str] = []
    classes = [ctx.klass] if ctx.klass else [k for k, role in await ctx.repos.classes.of_user(user) if role == "teacher"]
    for klass in classes:
        pending = await ctx.repos.reminders.pending_of_class(klass.id)
        tz = ZoneInfo(klass.timezone)
        if pending:
            lines.append(f"**Reminders for {klass.name}**")
            lines += [describe(r, tz) for r in pending]
    mine = await ctx.repos.reminders.pending_personal(user)
    if mine and is_private(ctx):
        tz = await zone_of(ctx.repos, user, ctx.tz)
        lines.append("**Your own reminders**")
        lines += [describe(r, tz) for r in mine]
    elif mine:
        lines.append(f"You have {len(mine)} reminder{'s' if len(mine) != 1 else ''} of your own; I list them in our direct message.")
    if ctx.klass:
        offsets = " and ".join(when.show_duration(o) for o in sorted(ctx.settings.reminder_offsets, reverse=True))
        if offsets:
            lines.append(
                f"_Automatic: {offsets} before each due time, in the class room and to each learner who hasn't handed in._"
            )
    if not lines:
        lines.append(f"No reminders are waiting. Set one with `{ctx.prefix}remindme <when> <text>`.")
    ctx.reply("\n".join(lines))


@registry.command(
    "remind cancel",
    Param("reminder", ReminderId()),
    who=Role.ANYONE,
    summary="Cancel a reminder: your own, or one of a class you teach.",
    reads_only=True,
)
async def remind_cancel(ctx: Context, reminder: int) -> None:
    user = ctx.caller.user_id
    r = await ctx.repos.reminders.get(reminder)
    if r is None or (r.personal and r.created_by != user):
        yours = [r.id for r in await ctx.repos.reminders.pending_personal(user)]
        for klass, role in await ctx.repos.classes.of_user(user):
            if role == "teacher":
                yours += [r.id for r in await ctx.repos.reminders.pending_of_class(klass.id)]
        exist = f"yours are {id_ranges('R', yours)}" if yours else "you have none waiting"
        raise NotFound(f"There is no reminder R{reminder} of yours; {exist}. `{ctx.prefix}reminders` lists them.")
    if not r.personal:
        klass = await ctx.repos.classes.get(r.class_id)
        role = await ctx.repos.classes.role_of(r.class_id, user)
        if role != "teacher" and not ctx.caller.is_operator:
            raise NotAllowed(f"Only a teacher of {klass.name if klass else 'the class'} can cancel its reminders.")
    if r.next_at is None:
        raise Conflict(f"{r.short_id} has already been sent or cancelled.")
    await ctx.repos.reminders.cancel(r.id, user, ctx.now)
    ctx.services.timetable.changed()
    ctx.reply(f"Cancelled **{r.short_id}**.")

