"""Assignments: posting, listing, editing, extending and copying them (SPEC §3 "Assignments")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from storage.coursework import Assignment
from storage.models import Class, ClassRole, RoomKind

from . import when
from .confirm import ask_to_confirm, confirmable
from .context import Context, Role, Where
from .converters import POINTS, ClassRef, CutoffOrOff, Markdown, Text, UserId, When, number
from .errors import BadArgument, Conflict, NotAllowed, NotFound
from .finding import AssignmentRef, learner_in_class, learners_of, teaches, work_room_of
from .private_answers import own_dm, reply_privately
from .publishing import DEFAULT_POINTS, STATE_ASSIGNMENT, announcement, publish, write_state
from .registry import Body, Keyword, registry
from .standing import standing, standings, standings_of_learner


@registry.command(
    "assign new",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Set an assignment: posted in the class room with its id (A1, A2, …).",
    details=(
        'Example: `!assign new "Lab report" due friday 5pm points 20 cutoff sunday 23:59`, with the description '
        "as markdown on the following lines. Points default to 100. With `publish <when>` it is posted then, not now."
    ),
)
async def assign_new(
    ctx: Context,
    title: Annotated[str, Text("title", max_len=200)],
    due: Annotated[datetime, When(), Keyword("due")],
    points: Annotated[float | None, POINTS, Keyword("points")] = None,
    cutoff: Annotated[datetime | None, When(), Keyword("cutoff")] = None,
    publish_at: Annotated[datetime | None, When(), Keyword("publish")] = None,
    description: Annotated[str | None, Markdown("description"), Body] = None,
) -> None:
    tz = ctx.tz
    if cutoff is not None and cutoff < due:
        raise BadArgument(f"The cutoff ({when.show(cutoff, tz)}) is before the due time ({when.show(due, tz)}).")
    if publish_at is not None and publish_at >= due:
        raise BadArgument(f"The publish time ({when.show(publish_at, tz)}) must be before the due time ({when.show(due, tz)}).")
    a = await ctx.repos.assignments.create(
        ctx.klass.id, title, description or "", points if points is not None else DEFAULT_POINTS,
        due, cutoff, publish_at, ctx.caller.user_id, ctx.now,
    )
    ctx.services.timetable.changed()  # due times moved: reminders and publishing follow
    if publish_at is not None:
        ctx.reply(
            f"Set **{a.label}** ({number(a.points)} points, due {when.show(due, tz)}). "
            f"I'll post it in the class room on {when.show(publish_at, tz)}."
        )
        return
    await publish(ctx, ctx.klass, a)
    ctx.reply(
        f"Posted **{a.label}** in the class room, due {when.show(due, tz)}. "
        f"Learners hand in with `{ctx.prefix}submit {a.short_id}`."
    )


@registry.command(
    "assignments",
    who=Role.MEMBER,
    where=Where.CLASS,
    summary="The class's assignments: teachers see counts, learners their own status.",
    reads_only=True,
)
async def assignments(ctx: Context) -> None:
    tz, klass = ctx.tz, ctx.klass
    teacher = teaches(ctx)
    found = await ctx.repos.assignments.of_class(klass.id, published_only=not teacher)
    if not found:
        hint = f" Set one with `{ctx.prefix}assign new`." if teacher else ""
        ctx.reply(f"{klass.name} has no assignments yet.{hint}")
        return
    lines = [f"**Assignments of {klass.name}**"]
    if teacher:
        learners = await learners_of(ctx)
        for a in found:
            marks = await standings(ctx.repos, a, learners)
            submitted = sum(1 for s in marks.values() if s.submission)
            graded = sum(1 for s in marks.values() if s.grade)
            state = _state_words(a, tz)
            lines.append(
                f"- **{a.label}** · due {when.show(a.due_at, tz)}{state} — "
                f"{submitted} submitted, {len(learners) - submitted} missing, {graded} graded"
            )
        ctx.reply("\n".join(lines))
        return
    mine_of = await standings_of_learner(ctx.repos, found, ctx.caller.user_id)
    for a in found:
        mine = mine_of[a.id]
        lines.append(f"- **{a.label}** · due {when.show(mine.due, tz)}{_state_words(a, tz)} — {mine.text(tz, ctx.now)}")
    await reply_privately(ctx, "\n".join(lines))


def _state_words(a: Assignment, tz: ZoneInfo) -> str:
    if not a.published:
        return f" · to be posted {when.show(a.publish_at, tz)}" if a.publish_at else " · not posted"
    return " · closed" if a.closed else ""


@registry.command(
    "assign show",
    who=Role.MEMBER,
    where=Where.CLASS,
    summary="Show one assignment: its description, due time and points.",
    reads_only=True,
)
async def assign_show(ctx: Context, a: Annotated[Assignment, AssignmentRef()]) -> None:
    text = announcement(a, ctx.tz, ctx.prefix)
    if not a.published:
        text += f"\nTo be posted {when.show(a.publish_at, ctx.tz)}." if a.publish_at else "\nNot posted yet."
    elif a.closed:
        text += "\nClosed: it takes no more submissions."
    teacher = teaches(ctx)
    if teacher:
        learners = await learners_of(ctx)
        marks = await standings(ctx.repos, a, learners)
        submitted = sum(1 for s in marks.values() if s.submission)
        text += f"\n{submitted} of {len(learners)} learners have handed it in; `{ctx.prefix}submissions {a.short_id}` lists them."
        ctx.reply(text)
        return
    room = ctx.room
    if room is not None and ((room.kind == RoomKind.WORK and room.owner == ctx.caller.user_id) or await own_dm(ctx)):
        text += f"\nYou: {(await standing(ctx.repos, a, ctx.caller.user_id)).text(ctx.tz, ctx.now)}"
    ctx.reply(text)


def _edits(field: str, *, summary: str, details: str):
    """Declare `!assign edit A1 <field> <value>` (SPEC §3): for teachers, in any room of the class,
    one field per command, the field's word after the assignment."""
    return registry.command(
        f"assign edit {field}", who=Role.TEACHER, where=Where.CLASS, word_after_first=True, summary=summary, details=details
    )


