"""Grades, feedback and returns (SPEC §3 "Grading and feedback").

A grade and its feedback are shown in the learner's work room and nowhere else: a teacher who
grades from another room gets a confirmation without them, and a !grade typed where learners
can read it is removed from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from storage.models import RoomKind
from storage.coursework import Assignment

from . import marking as queue
from . import when
from .context import Context, Role, Where
from .converters import Converter, Markdown, ParseEnv, UserId, number
from .errors import BadArgument
from .finding import AssignmentRef, by_school, learner_in_class, learners_of, teaches, work_room_of
from .private_answers import reply_privately, reply_to_teachers
from .registry import Rest, registry
from .standing import Standing, standing, standings

_NUMBER = r"\d{1,6}(?:[.,]\d{1,4})?"
_SCORE = re.compile(rf"^(-?{_NUMBER})(?:/(-?{_NUMBER}))?$")


# --- scores


@dataclass(frozen=True)
class Score:
    value: float
    out_of: float | None  # None: the assignment's points


def parse_score(text: str) -> Score:
    """``17``, ``17.5``, ``17/20`` → a Score; anything else a sentence saying why not."""
    s = text.strip()
    m = _SCORE.match(s)
    if not m:
        raise BadArgument(f"“{s}” is not a score; write a number such as 17, 17.5 or 17/20.")
    value = float(m.group(1).replace(",", "."))
    out_of = float(m.group(2).replace(",", ".")) if m.group(2) else None
    if value < 0:
        raise BadArgument(f"A score can't be negative (you wrote {s}).")
    if out_of is not None and out_of <= 0:
        raise BadArgument(f"The maximum in {s} must be more than 0.")
    return Score(value, out_of)


def score_within(score: Score, points: float, short_id: str) -> tuple[float, float]:
    """(score, maximum): the maximum defaults to the assignment's points; the score may not pass it."""
    maximum = score.out_of if score.out_of is not None else points
    if score.value > maximum:
        if score.out_of is None:
            raise BadArgument(
                f"{number(score.value)} is more than the {number(points)} points {short_id} is out of; "
                f"write {number(score.value)}/<maximum> to grade out of another maximum."
            )
        raise BadArgument(f"{number(score.value)} is more than the maximum of {number(maximum)}.")
    return score.value, maximum


# --- the words after the assignment id


def _leading_learner(text: str, env: ParseEnv) -> tuple[str | None, str]:
    text = text.strip()
    if not text.startswith("@"):
        return None, text
    first, rest = re.match(r"(\S+)\s*(.*)", text, re.S).groups()
    return UserId().parse(first, env), rest.strip()


@dataclass(frozen=True)
class Marking:
    learner: str | None
    score: Score | None
    text: str  # feedback or note, markdown


class GradeWords(Converter):
    """``[@learner] <score>[/<max>] [feedback…]``."""

    metavar = "score"
    written = "[@learner] <score>[/<max>] [feedback]"

    def parse(self, text, env) -> Marking:
        learner, rest = _leading_learner(text, env)
        m = re.match(r"(\S+)\s*(.*)", rest, re.S)
        if not m:
            raise BadArgument("Give a score after the assignment (and learner), such as 17 or 17/20.")
        feedback = m.group(2).strip()
        if feedback:
            feedback = Markdown("feedback").parse(feedback, env)
        return Marking(learner, parse_score(m.group(1)), feedback)


class ReturnWords(Converter):
    """``[@learner] [note…]``."""

    metavar = "note"
    written = "[@learner] [note]"

    def parse(self, text, env) -> Marking:
        learner, rest = _leading_learner(text, env)
        return Marking(learner, None, Markdown("note").parse(rest, env) if rest else "")


async def _whose_work(ctx: Context, named: str | None) -> str:
    """The learner named, or the owner of the work room the command is run in."""
    room = ctx.room
    if named is None:
        if room is None or room.kind != RoomKind.WORK or room.owner is None:
            raise BadArgument(f"Name the learner (`{ctx.prefix}{ctx.command_name} A1 @learner …`), or run it in their work room.")
        named = room.owner
    return await learner_in_class(ctx, named)


