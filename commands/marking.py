"""Marking (SPEC §3 "Grading and feedback"): the marking queue and any submission on demand.

`!mark A1` shows a teacher the next submission that needs a grade — the learner, their school,
the version, on time or late, the text and the files — and `!grade <score>`, `!return` and
`!skip` act on the one shown and bring the next. Teachers marking one assignment at once never
get the same submission (storage/marking.py). Learners' work is shown only where it may be:
the staff room, the caller's own direct message with Ako, or that learner's own work room.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from storage.coursework import Assignment, Submission
from storage.marking import MarkingSession
from storage.models import RoomKind, server_of

from . import when
from .context import Context, Media, Role, Where
from .converters import UserId, Version, number
from .errors import BadArgument, Conflict, NotAllowed, NotFound, id_ranges
from .finding import AssignmentRef, by_school, learner_in_class, learners_of, teaches, work_room_of
from .private_answers import own_dm
from .registry import registry
from .standing import Standing, standings
from .submissions import quoted, size_text

HOLD = timedelta(minutes=30)  # a session idle this long lets another teacher take the work it shows


# --- where a learner's work may be shown


async def _private_here(ctx: Context, learner: str | None) -> bool:
    room = ctx.room
    if room is None:
        return False
    if room.kind == RoomKind.WORK:
        return learner is not None and room.owner == learner
    return (room.kind == RoomKind.STAFF and teaches(ctx)) or await own_dm(ctx)


async def private_room(ctx: Context, learner: str | None) -> str:
    """Where the caller may see ``learner``'s work (None: every learner's): here when here is private
    enough; otherwise the class's staff room for a teacher, the learner's own work room for a learner."""
    if await _private_here(ctx, learner):
        return ctx.room_id
    if teaches(ctx):
        staff = await ctx.repos.rooms.of_class(ctx.klass.id, RoomKind.STAFF)
        if staff is None:
            raise NotAllowed(
                "That shows learners' work, so I only give it in the staff room or a direct message with me: "
                f"try `{ctx.prefix}{ctx.command_name} {ctx.klass.code} …` there."
            )
        return staff.room_id
    return await work_room_of(ctx, ctx.caller.user_id)


def show_in(ctx: Context, room_id: str, text: str, file: tuple[Media, str] | None = None) -> None:
    """Text, and a file with its caption, in ``room_id``: as the answer when that is where the command was asked."""
    messages = ([(text, None)] if text else []) + ([(file[1], file[0])] if file else [])
    for markdown, media in messages:
        if room_id == ctx.room_id:
            ctx.reply(markdown, media=media)
        else:
            ctx.send(room_id, markdown, media=media)


def _moved_note(ctx: Context, room_id: str, staff: bool) -> None:
    if room_id != ctx.room_id:
        where = f"the staff room of {ctx.klass.name}" if staff else "your work room"
        ctx.reply(f"I've put it in {where}, where learners' work stays private.")


# --- one submission, as a teacher reads it


def file_of(sub: Submission, a: Assignment) -> tuple[Media, str] | None:
    """The submission's file, sent again pointing at the same media, with a caption naming whose it is."""
    if sub.file is None:
        return None
    f = sub.file
    caption = f"{f.name} — {sub.learner}'s work for {a.short_id}, version {sub.version}"
    return Media(f.url, f.name, f.mimetype, f.size), caption


async def _school(ctx: Context, user: str) -> str:
    school = await ctx.repos.schools.get(server_of(user))
    return f"{school.name} ({school.server})" if school else f"guest from {server_of(user)}"


async def submission_view(ctx: Context, s: Standing, sub: Submission, heading: str = "") -> str:
    """The learner, their school, the version, when and whether on time, the text, the files."""
    a, tz = s.assignment, ctx.tz
    late = a.late_by(sub.received_at, s.extension)
    timing = f"**late by {when.show_duration(late)}**" if late else "on time"
    due = f"due {when.show(s.due, tz)}" + (" with an extension" if s.extension else "")
    newest = (await ctx.repos.submissions.latest(a.id, sub.learner)) or sub
    of = f" of {newest.version}" if newest.version != sub.version else ""
    withdrawn = " · withdrawn" if sub.withdrawn_at else ""
    lines = [heading or f"**{a.label}**"]
    lines.append(
        f"**{sub.learner}** · {await _school(ctx, sub.learner)} · version {sub.version}{of}{withdrawn} · "
        f"received {when.show(sub.received_at, tz)}: {timing} ({due})"
    )
    if s.grade is not None and s.grade.version == sub.version:
        lines.append(f"Graded {number(s.grade.score)}/{number(s.grade.max_score)} by {s.grade.graded_by}.")
    if sub.text:
        lines += ["", quoted(sub.text), ""]
    if sub.file is not None:
        size = f", {size_text(sub.file.size)}" if sub.file.size is not None else ""
        lines.append(f"File: {sub.file.name}{size} (below).")
    if not sub.text and sub.file is None:
        lines.append("(nothing: this version is empty)")
    return "\n".join(lines)


