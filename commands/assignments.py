"""Assignments: posting, listing, editing, extending and copying them (SPEC §3 "Assignments").

Also the pieces the other coursework modules share: finding an assignment for the caller, a
learner's standing on it, where private answers may be shown, and ``!confirm``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Awaitable, Callable, Literal
from zoneinfo import ZoneInfo

from storage.coursework import Assignment, Extension, Grade, Return, Submission
from storage.models import Class, ClassRole, RoomKind, to_text
from storage.repositories import Repositories

from . import when
from .context import Context, GatewayError, Message, OnServices, Role, ScheduledPoster, Services, Where
from .converters import AssignmentId, ClassRef, CutoffOrOff, Markdown, Number, Text, UserId, When
from .direct import is_dm_of, not_alone
from .errors import BadArgument, Conflict, NotAllowed, NotFound, id_ranges
from .registry import Body, Keyword, registry

log = logging.getLogger("ako.assignments")

# Ako's record of an assignment, written into the class room: state key = the short id (A1).
STATE_ASSIGNMENT = "nz.ako.assignment"
DEFAULT_POINTS = 100.0
CONFIRM_WITHIN = timedelta(minutes=10)
STATE_DESCRIPTION_BYTES = 40_000

POINTS = Number("points", minimum=1, maximum=10_000)


def number(value: float) -> str:
    """17.0 → "17", 20.5 → "20.5", 1234567.25 → "1234567.25"."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


# --- finding an assignment


def teaches(ctx: Context) -> bool:
    """A teacher of the context's class (operators count as one)."""
    return ctx.caller.is_operator or ctx.caller.class_role == ClassRole.TEACHER


async def find(ctx: Context, short_id: str) -> Assignment:
    """The class's assignment by its short id; learners never see one that is not posted yet."""
    found = await ctx.repos.assignments.by_number(ctx.klass.id, int(short_id[1:]))
    teacher = teaches(ctx)
    if found is None or (not found.published and not teacher):
        raise NotFound(f"{ctx.klass.name} has no assignment {short_id}; {await _which_exist(ctx, teacher)}")
    return found


class AssignmentRef(AssignmentId):
    """An assignment of the context's class, by its short id: the record, found for the caller."""

    async def convert(self, ctx: Context, text: str) -> Assignment:
        return await find(ctx, self.parse(text, ctx))


async def _which_exist(ctx: Context, teacher: bool) -> str:
    numbers = [a.number for a in await ctx.repos.assignments.of_class(ctx.klass.id, published_only=not teacher)]
    if not numbers:
        return "it has no assignments yet." + (f" Set one with `{ctx.prefix}assign new`." if teacher else "")
    return f"its assignments are {id_ranges('A', numbers)}. `{ctx.prefix}assignments` lists them."


async def learner_in_class(ctx: Context, user: str) -> str:
    if await ctx.repos.classes.role_of(ctx.klass.id, user) != ClassRole.LEARNER:
        raise NotFound(f"{user} is not a learner in {ctx.klass.name}.")
    return user


async def work_room_of(ctx: Context, learner: str) -> str:
    room = await ctx.repos.rooms.work_room(ctx.klass.id, learner)
    if room is not None:
        return room.room_id
    from .provision import work_room_for  # a learner added before work rooms existed gets one now

    return await work_room_for(ctx, ctx.klass, learner)


# --- where answers about one learner's work may be shown (SPEC §4 "Privacy")


async def own_dm(ctx: Context) -> bool:
    """The caller's own direct message with the bot, with nobody else in it now (commands/direct.py).
    Someone else's "direct message" is a room its owner invited the bot to, and may share with
    anyone: no one else's private answers go there."""
    return await is_dm_of(ctx.services, ctx.room, ctx.caller.user_id)


def _shared_dm(ctx: Context) -> bool:
    """Asked in a room recorded as the caller's DM that has other people in it (own_dm said no)."""
    room = ctx.room
    return room is not None and room.kind == RoomKind.DM and room.owner == ctx.caller.user_id


