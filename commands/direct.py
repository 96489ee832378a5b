"""Direct messages with Ako: which room is someone's, judged when private content is about to go there.

A room is recorded as a user's direct message when they invite Ako to it "as direct", or when Ako
starts one for them. Being invited as direct says nothing about who else is, or will be, in the
room: a teacher can start a "direct message" with Ako and a learner. So a recorded DM counts as
that person's DM with Ako only while its members (joined or invited) are exactly that person and
Ako, checked each time something private is about to be sent there.
"""

from __future__ import annotations

import logging

from storage.models import Room, RoomKind

from .context import GatewayError, OnServices, ScheduledPoster, Services
from .provision import room_key

log = logging.getLogger("ako.direct")


def not_alone(what: str) -> str:
    """The sentence for a private answer asked for in a "direct message" others are in."""
    return f"This room has other people in it; I send {what} only in a direct message with just you and me."


async def is_dm_of(services: Services, room: Room | None, user: str) -> bool:
    """True when the room is the user's direct message with Ako, with nobody else in it now."""
    if room is None or room.kind != RoomKind.DM:
        return False
    if room.owner is None:  # recorded without an owner: a room for operators' set-up, shared by design
        return True
    if room.owner != user:
        return False
    try:
        members = set(await services.matrix.members(room.room_id))
    except GatewayError as e:  # cannot tell who is there: not private
        log.warning("Could not read the members of %s: %s", room.room_id, e)
        return False
    return members == {user, services.settings.bot_user_id}


async def dm_for(services: Services, user: str) -> Room | None:
    """The user's newest recorded direct message with Ako that has only the two of them in it."""
    for room in await services.repos.rooms.dms_of(user):
        if await is_dm_of(services, room, user):
            return room
    return None


async def open_dm(on: OnServices, user: str) -> tuple[str, bool]:
    """The user's direct message with Ako, started now if there is none with just the two of them; True when new."""
    dm = await dm_for(on.services, user)
    if dm is not None:
        return dm.room_id, False
    room_id = await on.matrix.create_room(
        name="Ako",
        topic="Your direct messages with Ako: exports and anything private.",
        invite=[user],
        direct=True,
        key=room_key(on, f"direct message with {user}"),  # a command handled again after a crash: the same room
    )
    await on.repos.rooms.add(room_id, RoomKind.DM, None, user, on.now)
    return room_id, True


async def private_room_for(services: Services, user: str) -> str | None:
    """For the scheduler: the user's DM with just them and Ako, or one started now, so that nothing
    personal is dropped because a DM gained members. None only when the homeserver refuses a new room."""
    dm = await dm_for(services, user)
    if dm is not None:
        return dm.room_id
    try:
        room_id, _ = await open_dm(ScheduledPoster(services), user)
    except GatewayError as e:
        log.warning("Could not start a direct message with %s: %s", user, e)
        return None
    log.info("Started a direct message with %s: none had just the two of us", user)
    return room_id
