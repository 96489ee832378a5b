"""!help: generated from the same declarations that parse the commands."""

from __future__ import annotations

from typing import Annotated

from .context import Context, Role, Where
from .converters import Text
from .errors import NotFound
from .registry import Command, Rest, registry


def _usable_here(cmd: Command, ctx: Context) -> bool:
    kind = ctx.room.kind if ctx.room else None
    if cmd.where is Where.CLASS_ROOM and kind not in ("class", "dm"):
        return False
    if cmd.where is Where.WORK_ROOM and kind not in ("work", "dm"):
        return False
    if cmd.where is Where.DM and kind != "dm":
        return False
    if cmd.who in (Role.TEACHER, Role.MEMBER, Role.LEARNER) and ctx.klass is None:
        # outside a class room: show class commands to those who are in some class
        return ctx.caller.is_operator or ctx.caller.is_staff or cmd.who is not Role.TEACHER
    return ctx.caller.has(cmd.who)


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
            group = [c for c in registry.all() if c.name.split()[0] == name.lower().split()[0]]
            if not group:
                raise NotFound(f"There is no command {prefix}{name}. `{prefix}help` lists them.")
            ctx.reply("\n".join(f"- `{c.usage(prefix)}` — {c.summary}" for c in group))
            return
        lines = [f"`{cmd.usage(prefix)}`", cmd.summary]
        if cmd.details:
            lines.append(cmd.details.replace("!", prefix))
        where = "" if cmd.where is Where.ANYWHERE else f" · where: {cmd.where.value}"
        lines.append(f"Who: {cmd.permission_text()}{where}.")
        if cmd.needs_class:
            lines.append(f"In a direct message, put the class code first: `{prefix}{cmd.name} CODE …`.")
        if cmd.aliases:
            lines.append("Also: " + ", ".join(f"`{prefix}{a}`" for a in cmd.aliases))
        ctx.reply("\n".join(lines))
        return
    usable = [c for c in registry.all() if _usable_here(c, ctx)]
    where = f" in {ctx.klass.name}" if ctx.klass else ""
    lines = [f"**Commands you can use here{where}**"]
    lines += [f"- `{c.usage(prefix)}` — {c.summary}" for c in usable]
    lines.append(f"\n`{prefix}help <command>` shows more about one.")
    ctx.reply("\n".join(lines))
