"""How a command names a programme, one of its items, a time in it or the day a class starts it;
and the records those names stand for, found for the caller (authors alone may change a programme)."""

from __future__ import annotations

from datetime import date, timedelta

from storage.programmes import Programme, ProgrammeItem

from . import when
from .context import Context
from .converters import Converter, ShortId
from .errors import BadArgument, Conflict, NotAllowed, NotFound, id_ranges
from .offsets import Offset, parse_offset

MAX_ITEMS = 100  # a unit of learning; also keeps the library's entry for it within one event
START_WITHIN = timedelta(days=366)  # a start date further from today than this is a typing mistake


class ProgrammeId(ShortId):
    metavar = "programme"
    letter = "P"
    what = "a programme id"
    hint = " (`!programmes` lists them)."


class ItemId(ShortId):
    metavar = "item"
    letter = "I"
    what = "an item of a programme"


class DueOffset(Converter):
    """When in the programme: ``week 2 fri 17:00``, ``day 3 09:00``."""

    metavar = "offset"
    greedy = True

    def parse(self, text, env) -> Offset:
        found = parse_offset(text)
        if found is None:
            raise BadArgument(
                f"“{text}” is not a time in the programme; write it from the start, like "
                "`week 2 fri 17:00` (week 1 is the week it starts) or `day 3 09:00` (day 1 is the start)."
            )
        return found


class StartDate(Converter):
    """The day a class starts a programme: ``2026-09-21``, ``monday``, ``next monday`` — a calendar
    day, as the person typing it counts days (the zone of the room's class, else Ako's)."""

    metavar = "date"
    greedy = True

    def parse(self, text, env) -> date:
        moment = when.parse_when(text, env.now, env.tz)
        if moment is None:
            raise BadArgument(f"“{text}” is not a date I understand; try 2026-09-21, monday or next monday.")
        if abs(moment - env.now) > START_WITHIN:
            raise BadArgument(f"{when.show(moment, env.tz)} is more than a year from today; a programme starts within a year of now.")
        return moment.astimezone(env.tz).date()


# --- finding programmes and who may change them


class ProgrammeRef(ProgrammeId):
    """A programme, by its id, or when left out the one whose room the command is typed in: the record."""

    async def convert(self, ctx: Context, text: str) -> Programme:
        return await find(ctx, self.parse(text, ctx))

    async def default(self, ctx: Context) -> Programme:
        return await find(ctx, None)


class AuthoredProgramme(ProgrammeRef):
    """A programme (as :class:`ProgrammeRef`) the caller is an author of; operators may change any."""

    async def convert(self, ctx: Context, text: str) -> Programme:
        return await editable(ctx, self.parse(text, ctx))

    async def default(self, ctx: Context) -> Programme:
        return await editable(ctx, None)


async def find(ctx: Context, pid: int | None) -> Programme:
    """The programme named, or (no id given) the one whose room the command was typed in."""
    if pid is None:
        p = await ctx.repos.programmes.by_room(ctx.room_id)
        if p is None:
            raise BadArgument(
                f"Name the programme (`{ctx.prefix}{ctx.command_name} P1 …`), or run it in the programme's own room."
            )
        return p
    p = await ctx.repos.programmes.get(pid)
    if p is None:
        raise NotFound(f"There is no programme P{pid}; {await _which_exist(ctx)}")
    return p


async def _which_exist(ctx: Context) -> str:
    found = [p.id for p in await ctx.repos.programmes.all()]
    if not found:
        return f'there are none yet: `{ctx.prefix}programme new "<title>"` starts one.'
    return f"there {'is' if len(found) == 1 else 'are'} {id_ranges('P', found)}. `{ctx.prefix}programmes` lists them."


async def editable(ctx: Context, pid: int | None) -> Programme:
    """The programme, when the caller is one of its authors (operators may change any)."""
    p = await find(ctx, pid)
    if not ctx.caller.is_operator and not await ctx.repos.programmes.is_author(p.id, ctx.caller.user_id):
        authors = ", ".join(await ctx.repos.programmes.authors(p.id))
        raise NotAllowed(
            f"Only an author of {p.label} can change it (authors: {authors}). "
            f"An author can add you with `{ctx.prefix}programme author add {p.short_id} @you`."
        )
    return p


async def room_for_more(ctx: Context, p: Programme) -> None:
    if len(await ctx.repos.programmes.items(p.id)) >= MAX_ITEMS:
        raise Conflict(f"{p.label} has {MAX_ITEMS} items, the most a programme holds; split it into two programmes.")


async def find_item(ctx: Context, p: Programme, number_: int) -> ProgrammeItem:
    item = await ctx.repos.programmes.item(p.id, number_)
    if item is None:
        items = [i.number for i in await ctx.repos.programmes.items(p.id)]
        exist = f"its items are {id_ranges('I', items)}" if items else "it has no items yet"
        raise NotFound(f"{p.label} has no item I{number_}; {exist}. `{ctx.prefix}programme show {p.short_id}` lists them.")
    return item
