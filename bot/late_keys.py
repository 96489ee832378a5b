"""Room keys owed to a device whose owner's signature reached Ako after Ako had written to it.

Ako shares a room key only with devices cross-signed by their owner (bot/device_trust.py). The
evidence travels over federation and can lag: a learner's brand-new device may look unsigned for
a second while her school's server passes on her signature, or she verifies the new device a
minute after typing a command. Ako's answer in between went out under a room key that device
was refused, and her client shows "Unable to decrypt" for good: Element asks nobody for missing
keys, and Ako's next message starts a new key.

So Ako keeps, for a while, the first key of each room key it makes (what every device it was
shared with received). When a device refused for want of its owner's signature becomes signed,
it receives those first keys for the rooms where it had been refused; it can then read exactly
what it was there for. Devices refused for any other reason (a blocked or unregistered server),
devices that were not in the room when the key was made, and keys older than ``KEEP`` get
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

KEEP = timedelta(hours=1)


@dataclass
class _Made:
    room_id: str
    session: object  # nio's OutboundGroupSession: users_shared_with / users_ignored, kept up to date by nio
    first_key: str  # the session key at index 0, as every device it was shared with received it
    made_at: datetime


@dataclass(frozen=True)
class Owed:
    room_id: str
    session_id: str
    session_key: str


class LateKeys:
    """The first keys of recent room keys, and which of them a newly signed device is owed."""

    def __init__(self, now) -> None:
        self._now = now  # () -> aware datetime
        self._made: dict[str, _Made] = {}
        self._unsigned: set[tuple[str, str]] = set()  # devices refused for want of their owner's signature

    def made(self, room_id: str, session) -> None:
        """A room key was just made (nothing has been encrypted with it yet)."""
        self._forget_old()
        self._made[session.id] = _Made(room_id, session, session.session_key, self._now())

    def refused_unsigned(self, user_id: str, device_id: str) -> None:
        self._unsigned.add((user_id, device_id))

    def refused_otherwise(self, user_id: str, device_id: str) -> None:
        self._unsigned.discard((user_id, device_id))

    def signed(self, user_id: str, device_id: str) -> list[Owed]:
        """The device is now signed by its owner: the first keys it was refused while it looked unsigned."""
        if (user_id, device_id) not in self._unsigned:
            return []
        self._unsigned.discard((user_id, device_id))
        self._forget_old()
        device = (user_id, device_id)
        return [
            Owed(m.room_id, sid, m.first_key)
            for sid, m in self._made.items()
            if device in m.session.users_ignored and device not in m.session.users_shared_with
        ]

    def given(self, user_id: str, device_id: str, session_id: str) -> None:
        made = self._made.get(session_id)
        if made is not None:
            made.session.users_ignored.discard((user_id, device_id))
            made.session.users_shared_with.add((user_id, device_id))

    def _forget_old(self) -> None:
        cutoff = self._now() - KEEP
        for sid in [sid for sid, m in self._made.items() if m.made_at < cutoff]:
            del self._made[sid]
