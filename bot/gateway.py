"""The handlers' RoomGateway, on matrix-nio."""

from __future__ import annotations

import hashlib
import io
import logging

import nio

from commands.context import GatewayError, NewRoom

from .fault_points import crash_point

log = logging.getLogger("ako.matrix")

# Room versions in which the creators hold unlimited power and must not be listed in
# m.room.power_levels "users" (room version 12, MSC4289).
CREATOR_POWER_VERSIONS = {"12", "org.matrix.hydra.11"}


def canonical(value):
    """Matrix events are canonical JSON, which has no floats: 20.0 → 20, 20.5 → "20.5"."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else repr(value)
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def key_alias(key: str) -> str:
    """The alias a room made for ``key`` gets: the homeserver keeps it with the room, atomically,
    so a command handled again after a crash (its records rolled back, its rooms not) finds the
    room it made instead of making another. Hashed: the key names no one."""
    return "ako-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _check(resp, what: str):
    if isinstance(resp, nio.ErrorResponse):
        raise GatewayError(f"{what} failed: {resp.status_code} {resp.message}")
    return resp


class MatrixGateway:
    def __init__(self, client: nio.AsyncClient, bot_user_id: str, server_name: str, creator_power: bool):
        self.client = client
        self.bot_user_id = bot_user_id
        self.server_name = server_name
        # True when new rooms give their creator unlimited power (v12+): the bot stays out of "users".
        self.creator_power = creator_power

    async def create_room(self, **fields) -> str:
        """The room ``NewRoom(**fields)`` describes. Its ``key`` names the room before it exists (see
        :func:`key_alias`): created again with the same key, the room made the first time is returned."""
        room = NewRoom(**fields)
        alias = room.alias if room.key is None else key_alias(room.key)
        users = dict(room.power or {})
        if not self.creator_power:
            users[self.bot_user_id] = 100
        pl = {
            "users": users,
            "users_default": 0,
            "events_default": room.events_default,
            "state_default": 50,
            "invite": 50,
            "kick": 50,
            "ban": 50,
            "redact": 50,
            "events": {
                "m.room.power_levels": 100,
                "m.room.encryption": 100,
                "m.room.server_acl": 100,
                "m.room.tombstone": 100,
                "m.room.history_visibility": 100,
                "m.room.join_rules": 100,
                "m.space.child": 50,
                "m.room.name": 50,
                "m.room.topic": 50,
                "m.room.avatar": 50,
                "m.reaction": 0,
            },
        }
        initial_state = [
            {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": room.history_visibility}},
            {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": room.guest_access}},
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": room.join_rule}},
        ]
        if room.encrypted:
            initial_state.append(
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
            )
        if room.parent:
            initial_state.append(
                {"type": "m.space.parent", "state_key": room.parent, "content": {"via": [self.server_name], "canonical": True}}
            )
        resp = await self.client.room_create(
            name=room.name,
            topic=room.topic or None,
            invite=list(room.invite),
            initial_state=initial_state,
            power_level_override=pl,
            space=room.space,
            is_direct=room.direct,
            visibility=nio.RoomVisibility.public if room.directory else nio.RoomVisibility.private,
            alias=alias,
        )
        if room.key is not None and isinstance(resp, nio.ErrorResponse) and resp.status_code == "M_ROOM_IN_USE":
            found = await self.client.room_resolve_alias(f"#{alias}:{self.server_name}")
            room_id = _check(found, f"Finding the room {room.name!r} made before").room_id
            log.info("Reusing %s (%s), made for the same command before a restart", room_id, room.name)
            return room_id
        room_id = _check(resp, f"Creating room {room.name!r}").room_id
        crash_point("room-created")
        log.info("Created %s %s (%s), invited %s", "space" if room.space else "room", room_id, room.name, ", ".join(room.invite) or "nobody")
        return room_id

    async def add_child(self, space_id: str, room_id: str) -> None:
        await self.set_state(space_id, "m.space.child", room_id, {"via": [self.server_name], "suggested": True})

    async def invite(self, room_id: str, user_id: str) -> None:
        resp = await self.client.room_invite(room_id, user_id)
        if isinstance(resp, nio.ErrorResponse):
            # Already invited or joined is fine: the invite is a convenience, the record is what counts.
            if resp.status_code in ("M_FORBIDDEN",) and "already" in (resp.message or "").lower():
                return
            raise GatewayError(f"Inviting {user_id} to {room_id} failed: {resp.status_code} {resp.message}")

    async def kick(self, room_id: str, user_id: str, reason: str) -> None:
        resp = await self.client.room_kick(room_id, user_id, reason)
        if isinstance(resp, nio.ErrorResponse):
            log.info("Could not remove %s from %s: %s %s", user_id, room_id, resp.status_code, resp.message)

    async def _power_levels(self, room_id: str) -> dict:
        resp = await self.client.room_get_state_event(room_id, "m.room.power_levels")
        return dict(_check(resp, f"Reading power levels of {room_id}").content)

    async def set_power(self, room_id: str, user_id: str, level: int) -> None:
        pl = await self._power_levels(room_id)
        users = dict(pl.get("users", {}))
        if users.get(user_id) == level:
            return
        users[user_id] = level
        pl["users"] = users
        await self.set_state(room_id, "m.room.power_levels", "", pl)

    async def make_read_only(self, room_id: str, level: int) -> None:
        pl = await self._power_levels(room_id)
        pl["events_default"] = level
        await self.set_state(room_id, "m.room.power_levels", "", pl)

    async def set_state(self, room_id: str, event_type: str, state_key: str, content: dict) -> None:
        resp = await self.client.room_put_state(room_id, event_type, canonical(content), state_key=state_key)
        _check(resp, f"Writing {event_type} in {room_id}")

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict | None:
        resp = await self.client.room_get_state_event(room_id, event_type, state_key)
        if isinstance(resp, nio.ErrorResponse) and resp.status_code == "M_NOT_FOUND":
            return None
        return _check(resp, f"Reading {event_type} in {room_id}").content

    async def redact(self, room_id: str, event_id: str, reason: str) -> None:
        resp = await self.client.room_redact(room_id, event_id, reason=reason)
        _check(resp, f"Redacting {event_id} in {room_id}")

    async def upload(self, data: bytes, filename: str, mimetype: str) -> str:
        resp, _ = await self.client.upload(io.BytesIO(data), content_type=mimetype, filename=filename, filesize=len(data))
        return _check(resp, f"Uploading {filename}").content_uri

    async def get_event(self, room_id: str, event_id: str) -> dict | None:
        resp = await self.client.room_get_event(room_id, event_id)
        if isinstance(resp, nio.ErrorResponse):
            return None
        return resp.event.source

    async def members(self, room_id: str) -> list[str]:
        resp = await self.client.room_get_state(room_id)
        events = _check(resp, f"Reading the members of {room_id}").events
        return [
            e["state_key"] for e in events
            if e.get("type") == "m.room.member" and (e.get("content") or {}).get("membership") in ("join", "invite")
        ]

    async def leave(self, room_id: str) -> None:
        resp = await self.client.room_leave(room_id)
        if isinstance(resp, nio.ErrorResponse):
            log.info("Could not leave %s: %s %s", room_id, resp.status_code, resp.message)