async def reply_privately(ctx: Context, text: str) -> None:
    """A learner's own work or grades: shown in their work room or our DM, else sent to their work room."""
    room = ctx.room
    if room is not None and ((room.kind == RoomKind.WORK and room.owner == ctx.caller.user_id) or await own_dm(ctx)):
        ctx.reply(text)
        return
    ctx.send(await work_room_of(ctx, ctx.caller.user_id), text)
    why = not_alone("your work and grades") + " " if _shared_dm(ctx) else ""
    ctx.reply(f"{why}I've put the answer in your work room, where only you and your teachers can see it.")


async def reply_to_teachers(ctx: Context, text: str) -> None:
    """Views of every learner's work: shown in the staff room or a DM, else sent to the staff room."""
    room = ctx.room
    if room is not None and (room.kind == RoomKind.STAFF or await own_dm(ctx)):
        ctx.reply(text)
        return
    why = not_alone("grades") + " " if _shared_dm(ctx) else ""
    staff = await ctx.repos.rooms.of_class(ctx.klass.id, RoomKind.STAFF)
    if staff is None:
        raise NotAllowed(
            f"{why}That list shows learners' work, so I only give it in the staff room or a direct message with me: "
            f"try `{ctx.prefix}{ctx.command_name} {ctx.klass.code} …` there."
        )
    ctx.send(staff.room_id, text)
    ctx.reply(f"{why}I've put it in the staff room of {ctx.klass.name}, where learners can't see it.")


# --- a learner's standing on one assignment


@dataclass(frozen=True)
class Standing:
    assignment: Assignment
    learner: str
    submission: Submission | None
    extension: Extension | None
    grade: Grade | None
    returned: Return | None  # only when newer than the current submission

    @property
    def due(self) -> datetime:
        return self.assignment.due_for(self.extension)

    @property
    def late_by(self) -> timedelta | None:
        """Against today's due time and extension, so an extension granted later excuses lateness."""
        if self.submission is None:
            return None
        return self.assignment.late_by(self.submission.received_at, self.extension)

    def text(self, tz: ZoneInfo, now: datetime, *, with_extension: bool = True) -> str:
        parts = []
        if self.submission is None:
            parts.append("missing" if now > self.due else "not submitted yet")
        else:
            late = self.late_by
            timing = f"late by {when.show_duration(late)}" if late else "on time"
            parts.append(f"submitted v{self.submission.version}, {timing}")
        if self.grade is not None:
            graded = f"graded {number(self.grade.score)}/{number(self.grade.max_score)}"
            if self.submission is not None and self.grade.version not in (None, self.submission.version):
                graded += f" (v{self.grade.version})"
            parts.append(graded)
        if self.returned is not None:
            parts.append("returned for more work")
        if self.extension is not None and with_extension:
            parts.append(f"extension to {when.show(self.extension.due_at, tz)}")
        return " · ".join(parts)


def _returned_since(ret: Return | None, sub: Submission | None) -> Return | None:
    """The return, unless a newer version has been handed in since."""
    if ret is None or (sub is not None and sub.version > (ret.version or 0)):
        return None
    return ret


async def standing(repos: Repositories, a: Assignment, learner: str) -> Standing:
    sub = await repos.submissions.latest(a.id, learner)
    return Standing(
        a, learner, sub, await repos.extensions.get(a.id, learner), await repos.grades.latest(a.id, learner),
        _returned_since(await repos.returns.latest(a.id, learner), sub),
    )


async def standings(repos: Repositories, a: Assignment, learners: list[str]) -> dict[str, Standing]:
    subs = await repos.submissions.latest_of_assignment(a.id)
    exts = await repos.extensions.of_assignment(a.id)
    grades = await repos.grades.latest_of_assignment(a.id)
    rets = await repos.returns.latest_of_assignment(a.id)
    return {
        who: Standing(a, who, subs.get(who), exts.get(who), grades.get(who), _returned_since(rets.get(who), subs.get(who)))
        for who in learners
    }


async def learners_of(ctx: Context) -> list[str]:
    return [m.user_id for m in await ctx.repos.classes.members(ctx.klass.id, ClassRole.LEARNER)]


