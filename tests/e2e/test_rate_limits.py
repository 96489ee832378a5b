"""A class of 30 handing in at once to a bot whose homeserver has Synapse's default message rate
limit (issue 5, item 4).

The suite's homeservers A, B and C relax every rate limit so that the other tests run fast. This
module starts a fourth, R, that keeps Synapse's default ``rc_message`` (0.2 events a second, bursts
of 10), and a second Ako on it. While the class is set up the bot's account is exempt (Synapse's
admin API ``override_ratelimit``); the exemption is lifted before 30 learners on A and B send
``!submit`` at once, five of them a second version straight after.

Sending 35 replies at 0.2 a second takes two minutes of waiting; the module is one test, and
needs nothing from any other (run alongside the rest on another pytest-xdist worker, it overlaps
them). Its figures go to docs/reliability.md when it passes (tests/reliability_doc.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import pytest
from synapse.config.ratelimiting import RatelimitConfig

from devtools.homeserver import Homeserver, start_homeservers, stop_homeservers
from tests.botproc import BotProcess, write_bot_config
from tests.matrix_user import MatrixUser, unique_localpart

from tests import reliability_doc

from .helpers import db_rows, enrol, open_dm

CODE = "RUSH30"
LEARNERS = 30
TWICE = 5  # learners who hand in a second version straight after the first
IN_CLASS = range(TWICE, TWICE + 5)  # learners who type !submit in the class room: each needs a redaction too


def synapse_default_message_limit() -> tuple[float, int]:
    config = RatelimitConfig.__new__(RatelimitConfig)
    config.read_config({})  # an empty homeserver.yaml: Synapse's defaults
    return config.rc_message.per_second, int(config.rc_message.burst_count)


@dataclass
class Rush:
    hs: Homeserver
    bot: BotProcess
    bot_id: str


@pytest.fixture(scope="module")
async def rush(cluster, hs_a, hs_b, tmp_path_factory):
    """A fourth homeserver, R, with Synapse's default message limit, and an Ako on it (not started)."""
    base = tmp_path_factory.mktemp("rush")
    (hs_r,) = await asyncio.to_thread(start_homeservers, base, 1, log=lambda msg: print(f"[hs-r] {msg}"), message_limits=True)
    bot_id, _ = hs_r.register("ako", "ako-rush-password")
    cfg = write_bot_config(base / "config.toml", hs_r, bot_id, "ako-rush-password", [cluster.operator.user_id], base / "data", bot={"encryption": False})
    r = Rush(hs_r, BotProcess(cfg, base / "data"), bot_id)
    try:
        yield r
    finally:
        r.bot.stop()
        stop_homeservers([hs_r])


async def _hand_in_at_once(r: Rush, cluster, hs_a, hs_b) -> dict:
    r.hs.message_rate(r.bot_id, 0)  # exempt while the class is set up
    await asyncio.to_thread(r.bot.start)
    operator = cluster.operator
    dm = await open_dm(operator, r.bot_id)
    for line in (f'!school add {hs_a.server_name} "Kura A"', f'!school add {hs_b.server_name} "Kura B"'):
        assert "Registered" in (await operator.command(dm, line))["body"]
    assert CODE in (await operator.command(dm, f'!class new "Rush hour" {CODE}'))["body"]
    assert "A1" in (await operator.command(dm, f'!assign new {CODE} "Quick quiz" due in 7 days points 10'))["body"]
    gate = asyncio.Semaphore(4)  # other tests may run meanwhile on another worker: a gentle pace

    async def learner(i: int) -> tuple[MatrixUser, str]:
        async with gate:
            user = await MatrixUser.create(hs_a if i % 2 else hs_b, unique_localpart("rush"))
            return user, await enrol(user, r.bot_id, CODE)

    joined = await asyncio.gather(*(learner(i) for i in range(LEARNERS)), return_exceptions=True)
    learners = [j for j in joined if isinstance(j, tuple)]
    try:
        failed = [j for j in joined if not isinstance(j, tuple)]
        if failed:
            raise failed[0]
        return await _burst(r, learners)
    finally:
        await asyncio.gather(*(u.close() for u, _ in learners), return_exceptions=True)


