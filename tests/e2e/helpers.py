"""Small steps every end-to-end test takes."""

from __future__ import annotations

from tests.matrix_user import MatrixUser


async def open_dm(user: MatrixUser, bot_id: str) -> str:
    """A direct message with the bot, once the bot has joined it."""
    room = await user.dm(bot_id)
    await user.wait_for(
        room,
        lambda e: e["type"] == "m.room.member" and e["state_key"] == bot_id and e["content"]["membership"] == "join",
        timeout=30,
        since=0,
    )
    return room


async def join_invite(user: MatrixUser, room_id: str) -> None:
    await user.wait_invite(lambda i: i["room_id"] == room_id, timeout=30)
    await user.join(room_id)