async def by_school(ctx: Context, users: list[str]) -> list[tuple[str, list[str]]]:
    """(heading, users) per school, registered schools first, as !roster groups them."""
    names = {s.server: s.name for s in await ctx.repos.schools.all()}
    groups: dict[str, list[str]] = {}
    for user in users:
        groups.setdefault(user.split(":", 1)[-1], []).append(user)
    ordered = sorted(groups, key=lambda s: (s not in names, names.get(s, s)))
    return [
        (f"{names[s]} ({s})" if s in names else f"Guests from {s}", sorted(groups[s])) for s in ordered
    ]


# --- posting


def due_text(a: Assignment, tz: ZoneInfo) -> str:
    text = f"Due **{when.show(a.due_at, tz)}**"
    if a.cutoff_at is not None:
        text += f" · late work accepted until {when.show(a.cutoff_at, tz)}"
    return text


def announcement(a: Assignment, tz: ZoneInfo, prefix: str) -> str:
    lines = [f"**{a.label}** · {number(a.points)} points", due_text(a, tz)]
    if a.description:
        lines += ["", a.description, ""]
    lines.append(
        f"Hand it in from your work room: `{prefix}submit {a.short_id} …`, alone or as a reply to your message or file."
    )
    return "\n".join(lines)


def state_content(a: Assignment, klass: Class) -> dict:
    """The assignment as a state event, so every school's server holds the class's coursework.

    A description long enough to push the event past Matrix's 64 KiB limit is cut short there
    (the database and the class-room post keep all of it).
    """
    description = a.description
    if len(description.encode()) > STATE_DESCRIPTION_BYTES:
        description = description.encode()[:STATE_DESCRIPTION_BYTES].decode(errors="ignore") + "…"
    return {
        "id": a.short_id,
        "class": klass.code,
        "title": a.title,
        "description": description,
        "description_cut": description != a.description,
        "points": a.points,
        "due": to_text(a.due_at),
        "cutoff": to_text(a.cutoff_at) if a.cutoff_at else None,
        "timezone": klass.timezone,
        "closed": a.closed,
        "published": to_text(a.published_at) if a.published_at else None,
    }


async def write_state(poster: OnServices, klass: Class, a: Assignment) -> None:
    """Keep the class room's record of a posted assignment up to date."""
    room = await poster.repos.rooms.of_class(klass.id, RoomKind.CLASS)
    if room is not None and a.published:
        await poster.rooms.set_state(room.room_id, STATE_ASSIGNMENT, a.short_id, state_content(a, klass))


async def publish(poster: OnServices, klass: Class, a: Assignment) -> Assignment:
    """Write the assignment's state event and post it in the class room; marks it published.

    The state event goes first: when the server refuses it, nothing is recorded or queued.
    """
    room = await poster.repos.rooms.of_class(klass.id, RoomKind.CLASS)
    if room is None:
        raise NotFound(f"{klass.name} has no class room to post {a.short_id} in.")
    posted = replace(a, published_at=poster.now)
    await poster.rooms.set_state(room.room_id, STATE_ASSIGNMENT, a.short_id, state_content(posted, klass))
    await poster.repos.assignments.mark_published(a.id, poster.now)
    poster.send(room.room_id, announcement(posted, ZoneInfo(klass.timezone), poster.prefix))
    return posted


async def publish_due(services: Services) -> list[Message]:
    """For the scheduler: post every assignment whose publish time has come.

    Call it inside one ``db.transaction()`` and enqueue the returned messages in the same
    transaction, as the dispatcher does for a command: an assignment is then posted once.
    """
    poster = ScheduledPoster(services)
    for a in await services.repos.assignments.due_for_publishing(poster.now):
        klass = await services.repos.classes.get(a.class_id)
        if klass is None or klass.archived:
            continue
        try:
            await publish(poster, klass, a)
        except (GatewayError, NotFound) as e:  # left unpublished: the next run tries again
            log.warning("Could not post %s of class %s yet: %s", a.short_id, a.class_id, e)
    return poster.outgoing


# --- !confirm: an action that waits for the same user to confirm it in the same room

Confirmable = Callable[[Context, dict], Awaitable[None]]
_confirmables: dict[str, Confirmable] = {}


