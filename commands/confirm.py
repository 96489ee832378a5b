"""``!confirm``: an action that waits for the same user to confirm it in the same room, within
ten minutes. A feature names its actions with :func:`confirmable` and asks with :func:`ask_to_confirm`."""

from __future__ import annotations

from datetime import timedelta
from typing import Awaitable, Callable

from . import when
from .context import Context, Role
from .errors import Conflict, NotFound
from .registry import registry

CONFIRM_WITHIN = timedelta(minutes=10)

Confirmable = Callable[[Context, dict], Awaitable[None]]
_confirmables: dict[str, Confirmable] = {}


def confirmable(action: str) -> Callable[[Confirmable], Confirmable]:
    """Name an action that :func:`ask_to_confirm` may hold until ``!confirm``."""

    def register(fn: Confirmable) -> Confirmable:
        _confirmables[action] = fn
        return fn

    return register


async def ask_to_confirm(ctx: Context, action: str, payload: dict, question: str) -> None:
    if action not in _confirmables:
        raise ValueError(f"No confirmable action {action!r}")
    await ctx.repos.confirmations.forget_expired(ctx.now)  # questions nobody answered in time are cleared
    await ctx.repos.confirmations.put(
        ctx.caller.user_id, ctx.room_id, action, payload, question, ctx.now, ctx.now + CONFIRM_WITHIN
    )
    minutes = int(CONFIRM_WITHIN.total_seconds() // 60)
    ctx.reply(f"{question}\nType `{ctx.prefix}confirm` here within {minutes} minutes to go ahead; otherwise nothing changes.")


@registry.command("confirm", who=Role.ANYONE, summary="Go ahead with the action I asked you to confirm here.")
async def confirm(ctx: Context) -> None:
    pending = await ctx.repos.confirmations.take(ctx.caller.user_id, ctx.room_id)
    if pending is None:
        raise NotFound("There is nothing waiting for your confirmation in this room.")
    if pending.expires_at <= ctx.now:
        raise Conflict(f"That request expired at {when.show(pending.expires_at, ctx.tz)}; run the command again.")
    await _confirmables[pending.action](ctx, pending.payload)