# --- the queue


def needs_marking(s: Standing) -> bool:
    """Handed in, not handed back, and its current version not graded yet."""
    if s.submission is None or s.returned is not None:
        return False
    return s.grade is None or s.grade.version is None or s.grade.version < s.submission.version


async def _queue(ctx: Context, a: Assignment) -> list[Standing]:
    marks = await standings(ctx.repos, a, await learners_of(ctx))
    waiting = [s for s in marks.values() if needs_marking(s)]
    return sorted(waiting, key=lambda s: (s.submission.received_at, s.learner))


async def _summary(ctx: Context, session: MarkingSession, a: Assignment, ended: str) -> str:
    marks = await standings(ctx.repos, a, await learners_of(ctx))
    skipped = len(session.skipped)
    lines = [
        f"Marking **{a.label}** {ended}: {session.graded} graded, {session.returned} returned, {skipped} skipped."
    ]
    waiting = [s.learner for s in marks.values() if needs_marking(s)]
    if waiting:
        later = [u for u in session.skipped if u in waiting]
        lines.append(
            f"Still to grade: {len(waiting)}" + (f" (you skipped {', '.join(later)})" if later else "")
            + f"; `{ctx.prefix}mark {a.short_id}` goes on."
        )
    missing = [u for u, s in marks.items() if s.submission is None]
    if not missing:
        lines.append("Everyone has handed in." if marks else "The class has no learners yet.")
        return "\n".join(lines)
    lines.append(f"Not handed in ({len(missing)}):")
    for heading, users in await by_school(ctx, missing):
        named = []
        for u in users:
            ext = marks[u].extension
            named.append(f"{u} (extension to {when.show(ext.due_at, ctx.tz)})" if ext else u)
        lines.append(f"- {heading}: {', '.join(named)}")
    return "\n".join(lines)


async def show_next(ctx: Context, session: MarkingSession, room_id: str, before: str = "") -> None:
    """Show the session's next submission in ``room_id``, or end the session with its summary."""
    a = await ctx.repos.assignments.get(session.assignment_id)
    now = ctx.now
    held = await ctx.repos.marking.held_by_others(session.id, a.id, now - HOLD)
    queue = await _queue(ctx, a)
    free = [s for s in queue if s.learner not in held and s.learner not in session.skipped]
    prefix = f"{before}\n\n" if before else ""
    if not free:
        await ctx.repos.marking.end(session.id, now)
        session = await ctx.repos.marking.get(session.id)
        others = [s for s in queue if s.learner in held]
        note = f"\n{len(others)} more {'is' if len(others) == 1 else 'are'} being marked by another teacher now." if others else ""
        show_in(ctx, room_id, prefix + await _summary(ctx, session, a, "is done") + note)
        return
    shown_now = [s for s in free if s.learner == session.learner]
    s = (shown_now or free)[0]  # `!mark A1` again shows the same learner's work again (her newest version)
    await ctx.repos.marking.let_go_idle(a.id, s.learner, now - HOLD)
    await ctx.repos.marking.show(session.id, s.learner, s.submission.version, now)
    later = len([u for u in session.skipped if any(q.learner == u for q in queue)])
    place = f"{len(free)} to mark" + (f" ({later} skipped)" if later else "")
    view = await submission_view(ctx, s, s.submission, f"**{a.label}** · {place}")
    p = ctx.prefix
    view += f"\n`{p}grade <score> [feedback]` · `{p}return [note]` · `{p}skip` · `{p}mark stop`"
    show_in(ctx, room_id, prefix + view, file_of(s.submission, a))


async def shown(ctx: Context, named: str | None) -> tuple[MarkingSession, Assignment, str]:
    """The submission shown in the caller's marking session here: for `!grade` and `!return` without
    an assignment. Refuses when there is none, or when the work changed since it was shown."""
    session = await ctx.repos.marking.open_in(ctx.caller.user_id, ctx.room_id)
    name = ctx.command_name
    if session is None:
        raise BadArgument(
            f"{ctx.prefix}{name} needs the assignment (`{ctx.prefix}{name} A1 …`), unless you are marking here: "
            f"`{ctx.prefix}mark A1` shows the work to mark one at a time."
        )
    a = await ctx.repos.assignments.get(session.assignment_id)
    if session.learner is None:
        raise Conflict(
            f"Nothing is shown in your marking of {a.short_id} here: it was idle for more than "
            f"{int(HOLD.total_seconds() // 60)} minutes, so the work went back to the queue. "
            f"`{ctx.prefix}mark {a.short_id}` shows the next."
        )
    if named is not None and named != session.learner:
        raise BadArgument(
            f"Without an assignment, {ctx.prefix}{name} acts on the work shown in your marking session "
            f"({session.learner}); for someone else, name the assignment: `{ctx.prefix}{name} {a.short_id} {named} …`."
        )
    latest = await ctx.repos.submissions.latest(a.id, session.learner)
    if latest is None or latest.version != session.version:
        now = "withdrawn their work" if latest is None else f"handed in version {latest.version}"
        raise Conflict(
            f"{session.learner} has {now} since I showed you version {session.version}, so nothing was recorded. "
            f"`{ctx.prefix}mark {a.short_id}` shows what is there now."
        )
    return session, a, session.learner