async def _deliver(ctx: Context, learner: str, message: str, done: str, session=None, outcome: str = "") -> None:
    """The message to the learner's work room only; elsewhere the teacher gets ``done``, which must not repeat it.
    In a marking session, ``done`` comes with the next submission to mark. (Typed where others read it, the
    command is taken out and ``done`` goes to the staff room: see out_of_view.)"""
    work_room = await work_room_of(ctx, learner)
    if ctx.room_id == work_room:
        ctx.reply(message, mentions=(learner,))
        return
    if session is not None:  # a session runs in the staff room or the teacher's own DM: nothing to take out
        ctx.send(work_room, message, mentions=(learner,))
        await queue.step(ctx, session, outcome, done)
        return
    ctx.send(work_room, message, mentions=(learner,))
    ctx.reply(done)


# --- commands


@registry.command(
    "grade",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Grade a learner's work, with feedback; both go to their work room only.",
    details=(
        "In a work room: `!grade A1 17/20 Clear method, check units.` Anywhere else, name the learner: "
        "`!grade A1 @ben:school-b.example 17`. The maximum defaults to the assignment's points. "
        "In a marking session (`!mark A1`), `!grade 17 feedback…` grades the work shown."
    ),
    private=True,
)
async def grade(
    ctx: Context,
    *,
    a: Annotated[Assignment | None, AssignmentRef()] = None,
    marking: Annotated[Marking, GradeWords(), Rest],
) -> None:
    session = None
    if a is None:
        session, a, learner = await queue.shown(ctx, marking.learner)
    else:
        learner = await _whose_work(ctx, marking.learner)
    score, maximum = score_within(marking.score, a.points, a.short_id)
    sub = await ctx.repos.submissions.latest(a.id, learner)
    version = sub.version if sub else None
    await ctx.repos.grades.add(a.id, learner, score, maximum, marking.text, version, ctx.caller.user_id, ctx.now)
    of_version = f" (version {version})" if version else ""
    message = f"**{a.label}**{of_version}: your grade is **{number(score)}/{number(maximum)}**, from {ctx.caller.user_id}."
    if marking.text:
        message += f"\n\n{marking.text}"
    what = "grade and feedback" if marking.text else "grade"
    done = f"Recorded {learner}'s grade for {a.short_id}; the {what} went to their work room only."
    await _deliver(ctx, learner, message, done, session, "graded")


@registry.command(
    "return",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Hand work back to a learner and ask for a new version.",
    details=(
        "In a work room: `!return A1 Add your method.` Elsewhere: `!return A1 @ben:school-b.example Add your method.` "
        "In a marking session (`!mark A1`), `!return Add your method.` hands back the work shown."
    ),
    private=True,
)
async def return_(
    ctx: Context,
    a: Annotated[Assignment | None, AssignmentRef()] = None,
    marking: Annotated[Marking | None, ReturnWords(), Rest] = None,
) -> None:
    marking = marking or Marking(None, None, "")
    session = None
    if a is None:
        session, a, learner = await queue.shown(ctx, marking.learner)
    else:
        learner = await _whose_work(ctx, marking.learner)
    sub = await ctx.repos.submissions.latest(a.id, learner)
    await ctx.repos.returns.add(a.id, learner, marking.text, sub.version if sub else None, ctx.caller.user_id, ctx.now)
    extension = await ctx.repos.extensions.get(a.id, learner)
    cutoff = a.cutoff_for(extension)
    message = f"{ctx.caller.user_id} has handed **{a.label}** back to you for more work."
    if marking.text:
        message += f"\n\n{marking.text}\n"
    message += f"\nHand in a new version with `{ctx.prefix}submit {a.short_id}`."
    done = f"Handed {a.short_id} back to {learner}; I told them in their work room only."
    blocked = ""
    if a.closed:
        blocked = f" Note: {a.short_id} is closed and takes no more work."
    elif cutoff is not None and ctx.now > cutoff:
        blocked = (
            f" Note: {a.short_id} is past its cutoff; give an extension with "
            f"`{ctx.prefix}extend {a.short_id} {learner} <when>` so a new version can be handed in."
        )
    if blocked and ctx.room_id == await work_room_of(ctx, learner):
        message += blocked
    done += blocked
    await _deliver(ctx, learner, message, done, session, "returned")