async def _burst(r: Rush, learners: list[tuple[MatrixUser, str]]) -> dict:
    per_second, burst = synapse_default_message_limit()
    class_room = _class_room(r)
    for i in IN_CLASS:
        await learners[i][0].join(class_room)
    log_from = len(r.bot.log_text())
    r.hs.message_rate(r.bot_id, None)  # from now on: Synapse's default rc_message

    async def hand_in(i: int, user: MatrixUser, room: str) -> list[str]:
        if i in IN_CLASS:
            return [await user.send(class_room, f"!submit A1 answers of learner {i}, in the class room")]
        events = [await user.send(room, f"!submit A1 answers of learner {i}")]
        if i < TWICE:
            events.append(await user.send(room, f"!submit A1 second thoughts of learner {i}"))
        return events

    began = time.monotonic()
    sent = await asyncio.gather(*(hand_in(i, u, room) for i, (u, room) in enumerate(learners)))
    total = sum(map(len, sent))
    while _recorded(r) < total:
        assert time.monotonic() - began < 90, f"only {_recorded(r)} of {total} submissions recorded after 90 s"
        await asyncio.sleep(0.2)
    recorded_after = time.monotonic() - began

    def receipt(i: int, event_id: str):
        if i in IN_CLASS:  # a notice in their work room, after the command was taken out of the class room
            return lambda e: e["sender"] == r.bot_id and "Received **A1" in (e["content"].get("body") or "")
        return lambda e: (e["content"].get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id") == event_id

    def redaction_of(event_id: str):
        return lambda e: e["type"] == "m.room.redaction" and event_id in (e.get("redacts"), e["content"].get("redacts"))

    budget = 90 + (total + len(IN_CLASS) - burst) / per_second * 1.5  # the slowest comes at the limiter's pace
    await asyncio.gather(
        *(u.wait_for(room, receipt(i, ev), since=0, timeout=budget) for i, ((u, room), events) in enumerate(zip(learners, sent)) for ev in events),
        *(learners[i][0].wait_for(class_room, redaction_of(sent[i][0]), since=0, timeout=budget) for i in IN_CLASS),
    )
    delivered_after = time.monotonic() - began
    await asyncio.sleep(2)  # any duplicate would have arrived by now

    receipts = [
        [[e for e in u.timeline(room) if receipt(i, ev)(e)] for ev in events]
        for i, ((u, room), events) in enumerate(zip(learners, sent))
    ]
    order = []  # for each learner with two versions: the two receipts' places in the room's timeline
    for per_learner, (u, room) in zip(receipts[:TWICE], learners[:TWICE]):
        ids = [e.get("event_id") for e in u.timeline(room)]
        order.append(([ids.index(a[0]["event_id"]) for a in per_learner], [a[0]["content"]["body"] for a in per_learner]))
    redacted = sum(1 for i in IN_CLASS if any(redaction_of(sent[i][0])(e) for e in learners[i][0].timeline(class_room)))
    waits = [int(ms) for ms in re.findall(r"Got 429 response \(ratelimited\), sleeping for (\d+)ms", r.bot.log_text()[log_from:])]
    return {
        "per_second": per_second, "burst": burst, "sent": total, "recorded": _recorded(r), "redacted": redacted,
        "answers": [len(a) for per_learner in receipts for a in per_learner], "order": order, "waits": waits,
        "recorded_after": recorded_after, "delivered_after": delivered_after,
    }


def _class_room(r: Rush) -> str:
    return db_rows(r, "SELECT room_id FROM rooms WHERE kind = 'class'")[0][0]  # (r has a .bot, like a cluster)


def _recorded(r: Rush) -> int:
    return db_rows(r, "SELECT count(*) FROM submissions")[0][0]


async def test_a_class_of_30_submitting_at_once_under_default_rate_limits_is_answered_in_full_and_in_order(rush, cluster, hs_a, hs_b):
    result = await asyncio.wait_for(_hand_in_at_once(rush, cluster, hs_a, hs_b), timeout=600)
    total, burst = result["sent"], result["burst"]
    assert total == LEARNERS + TWICE and result["recorded"] == total
    assert result["answers"] == [1] * total, "a submission was answered twice, or not at all"
    assert result["redacted"] == len(IN_CLASS), "a !submit typed in the class room stayed there"
    for places, bodies in result["order"]:
        assert places[0] < places[1] and "version 1" in bodies[0] and "version 2" in bodies[1], (places, bodies)
    waits = result["waits"]
    # the limit bit, and the bot waited as told (retry_after_ms); a 429 is per user, so the rooms
    # sending side by side collapse to one sender: refusals never exceed the messages beyond the burst
    assert waits, "the homeserver never refused a send: the rate limit was not tested"
    assert len(waits) <= total + len(IN_CLASS) - burst, waits
    # handling kept pace while sending waited: everything was recorded long before the last receipt
    assert result["recorded_after"] < result["delivered_after"] / 2, (result["recorded_after"], result["delivered_after"])
    reliability_doc.record("rate_limits", {
        "limit": f"{result['per_second']:g} events/s, bursts of {burst}", "learners": LEARNERS, "replies": total,
        "in_class": len(IN_CLASS), "redacted": result["redacted"],
        "delivered": sum(result["answers"]), "refused": len(waits), "waited_s": round(sum(waits) / 1000, 1),
        "recorded_s": round(result["recorded_after"], 1), "delivered_s": round(result["delivered_after"], 1),
        "rooms_in_order": sum(1 for places, _ in result["order"] if places[0] < places[1]),
    }, __file__)
