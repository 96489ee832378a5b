"""A programme's record in its rooms: its state (the whole, and one event per item), its entry in
the library, and one notice line per change; and how its items read in replies."""

from __future__ import annotations

import json
from datetime import date

from storage.programmes import Programme, ProgrammeItem

from .context import Context
from .converters import number
from .publishing import STATE_DESCRIPTION_BYTES, cut_to_bytes

STATE_PROGRAMME = "nz.ako.programme"
STATE_ITEM = "nz.ako.programme.item"
STATE_LIBRARY = "nz.ako.library.entry"  # in the library room, state key = programme id
LIBRARY = "library"  # the library room's name among the cluster's rooms
LIBRARY_ENTRY_BYTES = 40_000


def item_state(p: Programme, item: ProgrammeItem, version: int) -> dict:
    description = cut_to_bytes(item.body, STATE_DESCRIPTION_BYTES)
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
                    "id": i.short_id, "kind": i.kind, "title": i.title, "description": cut_to_bytes(i.body, budget),
                    "points": i.points, "due": i.due, "publish": i.publish,
                }
                for i in items
            ],
        }
        if len(json.dumps(entry, ensure_ascii=False).encode()) <= LIBRARY_ENTRY_BYTES or budget < 100:
            return entry
        budget //= 2


def item_words(item: ProgrammeItem) -> str:
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
        await ctx.matrix.set_state(p.room_id, STATE_ITEM, item.short_id, item_state(p, item, version))
    if removed is not None:
        await ctx.matrix.set_state(p.room_id, STATE_ITEM, removed, {})  # empty content: removed
    await ctx.matrix.set_state(p.room_id, STATE_PROGRAMME, "", programme_state(p, authors, items))
    if p.published:
        library = await repos.cluster_rooms.get(LIBRARY)
        if library:
            await ctx.matrix.set_state(library, STATE_LIBRARY, p.short_id, library_entry(p, authors, items))
    line = f"**{p.short_id} v{version}** · {ctx.caller.user_id} {summary}"
    ctx.reply(f"{line}\n{note}" if note else line)
    if ctx.room_id != p.room_id:
        ctx.send(p.room_id, line)
    return p


def quoted_lines(text: str, limit: int = 400) -> list[str]:
    text = text.strip()
    if not text:
        return []
    if len(text) > limit:
        text = text[:limit].rstrip() + "…"
    return ["   > " + line if line.strip() else "   >" for line in text.splitlines()]


def day_text(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"