def _work_summary(s: Standing) -> str:
    if s.submission is None:
        return ""
    parts = []
    if s.submission.text:
        parts.append("text")
    if s.submission.file is not None:
        parts.append(s.submission.file.name)
    return f" — {' + '.join(parts)}" if parts else ""


@registry.command(
    "submissions",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Every learner's work on an assignment, grouped by school.",
    reads_only=True,
)
async def submissions(ctx: Context, a: Annotated[Assignment, AssignmentRef()]) -> None:
    tz, now = ctx.tz, ctx.now
    learners = await learners_of(ctx)
    marks = await standings(ctx.repos, a, learners)
    handed_in = sum(1 for s in marks.values() if s.submission)
    graded = sum(1 for s in marks.values() if s.grade)
    lines = [
        f"**Submissions for {a.label}** · due {when.show(a.due_at, tz)} — "
        f"{handed_in} of {len(learners)} handed in, {graded} graded"
    ]
    if not learners:
        lines.append("No learners in the class yet.")
    for heading, users in await by_school(ctx, learners):
        lines.append(f"\n**{heading}**")
        lines += [f"- {u} — {marks[u].text(tz, now)}{_work_summary(marks[u])}" for u in users]
    await reply_to_teachers(ctx, "\n".join(lines))


def _cell(s: Standing, now) -> str:
    late = " late" if s.late_by else ""
    if s.grade is not None:
        return f"{number(s.grade.score)}/{number(s.grade.max_score)}{late}"
    if s.submission is not None:
        return f"handed in{late}"
    return "missing" if now > s.due else "—"


@registry.command(
    "grades",
    who=Role.MEMBER,
    where=Where.CLASS,
    summary="Teachers: the class's gradebook. Learners: your own grades and feedback.",
    reads_only=True,
)
async def grades(ctx: Context) -> None:
    klass, tz, now = ctx.klass, ctx.tz, ctx.now
    teacher = teaches(ctx)
    found = await ctx.repos.assignments.of_class(klass.id, published_only=True)
    if not found:
        ctx.reply(f"{klass.name} has no posted assignments yet.")
        return
    if not teacher:
        lines = [f"**Your grades in {klass.name}**"]
        for a in found:
            mine = await standing(ctx.repos, a, ctx.caller.user_id)
            if mine.grade is None:
                lines.append(f"\n**{a.label}**: not graded yet ({mine.text(tz, now, with_extension=False)})")
                continue
            g = mine.grade
            lines.append(f"\n**{a.label}**: **{number(g.score)}/{number(g.max_score)}**, graded {when.show(g.graded_at, tz)}")
            if g.feedback:
                lines += ["> " + line for line in g.feedback.splitlines()]
        await reply_privately(ctx, "\n".join(lines))
        return
    learners = await learners_of(ctx)
    columns = [(a, await standings(ctx.repos, a, learners)) for a in found]
    lines = [f"**Gradebook of {klass.name}** — " + ", ".join(f"{a.short_id} {a.title} ({number(a.points)})" for a in found)]
    if not learners:
        lines.append("No learners in the class yet.")
    for heading, users in await by_school(ctx, learners):
        lines.append(f"\n**{heading}**")
        for u in users:
            cells = [f"{a.short_id} {_cell(marks[u], now)}" for a, marks in columns]
            got = [marks[u].grade for _, marks in columns if marks[u].grade]
            total = f" — total {number(sum(g.score for g in got))}/{number(sum(g.max_score for g in got))}" if got else ""
            lines.append(f"- {u} — {' · '.join(cells)}{total}")
    await reply_to_teachers(ctx, "\n".join(lines))
