"""!help: generated from the same declarations that parse the commands."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from .checks import refusal
from .context import Context, Role, Where
from .converters import Text
from .errors import NotFound
from .registry import Command, Rest, registry


def _usable_here(cmd: Command, ctx: Context, in_each_class: list[Context]) -> bool:
    """Exactly when the dispatcher would not refuse ``cmd`` here. In a room of no class, a class
    command names its class by code: it is usable when one of the classes would let the caller."""
    if not cmd.needs_class or ctx.klass is not None:
        return refusal(cmd, ctx) is None
    return any(refusal(cmd, as_in) is None for as_in in in_each_class)


async def _as_in_each_class(ctx: Context) -> list[Context]:
    """The context as the dispatcher would build it for each class the caller could name."""
    mine = await ctx.repos.classes.of_user(ctx.caller.user_id)
    roles: set[str | None] = {role for _, role in mine}
    if await ctx.repos.classes.count() > len(mine):  # a class the caller is not in
        roles.add(None)
    return [replace(ctx, caller=replace(ctx.caller, class_role=role)) for role in roles]


def _group(words: list[str]) -> list[Command]:
    """The commands whose names begin with the most of these words: `!help assign edit` lists the
    `assign edit …` commands, `!help class foo` every `class …` command."""
    for size in range(len(words), 0, -1):
        found = [c for c in registry.all() if c.name.split()[:size] == words[:size]]
        if found:
            return found
    return []


@registry.command(
    "help",
    who=Role.ANYONE,
    summary="List the commands you can use here, or show how to use one.",
    reads_only=True,
)
async def help_(ctx: Context, command: Annotated[str | None, Text("command", max_len=60), Rest] = None) -> None:
    prefix = ctx.prefix
    if command:
        name = command.strip().removeprefix(prefix)
        cmd = registry.find(name)
        if cmd is None:
            group = _group(name.lower().split())
            if not group:
                raise NotFound(f"There is no command {prefix}{name}. `{prefix}help` lists them.")
            ctx.reply("\n".join(f"- `{c.usage(prefix)}` — {c.summary}" for c in group))
            return
        lines = [f"`{cmd.usage(prefix)}`", cmd.summary]
        if cmd.details:
            lines.append(cmd.details.replace("!", prefix))
        where = "" if cmd.where is Where.ANYWHERE else f" · where: {cmd.where.value}"
        lines.append(f"Who: {cmd.permission_text()}{where}.")
        lines += [check.help for check in cmd.checks]
        if cmd.needs_class and cmd.where in (Where.CLASS, Where.ANYWHERE):
            lines.append(f"In a direct message, put the class code first: `{cmd.usage(prefix, code='CODE')}`.")
        if cmd.aliases:
            lines.append("Also: " + ", ".join(f"`{prefix}{a}`" for a in cmd.aliases))
        ctx.reply("\n".join(lines))
        return
    in_each_class = await _as_in_each_class(ctx) if ctx.klass is None else []
    usable = [c for c in registry.all() if _usable_here(c, ctx, in_each_class)]
    where = f" in {ctx.klass.name}" if ctx.klass else ""
    lines = [f"**Commands you can use here{where}**"]
    lines += [f"- `{c.usage(prefix)}` — {c.summary}" for c in usable]
    lines.append(f"\n`{prefix}help <command>` shows more about one.")
    ctx.reply("\n".join(lines))