async def step(ctx: Context, session: MarkingSession, outcome: str, done: str) -> None:
    """After a grade or return in the session: count it, and bring the next submission."""
    await ctx.repos.marking.count(session.id, outcome)
    await show_next(ctx, await ctx.repos.marking.get(session.id), ctx.room_id, done)


# --- commands


@registry.command(
    "mark",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Mark an assignment one submission at a time: grade, return or skip each, and the next comes.",
    details=(
        "In the staff room or our direct message (`!mark PHYS12 A1` there). I show the next submission that needs "
        "a grade; answer `!grade 17 Clear method…`, `!return Needs a conclusion` or `!skip`, and the next one comes. "
        "`!mark stop` ends with a summary. Teachers marking at once never get the same submission."
    ),
)
async def mark(ctx: Context, a: Annotated[Assignment, AssignmentRef()]) -> None:
    room_id = await private_room(ctx, None)
    me, repos = ctx.caller.user_id, ctx.repos
    before = ""
    session = await repos.marking.open_in(me, room_id)
    if session is not None and session.assignment_id != a.id:
        other = await repos.assignments.get(session.assignment_id)
        await repos.marking.end(session.id, ctx.now)
        before = await _summary(ctx, await repos.marking.get(session.id), other, "stopped")
        session = None
    if session is None:
        session = await repos.marking.start(a.id, me, room_id, ctx.now)
    await show_next(ctx, session, room_id, before)
    _moved_note(ctx, room_id, staff=True)


@registry.command(
    "mark stop",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="End your marking session here, with how many were graded, returned and skipped.",
)
async def mark_stop(ctx: Context) -> None:
    session = await ctx.repos.marking.open_in(ctx.caller.user_id, ctx.room_id)
    if session is None:
        raise NotFound(f"You are not marking anything here. `{ctx.prefix}mark A1` starts.")
    a = await ctx.repos.assignments.get(session.assignment_id)
    await ctx.repos.marking.end(session.id, ctx.now)
    ctx.reply(await _summary(ctx, await ctx.repos.marking.get(session.id), a, "stopped"))


@registry.command(
    "skip",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="In a marking session: leave the submission shown for later and bring the next.",
)
async def skip(ctx: Context) -> None:
    session = await ctx.repos.marking.open_in(ctx.caller.user_id, ctx.room_id)
    if session is None or session.learner is None:
        raise NotFound(f"Nothing is shown to you for marking here. `{ctx.prefix}mark A1` starts.")
    await ctx.repos.marking.skip(session.id, session.learner)
    session = await ctx.repos.marking.get(session.id)
    await ctx.repos.marking.show(session.id, None, None, ctx.now)
    await show_next(ctx, session, ctx.room_id, f"Skipped {session.learner}'s work; it stays in the queue.")


@registry.command(
    "submission",
    who=Role.MEMBER,
    where=Where.CLASS,
    summary="Show one version of a learner's work (teachers); learners see their own.",
    details="`!submission A1 @ben:school-b.example` shows the current version, `… v2` an earlier one. Learners: `!submission A1 [v2]`.",
    reads_only=True,
)
async def submission(
    ctx: Context,
    a: Annotated[Assignment, AssignmentRef()],
    learner: Annotated[str | None, UserId()] = None,
    version: Annotated[int | None, Version()] = None,
) -> None:
    me = ctx.caller.user_id
    if teaches(ctx):
        if learner is None:
            room = ctx.room
            if room is None or room.kind != RoomKind.WORK or room.owner is None:
                raise BadArgument(f"Name the learner: `{ctx.prefix}submission {a.short_id} @learner [v2]`.")
            learner = room.owner
        await learner_in_class(ctx, learner)
    elif learner not in (None, me):
        raise NotAllowed("You can see only your own work.")
    else:
        learner = me
    versions = await ctx.repos.submissions.versions(a.id, learner)
    whose = "You have" if learner == me else f"{learner} has"
    if not versions:
        raise NotFound(f"{whose} handed in nothing for {a.short_id}.")
    if version is None:
        current = [v for v in versions if v.withdrawn_at is None]
        sub = current[-1] if current else versions[-1]
    else:
        sub = next((v for v in versions if v.version == version), None)
        if sub is None:
            raise NotFound(
                f"{whose} no version {version} of {a.short_id}; there {'is' if len(versions) == 1 else 'are'} "
                f"{id_ranges('v', [v.version for v in versions])}."
            )
    s = (await standings(ctx.repos, a, [learner]))[learner]
    room_id = await private_room(ctx, learner)
    show_in(ctx, room_id, await submission_view(ctx, s, sub), file_of(sub, a))
    _moved_note(ctx, room_id, staff=teaches(ctx))
