"""The library: one world-readable room (public, in the room directory, ``#<bot>-library:<server>``,
``#ako-library`` for ``@ako``) where authors list finished programmes: materials only, never
anything of a learner's."""

from __future__ import annotations

import logging
from typing import Annotated

from storage.models import server_of
from storage.programmes import Programme, ProgrammeItem

from .context import Context, GatewayError, Role
from .errors import Conflict
from .programme_record import LIBRARY, STATE_LIBRARY, changed, item_words, quoted_lines
from .programme_refs import AuthoredProgramme, find
from .registry import registry

log = logging.getLogger("ako.library")



def library_alias(bot_user_id: str) -> str:
    """The library's alias, named for the bot, so that two Akos on one homeserver (two clusters)
    each get theirs: ``@ako:…`` → ``ako-library``."""
    return f"{bot_user_id[1:].split(':', 1)[0].lower()}-library"


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
    local = library_alias(ctx.settings.bot_user_id)
    alias: str | None = f"#{local}:{server_of(ctx.settings.bot_user_id)}"
    try:
        room = await ctx.matrix.create_room(**kwargs, alias=local)
    except GatewayError as e:  # the alias is taken (a library from an earlier database): make one without
        log.warning("Could not create the library as %s (%s); creating it without an alias", alias, e)
        room, alias = await ctx.matrix.create_room(**kwargs), None
    await repos.cluster_rooms.put(LIBRARY, room, ctx.now, alias)
    return room, alias


def library_post(p: Programme, authors: list[str], items: list[ProgrammeItem], prefix: str) -> str:
    lines = [f"**{p.label}** · version {p.version} · by {', '.join(authors)}"]
    for i in items:
        lines.append(f"{i.position}. **{i.title}** — {item_words(i)}")
        lines += quoted_lines(i.body, limit=4000)
    lines.append(f"Teachers of the cluster put it into a class with `{prefix}programme use {p.short_id} <class code> start <date>`.")
    return "\n".join(lines)


@registry.command(
    "programme publish",
    who=Role.STAFF,
    summary="List a programme in the cluster's public, world-readable library room.",
    details="Only its materials go there (items as written), never anything of a class or a learner.",
)
async def programme_publish(ctx: Context, p: Annotated[Programme, AuthoredProgramme()] = None) -> None:
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
    who=Role.STAFF,
    summary="Take a programme out of the library.",
)
async def programme_unpublish(ctx: Context, p: Annotated[Programme, AuthoredProgramme()] = None) -> None:
    if not p.published:
        raise Conflict(f"{p.label} is not in the library.")
    room, _ = await library_room(ctx)
    await ctx.repos.programmes.set_published(p.id, None, None)
    await ctx.matrix.set_state(room, STATE_LIBRARY, p.short_id, {})
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
