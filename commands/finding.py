"""Finding what a coursework command names, for the caller: an assignment of the class (learners
never see one not posted yet), its learners, a learner's work room."""

from __future__ import annotations

from storage.coursework import Assignment
from storage.models import ClassRole

from .context import Context
from .converters import AssignmentId
from .errors import NotFound, id_ranges
from .provision import work_room_for


def teaches(ctx: Context) -> bool:
    """A teacher of the context's class (operators count as one)."""
    return ctx.caller.is_operator or ctx.caller.class_role == ClassRole.TEACHER


async def find(ctx: Context, number: int) -> Assignment:
    """The class's assignment A<number>; learners never see one that is not posted yet."""
    found = await ctx.repos.assignments.by_number(ctx.klass.id, number)
    teacher = teaches(ctx)
    if found is None or (not found.published and not teacher):
        raise NotFound(f"{ctx.klass.name} has no assignment A{number}; {await _which_exist(ctx, teacher)}")
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
    # a learner added before work rooms existed gets one now
    return await work_room_for(ctx, ctx.klass, learner)


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
