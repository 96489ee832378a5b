"""A learner's standing on one assignment: handed in or not, on time or late, graded, returned."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from storage.coursework import Assignment, Extension, Grade, Return, Submission
from storage.repositories import Repositories

from . import when
from .converters import number


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
    return (await standings_of_learner(repos, [a], learner))[a.id]


async def standings_of_learner(repos: Repositories, found: list[Assignment], learner: str) -> dict[int, Standing]:
    """One learner's standing on each assignment (by id), in four queries however many there are."""
    ids = [a.id for a in found]
    subs = await repos.submissions.latest_of_learner(learner, ids)
    exts = await repos.extensions.of_learner(learner, ids)
    grades = await repos.grades.latest_of_learner(learner, ids)
    rets = await repos.returns.latest_of_learner(learner, ids)
    return {
        a.id: Standing(a, learner, subs.get(a.id), exts.get(a.id), grades.get(a.id), _returned_since(rets.get(a.id), subs.get(a.id)))
        for a in found
    }


async def standings(repos: Repositories, a: Assignment, learners: list[str]) -> dict[str, Standing]:
    subs = await repos.submissions.latest_of_assignment(a.id)
    exts = await repos.extensions.of_assignment(a.id)
    grades = await repos.grades.latest_of_assignment(a.id)
    rets = await repos.returns.latest_of_assignment(a.id)
    return {
        who: Standing(a, who, subs.get(who), exts.get(who), grades.get(who), _returned_since(rets.get(who), subs.get(who)))
        for who in learners
    }
