"""Programmes of learning and the public library (issue 9).

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

The library is one world-readable room (public, in the room directory, ``#ako-library:<server>``)
where authors list finished programmes: materials only, never anything of a learner's.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from storage.models import server_of
from storage.programmes import Programme, ProgrammeItem

from . import when
from .assignments import DEFAULT_POINTS, POINTS, STATE_DESCRIPTION_BYTES, number, publish, unknown_class
from .context import Context, GatewayError, Role
from .converters import AssignmentId, ClassCode, Converter, Markdown, Number, Text, UserId
from .errors import BadArgument, Conflict, NotAllowed, NotFound, id_ranges
from .offsets import Offset, offset_of, parse_offset
from .provision import room_key
from .registry import Param, registry

log = logging.getLogger("ako.programmes")

STATE_PROGRAMME = "nz.ako.programme"
STATE_ITEM = "nz.ako.programme.item"
STATE_USE = "nz.ako.programme.use"  # in a class room: which programme and version it uses
STATE_LIBRARY = "nz.ako.library.entry"  # in the library room, state key = programme id
LIBRARY = "library"
LIBRARY_ALIAS = "ako-library"
LIBRARY_ENTRY_BYTES = 40_000
MAX_ITEMS = 100  # a unit of learning; also keeps the library's entry for it within one event
START_WITHIN = timedelta(days=366)  # a start date further from today than this is a typing mistake


# --- argument types


class ProgrammeId(Converter):
    metavar = "programme"
    _RE = re.compile(r"^[Pp](\d{1,6})$")

    def convert(self, text, env) -> int:
        m = self._RE.match(text.strip())
        if not m:
            raise BadArgument(f"“{text}” is not a programme id; they look like P1, P2, … (`!programmes` lists them).")
        return int(m.group(1))


class ItemId(Converter):
    metavar = "item"
    _RE = re.compile(r"^[Ii](\d{1,6})$")

    def convert(self, text, env) -> int:
        m = self._RE.match(text.strip())
        if not m:
            raise BadArgument(f"“{text}” is not an item of a programme; they look like I1, I2, …")
        return int(m.group(1))


class DueOffset(Converter):
    """When in the programme: ``week 2 fri 17:00``, ``day 3 09:00``."""

    metavar = "offset"
    greedy = True

    def convert(self, text, env) -> Offset:
        found = parse_offset(text)
        if found is None:
            raise BadArgument(
                f"“{text}” is not a time in the programme; write it from the start, like "
                "`week 2 fri 17:00` (week 1 is the week it starts) or `day 3 09:00` (day 1 is the start)."
            )
        return found


class StartDate(Converter):
    """The day a class starts a programme: ``2026-09-21``, ``monday``, ``next monday``.

    Checked here, read again in the class's own zone by the handler (the text is returned)."""

    metavar = "date"
    greedy = True

    def convert(self, text, env) -> str:
        moment = when.parse_when(text, env.now, env.tz)
        if moment is None:
            raise BadArgument(f"“{text}” is not a date I understand; try 2026-09-21, monday or next monday.")
        if abs(moment - env.now) > START_WITHIN:
            raise BadArgument(f"{when.show(moment, env.tz)} is more than a year from today; a programme starts within a year of now.")
        return text.strip()


# --- finding programmes and who may change them


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


# --- the record in the rooms


def _cut(text: str, limit: int) -> str:
    if len(text.encode()) <= limit:
        return text
    return text.encode()[:limit].decode(errors="ignore") + "…"


def item_state(p: Programme, item: ProgrammeItem, version: int) -> dict:
    description = _cut(item.body, STATE_DESCRIPTION_BYTES)
    return {
        "id": item.short_id,
        "programme": p.short_id,
        "kind": item.kind,
        "title": item.title,
        "description": description,
        "description_cut": description != item.body,
        "points": item.points,
        "due": item.due,
        "publish": item.publish,
        "source": item.source,
        "author": item.created_by,
        "version": version,
    }


