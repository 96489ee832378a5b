"""Programmes of learning: writing and reading them (issue 9).

A programme is a unit of learning co-authored by staff of any registered school, independent
of any class: an ordered list of items — assignments (title, markdown description, points, due
as an offset from the start such as ``week 2 fri 17:00``) and resources (markdown, links).
A teacher puts it into a class with a start date, and its assignments become the class's, with
real due dates in the class's zone.

Every programme has its own room. Each change is a new version: recorded in the database
(``!programme history``), written into the room as state (``nz.ako.programme`` for the whole,
``nz.ako.programme.item`` per item, state key = item id) and announced there with one notice
line, so every author's server holds the programme and its history. Only Ako writes that state:
authors sit at power 0 in the programme room.

This module writes and reads programmes; :mod:`commands.programme_use` puts one into a class and
:mod:`commands.library` lists it in the public library.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from storage.models import Class
from storage.programmes import Programme

from . import when
from .context import Context, Role
from .converters import POINTS, AssignmentId, Markdown, Number, TaughtClass, Text, UserId
from .errors import BadArgument, Conflict, NotAllowed, NotFound, id_ranges
from .offsets import Offset, offset_of
from .programme_record import STATE_PROGRAMME, changed, day_text, item_words, programme_state, quoted_lines
from .programme_refs import AuthoredProgramme, DueOffset, ItemId, ProgrammeId, ProgrammeRef, find_item, room_for_more
from .provision import room_key
from .publishing import DEFAULT_POINTS
from .registry import Body, Keyword, registry


@registry.command(
    "programme new",
    who=Role.STAFF,
    summary="Start a programme of learning, independent of any class, with its own room.",
    details=(
        'Example: `!programme new "Forces and motion"`. Add co-authors from any school with '
        "`!programme author add P1 @staff`, then items with `!programme add` and `!programme resource`."
    ),
)
async def programme_new(ctx: Context, title: Annotated[str, Text("title", max_len=120)]) -> None:
    me = ctx.caller.user_id
    p = await ctx.repos.programmes.create(title, me, ctx.now)
    room = await ctx.matrix.create_room(
        name=f"{title} — programme {p.short_id}",
        topic=(
            f"Programme {p.short_id}, co-authored with Ako. Every change is recorded here; "
            f"`{ctx.prefix}programme show {p.short_id}` shows it."
        ),
        invite=[me],
        key=room_key(ctx, f"programme room {p.short_id}"),
        history_visibility="shared",  # an author added later (and their server) gets the whole history
    )
    await ctx.repos.programmes.set_room(p.id, room)
    p = await ctx.repos.programmes.get(p.id)
    await ctx.matrix.set_state(room, STATE_PROGRAMME, "", programme_state(p, [me], []))
    ctx.send(room, f"**{p.short_id} v1** · {me} created “{title}”")
    ctx.reply(
        f"Created **{p.label}** (version 1) with its own room; I've invited you.\n"
        f'Add an assignment: `{ctx.prefix}programme add {p.short_id} "<title>" due week 1 fri 17:00 points 20` '
        f"(the description on the following lines); a resource: `{ctx.prefix}programme resource {p.short_id} \"<title>\"`; "
        f"co-authors: `{ctx.prefix}programme author add {p.short_id} @staff`."
    )


@registry.command(
    "programme author add",
    who=Role.STAFF,
    summary="Make a member of staff of any registered school a co-author of a programme.",
)
async def programme_author_add(
    ctx: Context,
    *,
    p: Annotated[Programme, AuthoredProgramme()] = None,
    user: Annotated[str, UserId()],
) -> None:
    if not await ctx.repos.staff.is_staff(user):
        raise NotAllowed(
            f"{user} is not staff of a registered school, so they cannot author programmes. "
            f"Their school admin can name them with `{ctx.prefix}staff add`."
        )
    if not await ctx.repos.programmes.add_author(p.id, user, ctx.caller.user_id, ctx.now):
        await ctx.matrix.invite(p.room_id, user)
        ctx.reply(f"{user} is already an author of {p.label}; I've sent the invitation to its room again.")
        return
    await ctx.matrix.invite(p.room_id, user)
    await changed(ctx, p, f"added {user} as an author")


@registry.command(
    "programme add",
    who=Role.STAFF,
    summary="Add an assignment to a programme, due at an offset from the start.",
    details=(
        'Example: `!programme add P1 "Lab report" due week 2 fri 17:00 points 20`, with the description as '
        "markdown on the following lines. Offsets: `week 2 fri 17:00` (week 1 is the week the class starts; "
        "weeks run Monday to Sunday) or `day 3 09:00` (day 1 is the start day). With `publish <offset>` the "
        "class sees it from then on. Points default to 100."
    ),
)
async def programme_add(
    ctx: Context,
    *,
    p: Annotated[Programme, AuthoredProgramme()] = None,
    title: Annotated[str, Text("title", max_len=200)],
    due: Annotated[Offset, DueOffset(), Keyword("due")],
    points: Annotated[float | None, POINTS, Keyword("points")] = None,
    publish_at: Annotated[Offset | None, DueOffset(), Keyword("publish")] = None,
    description: Annotated[str | None, Markdown("description"), Body] = None,
) -> None:
    await room_for_more(ctx, p)
    if publish_at is not None and publish_at.sort_key() >= due.sort_key():
        raise BadArgument(f"It must be posted ({publish_at.text()}) before it is due ({due.text()}).")
    points = points if points is not None else DEFAULT_POINTS
    item = await ctx.repos.programmes.add_item(
        p.id, "assignment", title, description or "", points, due.text(),
        publish_at.text() if publish_at else None, None, ctx.caller.user_id, ctx.now,
    )
    await changed(ctx, p, f"added {item.short_id} “{title}” — {item_words(item)}", item=item)


@registry.command(
    "programme resource",
    who=Role.STAFF,
    summary="Add a resource (markdown, links) to a programme.",
    details='Example: `!programme resource P1 "Reading: Newton\'s laws"` with the text and links on the following lines.',
)
async def programme_resource(
    ctx: Context,
    *,
    p: Annotated[Programme, AuthoredProgramme()] = None,
    title: Annotated[str, Text("title", max_len=200)],
    body: Annotated[str, Markdown("resource"), Body],
) -> None:
    await room_for_more(ctx, p)
    item = await ctx.repos.programmes.add_item(
        p.id, "resource", title, body, None, None, None, None, ctx.caller.user_id, ctx.now
    )
    await changed(ctx, p, f"added {item.short_id} “{title}” — resource", item=item)


@registry.command(
    "programme import",
    who=Role.STAFF,
    summary="Bring an assignment of a class you teach into a programme.",
    details=(
        "Example: `!programme import P1 A3 from PHYS12`. Its title, description and points are copied "
        "(never any learner's work); its due time becomes an offset counted from the week it was set, "
        "unless you give one with `due week 2 fri 17:00`."
    ),
)
async def programme_import(
    ctx: Context,
    *,
    p: Annotated[Programme, AuthoredProgramme()] = None,
    assignment: Annotated[int, AssignmentId()],
    klass: Annotated[Class, TaughtClass("bring its assignments into a programme"), Keyword("from")],
    due: Annotated[Offset | None, DueOffset(), Keyword("due")] = None,
) -> None:
    await room_for_more(ctx, p)
    a = await ctx.repos.assignments.by_number(klass.id, assignment)
    if a is None:
        numbers = [x.number for x in await ctx.repos.assignments.of_class(klass.id)]
        exist = f"its assignments are {id_ranges('A', numbers)}" if numbers else "it has no assignments yet"
        raise NotFound(f"{klass.name} has no assignment A{assignment}; {exist}.")
    offset = due or offset_of(a.due_at, a.published_at or a.created_at, ZoneInfo(klass.timezone))
    item = await ctx.repos.programmes.add_item(
        p.id, "assignment", a.title, a.description, a.points, offset.text(), None, f"{klass.code} {a.short_id}",
        ctx.caller.user_id, ctx.now,
    )
    await changed(
        ctx, p, f"imported {a.short_id} of {klass.code} as {item.short_id} “{a.title}” — {item_words(item)}", item=item
    )


@registry.command(
    "programme move",
    who=Role.STAFF,
    summary="Move an item of a programme to another place in its order.",
    details="Example: `!programme move P1 I3 to 1` makes I3 the first item.",
)
async def programme_move(
    ctx: Context,
    *,
    p: Annotated[Programme, AuthoredProgramme()] = None,
    item: Annotated[int, ItemId()],
    position: Annotated[int, Number("position", minimum=1, integer=True), Keyword("to")],
) -> None:
    found = await find_item(ctx, p, item)
    count = len(await ctx.repos.programmes.items(p.id))
    position = min(position, count)
    if found.position == position:
        raise Conflict(f"{found.short_id} is already item {position} of {count}.")
    await ctx.repos.programmes.move_item(p.id, found.number, position)
    await changed(ctx, p, f"moved {found.short_id} “{found.title}” to place {position} of {count}")


@registry.command(
    "programme remove",
    who=Role.STAFF,
    summary="Remove an item from a programme (its history keeps it).",
)
async def programme_remove(
    ctx: Context,
    *,
    p: Annotated[Programme, AuthoredProgramme()] = None,
    item: Annotated[int, ItemId()],
) -> None:
    found = await find_item(ctx, p, item)
    await ctx.repos.programmes.remove_item(p.id, found.number, ctx.now)
    await changed(ctx, p, f"removed {found.short_id} “{found.title}”", removed=found.short_id)


@registry.command(
    "programme show",
    who=Role.ANYONE,
    summary="Show a programme: its authors, version and items in order.",
    details="Staff see every programme; anyone sees those in the library.",
    reads_only=True,
)
async def programme_show(ctx: Context, programme: Annotated[int | None, ProgrammeId()] = None) -> None:
    p = await ctx.repos.programmes.by_room(ctx.room_id) if programme is None else await ctx.repos.programmes.get(programme)
    if programme is None and p is None:
        raise BadArgument(f"Name the programme (`{ctx.prefix}programme show P1`), or run it in the programme's own room.")
    if p is None or not (p.published or ctx.caller.is_staff or ctx.caller.is_operator):
        shared = [q.id for q in await ctx.repos.programmes.published()]
        listed = f"the library has {id_ranges('P', shared)}" if shared else "the library is empty"
        raise NotFound(f"There is no programme P{programme} you can see; {listed}. `{ctx.prefix}library` lists the shared ones.")
    authors = await ctx.repos.programmes.authors(p.id)
    items = await ctx.repos.programmes.items(p.id)
    listed = "in the library" if p.published else "not in the library"
    lines = [f"**{p.label}** · version {p.version} · by {', '.join(authors)} · {listed}"]
    if not items:
        lines.append(f"No items yet: `{ctx.prefix}programme add {p.short_id} \"<title>\" due week 1 fri 17:00`.")
    for i in items:
        lines.append(f"{i.position}. **{i.short_id} {i.title}** — {item_words(i)}")
        lines += quoted_lines(i.body)
    if ctx.caller.is_staff or ctx.caller.is_operator:
        for use in await ctx.repos.programmes.uses(p.id):
            klass = await ctx.repos.classes.get(use.class_id)
            if klass is not None:
                lines.append(f"Used in {klass.label} from {day_text(use.start)} (version {use.version}).")
    ctx.reply("\n".join(lines))


@registry.command("programmes", who=Role.STAFF, summary="Every programme of the cluster, with its authors.", reads_only=True)
async def programmes(ctx: Context) -> None:
    found = await ctx.repos.programmes.all()
    if not found:
        ctx.reply(f'No programmes yet. Start one with `{ctx.prefix}programme new "<title>"`.')
        return
    lines = ["**Programmes**"]
    for p in found:
        authors = await ctx.repos.programmes.authors(p.id)
        items = await ctx.repos.programmes.items(p.id)
        listed = " · in the library" if p.published else ""
        lines.append(f"- **{p.label}** · v{p.version} · {len(items)} items · by {', '.join(authors)}{listed}")
    lines.append(f"`{ctx.prefix}programme show P1` shows one.")
    ctx.reply("\n".join(lines))


@registry.command(
    "programme history",
    who=Role.STAFF,
    summary="Every change to a programme: version, when, who and what.",
    reads_only=True,
)
async def programme_history(ctx: Context, p: Annotated[Programme, ProgrammeRef()] = None) -> None:
    lines = [f"**History of {p.label}**"]
    for c in await ctx.repos.programmes.history(p.id):
        lines.append(f"- v{c.version} · {when.show(c.at, ctx.tz)} · {c.actor} {c.summary}")
    ctx.reply("\n".join(lines))
