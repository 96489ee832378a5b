"""Crash injection for the crash-consistency tests.

``AKO_CRASH_AT=<point>[:<n>]`` makes the process kill itself with SIGKILL the n-th time
(default 1st) it reaches ``<point>``. Only the test suite sets it; unset, this costs a dict lookup.
Points: ``received`` (a command event is about to be handled), ``committed`` (its records and
replies are committed, nothing sent yet), ``sent`` (a reply was accepted by the homeserver but
not yet marked sent), ``reminder-due`` (a scheduled send — reminder, digest, publication — is being
queued inside its transaction, nothing of it committed) and ``reminder-committed`` (its records and
messages are committed; the outbox may not have sent them yet), ``joined`` (Ako joined a room it
was invited to; the sync batch with the invite is not finished) and ``room-recorded`` (a room that
appeared in a sync is recorded as joined, none of its events handled yet).
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    spec = os.environ.get("AKO_CRASH_AT")
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def inject_failures(registry) -> None:
    """``AKO_FAIL_COMMAND=<name>`` makes that command's handler raise, to prove a bug stays contained."""
    name = os.environ.get("AKO_FAIL_COMMAND")
    if not name:
        return
    cmd = registry.find(name)
    if cmd is None:
        return

    async def failing(ctx, **kwargs):
        raise RuntimeError(f"injected failure in {name}")

    registry.commands[cmd.name] = replaced = type(cmd)(**{**cmd.__dict__, "handler": failing})
    for key, value in list(registry._by_alias.items()):
        if value is cmd:
            registry._by_alias[key] = replaced