def programme_state(p: Programme, authors: list[str], items: list[ProgrammeItem]) -> dict:
    return {
        "id": p.short_id,
        "title": p.title,
        "version": p.version,
        "authors": authors,
        "items": [i.short_id for i in items],
        "published": p.published,
    }


def library_entry(p: Programme, authors: list[str], items: list[ProgrammeItem]) -> dict:
    """The programme's materials for the library: items as written, nothing of any class or learner."""
    budget = 8_000
    while True:
        entry = {
            "id": p.short_id,
            "title": p.title,
            "version": p.version,
            "authors": authors,
            "items": [
                {
                    "id": i.short_id, "kind": i.kind, "title": i.title, "description": _cut(i.body, budget),
                    "points": i.points, "due": i.due, "publish": i.publish,
                }
                for i in items
            ],
        }
        if len(json.dumps(entry, ensure_ascii=False).encode()) <= LIBRARY_ENTRY_BYTES or budget < 100:
            return entry
        budget //= 2


def _item_words(item: ProgrammeItem) -> str:
    if item.kind == "resource":
        return "resource"
    words = f"assignment, due {item.due}, {number(item.points)} points"
    if item.publish:
        words += f", posted {item.publish}"
    return words


async def changed(
    ctx: Context, p: Programme, summary: str, *, item: ProgrammeItem | None = None, removed: str | None = None,
    note: str = "",
) -> Programme:
    """Record one change: a new version in the database, the programme's state in its room (and the
    library's, when listed), and a notice line there. The caller gets the same line."""
    repos = ctx.repos
    version = await repos.programmes.record_change(p.id, ctx.caller.user_id, summary, ctx.now)
    p = await repos.programmes.get(p.id)
    authors = await repos.programmes.authors(p.id)
    items = await repos.programmes.items(p.id)
    if item is not None:
        item = await repos.programmes.item(p.id, item.number) or item
        await ctx.rooms.set_state(p.room_id, STATE_ITEM, item.short_id, item_state(p, item, version))
    if removed is not None:
        await ctx.rooms.set_state(p.room_id, STATE_ITEM, removed, {})  # empty content: removed
    await ctx.rooms.set_state(p.room_id, STATE_PROGRAMME, "", programme_state(p, authors, items))
    if p.published:
        library = await repos.cluster_rooms.get(LIBRARY)
        if library:
            await ctx.rooms.set_state(library, STATE_LIBRARY, p.short_id, library_entry(p, authors, items))
    line = f"**{p.short_id} v{version}** · {ctx.caller.user_id} {summary}"
    ctx.reply(f"{line}\n{note}" if note else line)
    if ctx.room_id != p.room_id:
        ctx.send(p.room_id, line)
    return p


# --- commands: making and writing a programme