def confirmable(action: str) -> Callable[[Confirmable], Confirmable]:
    """Name an action that :func:`ask_to_confirm` may hold until ``!confirm``."""

    def register(fn: Confirmable) -> Confirmable:
        _confirmables[action] = fn
        return fn

    return register


async def ask_to_confirm(ctx: Context, action: str, payload: dict, question: str) -> None:
    if action not in _confirmables:
        raise ValueError(f"No confirmable action {action!r}")
    await ctx.repos.confirmations.forget_expired(ctx.now)  # questions nobody answered in time are cleared
    await ctx.repos.confirmations.put(
        ctx.caller.user_id, ctx.room_id, action, payload, question, ctx.now, ctx.now + CONFIRM_WITHIN
    )
    minutes = int(CONFIRM_WITHIN.total_seconds() // 60)
    ctx.reply(f"{question}\nType `{ctx.prefix}confirm` here within {minutes} minutes to go ahead; otherwise nothing changes.")


@registry.command("confirm", who=Role.ANYONE, summary="Go ahead with the action I asked you to confirm here.")
async def confirm(ctx: Context) -> None:
    pending = await ctx.repos.confirmations.take(ctx.caller.user_id, ctx.room_id)
    if pending is None:
        raise NotFound("There is nothing waiting for your confirmation in this room.")
    if pending.expires_at <= ctx.now:
        raise Conflict(f"That request expired at {when.show(pending.expires_at, ctx.tz)}; run the command again.")
    await _confirmables[pending.action](ctx, pending.payload)


# --- commands


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
    for a in found:
        mine = await standing(ctx.repos, a, ctx.caller.user_id)
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


@registry.command(
    "assign edit",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Change an assignment's due time, cutoff, points or title.",
    details=(
        "Examples: `!assign edit A1 due monday 9am`, `!assign edit A1 cutoff off`, `!assign edit A1 points 25`, "
        '`!assign edit A1 title "Pendulum lab"`; several at once: `!assign edit A1 due monday 9am cutoff tuesday 9am`.'
    ),
)
async def assign_edit(
    ctx: Context,
    a: Annotated[Assignment, AssignmentRef()],
    due: Annotated[datetime | None, When(), Keyword("due")] = None,
    cutoff: Annotated[datetime | Literal["off"] | None, CutoffOrOff(), Keyword("cutoff")] = None,
    points: Annotated[float | None, POINTS, Keyword("points")] = None,
    title: Annotated[str | None, Text("title", max_len=200, greedy=True), Keyword("title")] = None,
) -> None:
    if due is None and cutoff is None and points is None and title is None:
        raise BadArgument("Say what to change: due, cutoff, points or title, each followed by its new value.")
    tz = ctx.tz
    new_due = due or a.due_at
    new_cutoff = a.cutoff_at if cutoff is None else None if cutoff == "off" else cutoff
    changes, fields = [], {}
    if due is not None:
        if not a.published and a.publish_at is not None and due <= a.publish_at:
            raise BadArgument(f"{when.show(due, tz)} is before {a.short_id} is posted ({when.show(a.publish_at, tz)}).")
        if cutoff is None and new_cutoff is not None and due > new_cutoff:
            raise BadArgument(
                f"{when.show(due, tz)} is after {a.short_id}'s cutoff ({when.show(new_cutoff, tz)}); move the cutoff first."
            )
        fields["due_at"] = due
        changes.append(f"is now due {when.show(due, tz)}")
    if cutoff == "off":
        fields["cutoff_at"] = None
        changes.append("now takes late work without a cutoff")
    elif cutoff is not None:
        if cutoff < new_due:
            raise BadArgument(f"The cutoff ({when.show(cutoff, tz)}) is before the due time ({when.show(new_due, tz)}).")
        fields["cutoff_at"] = cutoff
        changes.append(f"takes late work until {when.show(cutoff, tz)}")
    if points is not None:
        fields["points"] = points
        changes.append(f"is now out of {number(points)} points")
    if title is not None:
        fields["title"] = title
        changes.append(f"is now called “{title}”")
    a = await ctx.repos.assignments.update(a.id, **fields)
    change = "; ".join(changes)
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
        await ctx.rooms.set_state(room.room_id, STATE_ASSIGNMENT, a.short_id, {})  # empty content: removed
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