@_edits(
    "due",
    summary="Move an assignment's due time.",
    details=(
        "Example: `!assign edit A1 due monday 9am`. It cannot be after the cutoff (move the cutoff first) "
        "nor, for an assignment not posted yet, before it is posted."
    ),
)
async def assign_edit_due(ctx: Context, a: Annotated[Assignment, AssignmentRef()], due: Annotated[datetime, When()]) -> None:
    tz = ctx.tz
    if not a.published and a.publish_at is not None and due <= a.publish_at:
        raise BadArgument(f"{when.show(due, tz)} is before {a.short_id} is posted ({when.show(a.publish_at, tz)}).")
    if a.cutoff_at is not None and due > a.cutoff_at:
        raise BadArgument(
            f"{when.show(due, tz)} is after {a.short_id}'s cutoff ({when.show(a.cutoff_at, tz)}); move the cutoff first."
        )
    await _edited(ctx, a, f"is now due {when.show(due, tz)}", due_at=due)


@_edits(
    "cutoff",
    summary="Set when an assignment stops taking late work, or `off` for no cutoff.",
    details="Examples: `!assign edit A1 cutoff sunday 23:59`, `!assign edit A1 cutoff off`. It cannot be before the due time.",
)
async def assign_edit_cutoff(
    ctx: Context, a: Annotated[Assignment, AssignmentRef()], cutoff: Annotated[datetime | Literal["off"], CutoffOrOff()]
) -> None:
    tz = ctx.tz
    if cutoff == "off":
        await _edited(ctx, a, "now takes late work without a cutoff", cutoff_at=None)
        return
    if cutoff < a.due_at:
        raise BadArgument(f"The cutoff ({when.show(cutoff, tz)}) is before the due time ({when.show(a.due_at, tz)}).")
    await _edited(ctx, a, f"takes late work until {when.show(cutoff, tz)}", cutoff_at=cutoff)


@_edits(
    "points",
    summary="Change what an assignment is out of.",
    details="Example: `!assign edit A1 points 25`.",
)
async def assign_edit_points(ctx: Context, a: Annotated[Assignment, AssignmentRef()], points: Annotated[float, POINTS]) -> None:
    await _edited(ctx, a, f"is now out of {number(points)} points", points=points)


@_edits(
    "title",
    summary="Rename an assignment.",
    details='Example: `!assign edit A1 title "Pendulum lab"`; the title is the rest of the line, quotes or not.',
)
async def assign_edit_title(
    ctx: Context, a: Annotated[Assignment, AssignmentRef()], title: Annotated[str, Text("title", max_len=200, greedy=True)]
) -> None:
    await _edited(ctx, a, f"is now called “{title}”", title=title)


async def _edited(ctx: Context, a: Assignment, change: str, **fields) -> None:
    """Record one change to an assignment: its state event is rewritten, the class room told when
    the change was made elsewhere, and reminders and publishing follow its times."""
    a = await ctx.repos.assignments.update(a.id, **fields)
    if a.published:
        await write_state(ctx, ctx.klass, a)
        room = await ctx.repos.rooms.of_class(ctx.klass.id, RoomKind.CLASS)
        if room is not None and room.room_id != ctx.room_id:
            ctx.send(room.room_id, f"**{a.short_id}** {change}.")
    ctx.services.timetable.changed()  # due times moved: reminders and publishing follow
    ctx.reply(f"**{a.label}** {change}.")


@registry.command(
    "assign close",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Close an assignment: it takes no more submissions.",
)
async def assign_close(ctx: Context, a: Annotated[Assignment, AssignmentRef()]) -> None:
    if a.closed:
        raise Conflict(f"{a.short_id} is already closed.")
    await ctx.repos.assignments.close(a.id, ctx.now)
    a = await ctx.repos.assignments.get(a.id)
    await write_state(ctx, ctx.klass, a)
    ctx.services.timetable.changed()  # due times moved: reminders and publishing follow
    ctx.reply(f"**{a.label}** is closed: it takes no more submissions. Grading goes on as before.")


