"""Putting a programme into a class (`!programme use`): its assignments become the class's, due on
real dates counted from the start day on the class's clock; its resources are posted there."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from storage.models import Class, RoomKind
from storage.programmes import Programme, ProgrammeItem

from . import when
from .context import Context, Role
from .converters import TaughtClass, number
from .errors import BadArgument, Conflict, NotFound
from .offsets import parse_offset
from .programme_record import day_text
from .programme_refs import ProgrammeRef, StartDate
from .publishing import DEFAULT_POINTS, publish
from .registry import Keyword, registry

STATE_USE = "nz.ako.programme.use"  # in a class room: which programme and version it uses


@registry.command(
    "programme use",
    who=Role.STAFF,
    summary="Put a programme into a class you teach: its assignments get real due dates from the start date.",
    details=(
        "Example: `!programme use P1 PHYS12 start next monday`. Due times are read on the class's clock "
        "(its time zone), so `week 2 fri 17:00` is 17:00 there even across a daylight-saving change. "
        "Assignments are posted in the class room (or when their `publish` offset comes); resources are "
        "posted there too."
    ),
)
async def programme_use(
    ctx: Context,
    *,
    p: Annotated[Programme, ProgrammeRef()] = None,
    klass: Annotated[Class, TaughtClass("put a programme into it")],
    start_day: Annotated[date, StartDate(), Keyword("start")],
) -> None:
    repos = ctx.repos
    class_room = await repos.rooms.of_class(klass.id, RoomKind.CLASS)
    if class_room is None:
        raise NotFound(f"{klass.name} has no class room to post the programme in.")
    earlier = await repos.programmes.use_in(p.id, klass.id)
    if earlier is not None:
        raise Conflict(f"{p.label} is already in {klass.label} (version {earlier.version}, from {day_text(earlier.start)}).")
    items = await repos.programmes.items(p.id)
    if not items:
        raise Conflict(f"{p.label} has no items yet.")
    tz = ZoneInfo(klass.timezone)

    plan: list[tuple[ProgrammeItem, datetime, datetime | None]] = []
    wrong = []
    for item in items:
        if item.kind != "assignment":
            continue
        due = parse_offset(item.due).moment(start_day, tz)
        posted = parse_offset(item.publish).moment(start_day, tz) if item.publish else None
        if due <= ctx.now or due.astimezone(tz).date() < start_day:
            wrong.append(f"{item.short_id} ({item.due} → {when.show(due, tz)})")
        plan.append((item, due, posted))
    if wrong:
        raise BadArgument(
            f"Starting {day_text(start_day)}, these would be due in the past or before the start: {'; '.join(wrong)}. "
            "Choose a later start."
        )

    made: dict[int, int | None] = {}
    lines = []
    for item, due, posted in plan:
        scheduled = posted if posted is not None and ctx.now < posted < due else None
        a = await repos.assignments.create(
            klass.id, item.title, item.body, item.points or DEFAULT_POINTS, due, None, scheduled,
            ctx.caller.user_id, ctx.now,
        )
        if scheduled is None:
            await publish(ctx, klass, a)
            state = "posted"
        else:
            state = f"to be posted {when.show(scheduled, tz)}"
        made[item.number] = a.id
        lines.append(f"- **{a.label}** ({item.short_id}) · due {when.show(due, tz)} · {number(a.points)} points · {state}")

    resources = [i for i in items if i.kind == "resource"]
    for r in resources:
        made[r.number] = None
        ctx.send(class_room.room_id, f"**Resource — {r.title}** (from {p.label})\n\n{r.body}")
    if resources:
        lines.append(f"- {len(resources)} resource{'s' if len(resources) != 1 else ''} posted in the class room")

    await repos.programmes.record_use(p.id, p.version, klass.id, start_day, klass.timezone, ctx.caller.user_id, ctx.now, made)
    shown = {n: (await repos.assignments.get(a)).short_id for n, a in made.items() if a is not None}
    await ctx.matrix.set_state(
        class_room.room_id, STATE_USE, p.short_id,
        {
            "programme": p.short_id, "title": p.title, "version": p.version, "start": start_day.isoformat(),
            "timezone": klass.timezone, "items": {f"I{n}": shown.get(n) for n in made}, "by": ctx.caller.user_id,
        },
    )
    ctx.services.timetable.changed()  # new due dates: reminders, and posts at their publish offset
    ctx.send(p.room_id, f"{ctx.caller.user_id} put version {p.version} into {klass.label}, starting {day_text(start_day)}.")
    ctx.reply(
        f"Put **{p.label}** (version {p.version}) into {klass.label}, starting {day_text(start_day)} ({klass.timezone}):\n"
        + "\n".join(lines)
    )