@registry.command(
    "programme new",
    Param("title", Text("title", max_len=120)),
    who=Role.STAFF,
    summary="Start a programme of learning, independent of any class, with its own room.",
    details=(
        'Example: `!programme new "Forces and motion"`. Add co-authors from any school with '
        "`!programme author add P1 @staff`, then items with `!programme add` and `!programme resource`."
    ),
)
async def programme_new(ctx: Context, title: str) -> None:
    me = ctx.caller.user_id
    p = await ctx.repos.programmes.create(title, me, ctx.now)
    room = await ctx.rooms.create_room(
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
    await ctx.rooms.set_state(room, STATE_PROGRAMME, "", programme_state(p, [me], []))
    ctx.send(room, f"**{p.short_id} v1** · {me} created “{title}”")
    ctx.reply(
        f"Created **{p.label}** (version 1) with its own room; I've invited you.\n"
        f'Add an assignment: `{ctx.prefix}programme add {p.short_id} "<title>" due week 1 fri 17:00 points 20` '
        f"(the description on the following lines); a resource: `{ctx.prefix}programme resource {p.short_id} \"<title>\"`; "
        f"co-authors: `{ctx.prefix}programme author add {p.short_id} @staff`."
    )


@registry.command(
    "programme author add",
    Param("programme", ProgrammeId(), optional=True),
    Param("user", UserId()),
    who=Role.STAFF,
    summary="Make a member of staff of any registered school a co-author of a programme.",
)
async def programme_author_add(ctx: Context, programme: int | None, user: str) -> None:
    p = await editable(ctx, programme)
    if not await ctx.repos.staff.is_staff(user):
        raise NotAllowed(
            f"{user} is not staff of a registered school, so they cannot author programmes. "
            f"Their school admin can name them with `{ctx.prefix}staff add`."
        )
    if not await ctx.repos.programmes.add_author(p.id, user, ctx.caller.user_id, ctx.now):
        await ctx.rooms.invite(p.room_id, user)
        ctx.reply(f"{user} is already an author of {p.label}; I've sent the invitation to its room again.")
        return
    await ctx.rooms.invite(p.room_id, user)
    await changed(ctx, p, f"added {user} as an author")


@registry.command(
    "programme add",
    Param("programme", ProgrammeId(), optional=True),
    Param("title", Text("title", max_len=200)),
    Param("due", DueOffset(), keyword="due"),
    Param("points", POINTS, keyword="points", optional=True),
    Param("publish_at", DueOffset(), keyword="publish", optional=True),
    Param("description", Markdown("description"), body=True, optional=True),
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
    ctx: Context, programme: int | None, title: str, due: Offset, points: float | None, publish_at: Offset | None,
    description: str | None,
) -> None:
    p = await editable(ctx, programme)
    await room_for_more(ctx, p)
    if publish_at is not None and publish_at.sort_key() >= due.sort_key():
        raise BadArgument(f"It must be posted ({publish_at.text()}) before it is due ({due.text()}).")
    points = points if points is not None else DEFAULT_POINTS
    item = await ctx.repos.programmes.add_item(
        p.id, "assignment", title, description or "", points, due.text(),
        publish_at.text() if publish_at else None, None, ctx.caller.user_id, ctx.now,
    )
    await changed(ctx, p, f"added {item.short_id} “{title}” — {_item_words(item)}", item=item)


@registry.command(
    "programme resource",
    Param("programme", ProgrammeId(), optional=True),
    Param("title", Text("title", max_len=200)),
    Param("body", Markdown("resource"), body=True),
    who=Role.STAFF,
    summary="Add a resource (markdown, links) to a programme.",
    details='Example: `!programme resource P1 "Reading: Newton\'s laws"` with the text and links on the following lines.',
)
async def programme_resource(ctx: Context, programme: int | None, title: str, body: str) -> None:
    p = await editable(ctx, programme)
    await room_for_more(ctx, p)
    item = await ctx.repos.programmes.add_item(
        p.id, "resource", title, body, None, None, None, None, ctx.caller.user_id, ctx.now
    )
    await changed(ctx, p, f"added {item.short_id} “{title}” — resource", item=item)


@registry.command(
    "programme import",
    Param("programme", ProgrammeId(), optional=True),
    Param("assignment", AssignmentId()),
    Param("source", ClassCode(), keyword="from"),
    Param("due", DueOffset(), keyword="due", optional=True),
    who=Role.STAFF,
    summary="Bring an assignment of a class you teach into a programme.",
    details=(
        "Example: `!programme import P1 A3 from PHYS12`. Its title, description and points are copied "
        "(never any learner's work); its due time becomes an offset counted from the week it was set, "
        "unless you give one with `due week 2 fri 17:00`."
    ),
)
async def programme_import(ctx: Context, programme: int | None, assignment: str, source: str, due: Offset | None) -> None:
    p = await editable(ctx, programme)
    await room_for_more(ctx, p)
    klass = await ctx.repos.classes.by_code(source)
    if klass is None:
        raise NotFound(await unknown_class(ctx.repos, ctx.caller.user_id, source))
    if not ctx.caller.is_operator and await ctx.repos.classes.role_of(klass.id, ctx.caller.user_id) != "teacher":
        raise NotAllowed(f"Only a teacher of {klass.name} can bring its assignments into a programme.")
    a = await ctx.repos.assignments.by_number(klass.id, int(assignment[1:]))
    if a is None:
        numbers = [x.number for x in await ctx.repos.assignments.of_class(klass.id)]
        exist = f"its assignments are {id_ranges('A', numbers)}" if numbers else "it has no assignments yet"
        raise NotFound(f"{klass.name} has no assignment {assignment}; {exist}.")
    offset = due or offset_of(a.due_at, a.published_at or a.created_at, ZoneInfo(klass.timezone))
    item = await ctx.repos.programmes.add_item(
        p.id, "assignment", a.title, a.description, a.points, offset.text(), None, f"{klass.code} {a.short_id}",
        ctx.caller.user_id, ctx.now,
    )
    await changed(
        ctx, p, f"imported {a.short_id} of {klass.code} as {item.short_id} “{a.title}” — {_item_words(item)}", item=item
    )


@registry.command(
    "programme move",
    Param("programme", ProgrammeId(), optional=True),
    Param("item", ItemId()),
    Param("position", Number("position", minimum=1, integer=True), keyword="to"),
    who=Role.STAFF,
    summary="Move an item of a programme to another place in its order.",
    details="Example: `!programme move P1 I3 to 1` makes I3 the first item.",
)
async def programme_move(ctx: Context, programme: int | None, item: int, position: int) -> None:
    p = await editable(ctx, programme)
    found = await find_item(ctx, p, item)
    count = len(await ctx.repos.programmes.items(p.id))
    position = min(position, count)
    if found.position == position:
        raise Conflict(f"{found.short_id} is already item {position} of {count}.")
    await ctx.repos.programmes.move_item(p.id, found.number, position)
    await changed(ctx, p, f"moved {found.short_id} “{found.title}” to place {position} of {count}")


@registry.command(
    "programme remove",
    Param("programme", ProgrammeId(), optional=True),
    Param("item", ItemId()),
    who=Role.STAFF,
    summary="Remove an item from a programme (its history keeps it).",
)
async def programme_remove(ctx: Context, programme: int | None, item: int) -> None:
    p = await editable(ctx, programme)
    found = await find_item(ctx, p, item)
    await ctx.repos.programmes.remove_item(p.id, found.number, ctx.now)
    await changed(ctx, p, f"removed {found.short_id} “{found.title}”", removed=found.short_id)


# --- commands: reading programmes


def _quote(text: str, limit: int = 400) -> list[str]:
    text = text.strip()
    if not text:
        return []
    if len(text) > limit:
        text = text[:limit].rstrip() + "…"
    return ["   > " + line if line.strip() else "   >" for line in text.splitlines()]


def _day(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"


@registry.command(
    "programme show",
    Param("programme", ProgrammeId(), optional=True),
    who=Role.ANYONE,
    summary="Show a programme: its authors, version and items in order.",
    details="Staff see every programme; anyone sees those in the library.",
    reads_only=True,
)
async def programme_show(ctx: Context, programme: int | None) -> None:
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
        lines.append(f"{i.position}. **{i.short_id} {i.title}** — {_item_words(i)}")
        lines += _quote(i.body)
    if ctx.caller.is_staff or ctx.caller.is_operator:
        for use in await ctx.repos.programmes.uses(p.id):
            klass = await ctx.repos.classes.get(use.class_id)
            if klass is not None:
                lines.append(f"Used in {klass.label} from {_day(use.start)} (version {use.version}).")
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
    Param("programme", ProgrammeId(), optional=True),
    who=Role.STAFF,
    summary="Every change to a programme: version, when, who and what.",
    reads_only=True,
)
async def programme_history(ctx: Context, programme: int | None) -> None:
    p = await find(ctx, programme)
    lines = [f"**History of {p.label}**"]
    for c in await ctx.repos.programmes.history(p.id):
        lines.append(f"- v{c.version} · {when.show(c.at, ctx.tz)} · {c.actor} {c.summary}")
    ctx.reply("\n".join(lines))


# --- using a programme in a class


@registry.command(
    "programme use",
    Param("programme", ProgrammeId(), optional=True),
    Param("target", ClassCode()),
    Param("start", StartDate(), keyword="start"),
    who=Role.STAFF,
    summary="Put a programme into a class you teach: its assignments get real due dates from the start date.",
    details=(
        "Example: `!programme use P1 PHYS12 start next monday`. Due times are read on the class's clock "
        "(its time zone), so `week 2 fri 17:00` is 17:00 there even across a daylight-saving change. "
        "Assignments are posted in the class room (or when their `publish` offset comes); resources are "
        "posted there too."
    ),
)
async def programme_use(ctx: Context, programme: int | None, target: str, start: str) -> None:
    repos = ctx.repos
    p = await find(ctx, programme)
    klass = await repos.classes.by_code(target)
    if klass is None:
        raise NotFound(await unknown_class(ctx.repos, ctx.caller.user_id, target))
    if not ctx.caller.is_operator and await repos.classes.role_of(klass.id, ctx.caller.user_id) != "teacher":
        raise NotAllowed(f"Only a teacher of {klass.name} can put a programme into it.")
    if klass.archived:
        raise NotAllowed(f"{klass.name} is archived: it can be read, not changed.")
    class_room = await repos.rooms.of_class(klass.id, "class")
    if class_room is None:
        raise NotFound(f"{klass.name} has no class room to post the programme in.")
    earlier = await repos.programmes.use_in(p.id, klass.id)
    if earlier is not None:
        raise Conflict(f"{p.label} is already in {klass.label} (version {earlier.version}, from {_day(earlier.start)}).")
    items = await repos.programmes.items(p.id)
    if not items:
        raise Conflict(f"{p.label} has no items yet.")
    tz = ZoneInfo(klass.timezone)
    moment = when.parse_when(start, ctx.now, tz)
    if moment is None:
        raise BadArgument(f"“{start}” is not a date I understand; try 2026-09-21, monday or next monday.")
    start_day = moment.astimezone(tz).date()

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
            f"Starting {_day(start_day)}, these would be due in the past or before the start: {'; '.join(wrong)}. "
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
    await ctx.rooms.set_state(
        class_room.room_id, STATE_USE, p.short_id,
        {
            "programme": p.short_id, "title": p.title, "version": p.version, "start": start_day.isoformat(),
            "timezone": klass.timezone, "items": {f"I{n}": shown.get(n) for n in made}, "by": ctx.caller.user_id,
        },
    )
    ctx.services.timetable.changed()  # new due dates: reminders, and posts at their publish offset
    ctx.send(p.room_id, f"{ctx.caller.user_id} put version {p.version} into {klass.label}, starting {_day(start_day)}.")
    ctx.reply(
        f"Put **{p.label}** (version {p.version}) into {klass.label}, starting {_day(start_day)} ({klass.timezone}):\n"
        + "\n".join(lines)
    )


# --- the library


async def library_room(ctx: Context) -> tuple[str, str | None]:
    """The library room (made on first need) and its alias, if it got one."""
    repos = ctx.repos
    room = await repos.cluster_rooms.get(LIBRARY)
    if room is not None:
        return room, await repos.cluster_rooms.alias(LIBRARY)
    kwargs = dict(
        name="Ako library",
        topic=(
            "Programmes of learning shared by the schools of this cluster. Materials only — no learner's "
            "work or data. Readable by anyone, without an account at a member school."
        ),
        history_visibility="world_readable",
        join_rule="public",
        directory=True,
        guest_access="can_join",
        events_default=50,  # read-only: only Ako posts
    )
    alias: str | None = f"#{LIBRARY_ALIAS}:{server_of(ctx.settings.bot_user_id)}"
    try:
        room = await ctx.rooms.create_room(**kwargs, alias=LIBRARY_ALIAS)
    except GatewayError as e:  # the alias is taken (a library from an earlier database): make one without
        log.warning("Could not create the library as %s (%s); creating it without an alias", alias, e)
        room, alias = await ctx.rooms.create_room(**kwargs), None
    await repos.cluster_rooms.put(LIBRARY, room, ctx.now, alias)
    return room, alias


def library_post(p: Programme, authors: list[str], items: list[ProgrammeItem], prefix: str) -> str:
    lines = [f"**{p.label}** · version {p.version} · by {', '.join(authors)}"]
    for i in items:
        lines.append(f"{i.position}. **{i.title}** — {_item_words(i)}")
        lines += _quote(i.body, limit=4000)
    lines.append(f"Teachers of the cluster put it into a class with `{prefix}programme use {p.short_id} <class code> start <date>`.")
    return "\n".join(lines)


@registry.command(
    "programme publish",
    Param("programme", ProgrammeId(), optional=True),
    who=Role.STAFF,
    summary="List a programme in the cluster's public, world-readable library room.",
    details="Only its materials go there (items as written), never anything of a class or a learner.",
)
async def programme_publish(ctx: Context, programme: int | None) -> None:
    p = await editable(ctx, programme)
    if p.published:
        raise Conflict(f"{p.label} is already in the library; its entry follows every change.")
    room, alias = await library_room(ctx)
    await ctx.repos.programmes.set_published(p.id, ctx.caller.user_id, ctx.now)
    p = await changed(
        ctx, await find(ctx, p.id), "listed it in the library",
        note=f"It is in the library room {alias or room}: anyone can read it there, with or without an account at a member school.",
    )
    authors = await ctx.repos.programmes.authors(p.id)
    ctx.send(room, library_post(p, authors, await ctx.repos.programmes.items(p.id), ctx.prefix))


@registry.command(
    "programme unpublish",
    Param("programme", ProgrammeId(), optional=True),
    who=Role.STAFF,
    summary="Take a programme out of the library.",
)
async def programme_unpublish(ctx: Context, programme: int | None) -> None:
    p = await editable(ctx, programme)
    if not p.published:
        raise Conflict(f"{p.label} is not in the library.")
    room, _ = await library_room(ctx)
    await ctx.repos.programmes.set_published(p.id, None, None)
    await ctx.rooms.set_state(room, STATE_LIBRARY, p.short_id, {})
    ctx.send(room, f"**{p.label}** has been taken out of the library by its authors.")
    await changed(ctx, await find(ctx, p.id), "took it out of the library")


@registry.command("library", who=Role.ANYONE, summary="The programmes in the cluster's public library.", reads_only=True)
async def library(ctx: Context) -> None:
    found = await ctx.repos.programmes.published()
    room = await ctx.repos.cluster_rooms.get(LIBRARY)
    alias = await ctx.repos.cluster_rooms.alias(LIBRARY)
    if not found:
        ctx.reply(f"The library is empty. Authors list a programme there with `{ctx.prefix}programme publish P1`.")
        return
    lines = [f"**Library** — programmes shared by the cluster's schools, readable by anyone in {alias or room}"]
    for p in found:
        authors = await ctx.repos.programmes.authors(p.id)
        items = await ctx.repos.programmes.items(p.id)
        lines.append(f"- **{p.label}** · v{p.version} · {len(items)} items · by {', '.join(authors)}")
    lines.append(f"`{ctx.prefix}programme show P1` shows one.")
    ctx.reply("\n".join(lines))
