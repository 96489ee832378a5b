"""Named fault points: the places in Ako's work where the crash-consistency tests stop it dead.

Each is a no-op unless a hook is installed, and only the test entry point
``python -m devtools.faulty_bot`` installs one (Ako itself never does). The points:
``received`` (a command event is about to be handled), ``committed`` (its records and replies are
committed, nothing sent yet), ``sent`` (a reply was accepted by the homeserver but not yet marked
sent), ``reminder-due`` (a scheduled send — reminder, digest, publication — is being queued inside
its transaction, nothing of it committed), ``reminder-committed`` (its records and messages are
committed; the outbox may not have sent them yet), ``joined`` (Ako joined a room it was invited
to; the sync batch with the invite is not finished), ``room-recorded`` (a room that appeared in a
sync is recorded as joined, none of its events handled yet) and ``room-created`` (the homeserver
made a room Ako asked for; nothing has recorded it yet).
"""

from __future__ import annotations

from typing import Callable

POINTS = (
    "received", "committed", "sent", "reminder-due", "reminder-committed", "joined", "room-recorded", "room-created",
)

_hook: Callable[[str], None] | None = None


def install(hook: Callable[[str], None] | None) -> None:
    """Call ``hook(point)`` at every fault point from now on (None: back to no-ops)."""
    global _hook
    _hook = hook


def crash_point(name: str) -> None:
    if _hook is not None:
        _hook(name)