@registry.command(
    "assign delete",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Delete an assignment; asks you to confirm when work has been handed in.",
)
async def assign_delete(ctx: Context, a: Annotated[Assignment, AssignmentRef()]) -> None:
    versions, learners = await ctx.repos.submissions.count(a.id)
    if versions:
        work = f"{learners} learner{'s' if learners != 1 else ''} ({versions} version{'s' if versions != 1 else ''})"
        await ask_to_confirm(
            ctx, "assign delete", {"assignment_id": a.id},
            f"**{a.label}** has work handed in by {work}. Deleting it hides that work and its grades from every list.",
        )
        return
    await _delete(ctx, a)


@confirmable("assign delete")
async def _confirmed_delete(ctx: Context, payload: dict) -> None:
    a = await ctx.repos.assignments.get(payload["assignment_id"])
    if a is None or a.deleted_at is not None:
        raise NotFound("That assignment is already gone.")
    klass = await ctx.repos.classes.get(a.class_id)
    role = await ctx.repos.classes.role_of(klass.id, ctx.caller.user_id)
    if role != ClassRole.TEACHER and not ctx.caller.is_operator:
        raise NotAllowed(f"Only a teacher of {klass.name} can delete its assignments.")
    ctx.klass = klass
    await _delete(ctx, a)


async def _delete(ctx: Context, a: Assignment) -> None:
    await ctx.repos.assignments.delete(a.id, ctx.now)
    room = await ctx.repos.rooms.of_class(a.class_id, RoomKind.CLASS)
    if a.published and room is not None:
        await ctx.matrix.set_state(room.room_id, STATE_ASSIGNMENT, a.short_id, {})  # empty content: removed
        if room.room_id != ctx.room_id:
            ctx.send(room.room_id, f"**{a.label}** has been withdrawn by your teacher.")
    ctx.services.timetable.changed()  # due times moved: reminders and publishing follow
    ctx.reply(f"Deleted **{a.label}**.")


@registry.command(
    "extend",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Give one learner a later due time for an assignment.",
    details="Example: `!extend A1 @ben:school-b.example monday 9am`. It also moves their cutoff if needed.",
)
async def extend(
    ctx: Context,
    a: Annotated[Assignment, AssignmentRef()],
    learner: Annotated[str, UserId()],
    due: Annotated[datetime, When()],
) -> None:
    await learner_in_class(ctx, learner)
    tz = ctx.tz
    if due <= a.due_at:
        raise BadArgument(f"An extension must be later than {a.short_id}'s due time ({when.show(a.due_at, tz)}).")
    await ctx.repos.extensions.grant(a.id, learner, due, ctx.caller.user_id, ctx.now)
    ctx.services.timetable.changed()  # due times moved: reminders and publishing follow
    told = f"You have an extension on **{a.label}**: it is now due for you {when.show(due, tz)}."
    work_room = await work_room_of(ctx, learner)
    if ctx.room_id == work_room:
        ctx.reply(told, mentions=(learner,))
        return
    ctx.send(work_room, told, mentions=(learner,))
    ctx.reply(f"{learner} now has until {when.show(due, tz)} for {a.short_id}; I've told them in their work room.")


@registry.command(
    "assign copy",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Copy an assignment into another class you teach, at any school.",
    details="Example: `!assign copy A1 CHEM12`. It gets the next id in that class and is posted there.",
)
async def assign_copy(
    ctx: Context,
    a: Annotated[Assignment, AssignmentRef()],
    other: Annotated[Class, ClassRef()],
) -> None:
    if other.id == ctx.klass.id:
        raise Conflict(f"{a.short_id} is already in {other.name}; give the code of another class.")
    if await ctx.repos.classes.role_of(other.id, ctx.caller.user_id) != ClassRole.TEACHER and not ctx.caller.is_operator:
        raise NotAllowed(f"Only a teacher of both {ctx.klass.name} and {other.name} can copy assignments between them.")
    if other.archived:
        raise NotAllowed(f"{other.name} is archived: it can be read, not changed.")
    scheduled = a.publish_at if a.publish_at and a.publish_at > ctx.now else None
    copy = await ctx.repos.assignments.create(
        other.id, a.title, a.description, a.points, a.due_at, a.cutoff_at, scheduled, ctx.caller.user_id, ctx.now,
        copied_from=a.id,
    )
    tz = ZoneInfo(other.timezone)
    if scheduled:
        where = f"it will be posted there {when.show(scheduled, tz)}"
    else:
        await publish(ctx, other, copy)
        where = "posted in its class room"
    note = ""
    if a.due_at <= ctx.now:
        note = f" Its due time has passed; set a new one there with `{ctx.prefix}assign edit {copy.short_id} due <when>`."
    ctx.services.timetable.changed()  # due times moved: reminders and publishing follow
    ctx.reply(f"Copied {a.short_id} into {other.label} as **{copy.short_id}**, due {when.show(copy.due_at, tz)}; {where}.{note}")
