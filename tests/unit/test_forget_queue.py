"""`!forget` takes no Matrix action inside its handler (issue 16, item 11): its redactions, kicks
and leaves are queued in the outbox with its records — committed together, sent in order per room,
each once — so the database's write lock is never held across a rate-limited homeserver."""

from __future__ import annotations

import json
from types import SimpleNamespace

import nio

from bot import replies
from bot.runtime import send_queued

from .conftest import NOW
from .fakes import ADMIN_A, LEARNER_A, FakeRooms, FrozenClock, Harness, classroom

DM = "!admin-a-dm:a.test"


class RuntimeQueueHarness(Harness):
    """Replies, redactions and room changes go where the runtime puts them: the outbox."""

    async def _enqueue(self, messages):
        await super()._enqueue([m for m in messages if type(m).__name__ == "Message"])
        await replies.queue(self.repos.outbox, messages, self.matrix.upload, self.clock.now())


class RecordingClient:
    def __init__(self):
        self.calls = []

    async def room_redact(self, room_id, event_id, reason=None, tx_id=None):
        self.calls.append(("redact", room_id, event_id))
        return nio.RoomRedactResponse(f"$redaction-of-{event_id}", room_id)

    async def room_kick(self, room_id, user_id, reason=None):
        self.calls.append(("kick", room_id, user_id))
        if room_id == "!gone:a.test":
            return nio.RoomKickError("The target user is not in the room", "M_FORBIDDEN")
        return nio.RoomKickResponse()

    async def room_leave(self, room_id):
        self.calls.append(("leave", room_id))
        return nio.RoomLeaveResponse()


async def test_forget_queues_its_redactions_kicks_and_leaves_and_the_outbox_carries_them_out_once(db):
    rooms = FakeRooms()
    h = RuntimeQueueHarness(db, FrozenClock(NOW), rooms)
    c = await classroom(h)
    await h.run(h.repos and "@teacher:a.test", c.class_room, '!assign new "Essay" due friday 5pm points 20\nWrite.')
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A1 my essay")
    for i, item in enumerate(await h.repos.outbox.unsent()):  # the replies so far went out
        await h.repos.outbox.mark_sent(item.id, f"$sent{i}", NOW)
    await h.repos.rooms.add(DM, "dm", None, ADMIN_A, NOW)
    await h.say(ADMIN_A, DM, f"!forget {LEARNER_A}")
    rooms.actions.clear()
    done = await h.say(ADMIN_A, DM, "!confirm")
    assert f"Forgot {LEARNER_A}" in done
    assert [a for a in rooms.actions if a[0] in ("redact", "kick", "leave")] == [], "the handler itself touched no room"

    queued = [(r["room_id"], r["event_type"], json.loads(r["content"])) for r in await db.fetchall(
        "SELECT room_id, event_type, content FROM outbox WHERE sent_at IS NULL ORDER BY id")]
    work = [(t, c_) for room, t, c_ in queued if room == c.work[LEARNER_A]]
    kinds = [t for t, _ in work]
    assert kinds[-2:] == ["ako.kick", "ako.leave"] and set(kinds[:-2]) == {"m.room.redaction"} and len(kinds) >= 3
    assert ("ako.kick", {"user_id": LEARNER_A, "reason": f"Right to be forgotten, at the request of {ADMIN_A}."}) in [
        (t, c_) for room, t, c_ in queued if room == c.class_room]

    client = RecordingClient()
    sent = 0
    for item in await h.repos.outbox.unsent():
        if item.event_type.startswith("ako.") or item.event_type == "m.room.redaction":
            resp = await send_queued(client, None, item)
            assert not isinstance(resp, nio.ErrorResponse)
            sent += 1
    assert [c_ for c_ in client.calls if c_[0] == "kick"] == [("kick", r, LEARNER_A) for r, t, _ in queued if t == "ako.kick"]
    assert ("leave", c.work[LEARNER_A]) in client.calls
    assert sent == len([q for q in queued if q[1] not in ("m.room.message", "nz.ako.record")])  # records: ordinary sends


async def test_a_kick_of_someone_no_longer_in_the_room_counts_as_done(db):
    item = SimpleNamespace(room_id="!gone:a.test", event_type="ako.kick", content={"user_id": LEARNER_A, "reason": "r"}, txn_id="t")
    resp = await send_queued(RecordingClient(), None, item)
    assert not isinstance(resp, nio.ErrorResponse) and resp.event_id == ""
