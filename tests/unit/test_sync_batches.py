"""A sync batch through the bot (Ako.handle_sync), against a real database: what it costs, and
that its position never moves past an event not yet handled (SPEC §4, STYLE.md "Storage").

The bot is wired with Ako.assemble around a fake gateway and a client that is never called for
these batches; sync responses are written by hand in the shape nio gives them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.config import Config
from bot.runtime import Ako, Batch

from .conftest import NOW
from .fakes import BOT, LEARNER_A, OPERATOR, SHARED_DM, TEACHER_A, FakeRooms, FrozenClock, StatementCounter, classroom
from .outbox_fakes import OutboxHarness

ROOM = "!chat:a.test"


class NoKeys:
    """The encryption part, for unencrypted rooms: nothing waits for a key."""

    def __init__(self):
        self.unreadable = []

    async def retry_waiting(self, handle) -> None:
        pass

    async def cannot_decrypt(self, room_id, event) -> None:
        self.unreadable.append(event["event_id"])


def batch(token: str, rooms: dict[str, list[dict]]):
    """A sync response: each joined room's timeline events, no gap."""
    join = {
        room_id: SimpleNamespace(timeline=SimpleNamespace(events=[SimpleNamespace(source=e) for e in events], limited=False, prev_batch="p"))
        for room_id, events in rooms.items()
    }
    return SimpleNamespace(next_batch=token, rooms=SimpleNamespace(invite={}, leave={}, join=join))


_n = iter(range(1, 10_000))


def said(text: str, sender: str = LEARNER_A, thread_root: str | None = None) -> dict:
    content = {"msgtype": "m.text", "body": text}
    if thread_root:
        content["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread_root}
    return {"type": "m.room.message", "sender": sender, "event_id": f"$said{next(_n)}", "content": content, "origin_server_ts": 1}


@pytest.fixture
async def ako(db, tmp_path):
    config = Config.model_validate(
        {
            "matrix": {"homeserver": "http://127.0.0.1:1", "user_id": BOT, "password": "secret-pw"},
            "bot": {"operators": [OPERATOR], "data_dir": str(tmp_path), "timezone": "Pacific/Auckland"},
        }
    )
    bot = Ako(config, clock=FrozenClock(NOW))
    bot.assemble(db, client=None, gateway=FakeRooms())
    bot.e2ee = NoKeys()
    await bot.repos.sync.mark_joined(ROOM, NOW)
    await bot.repos.sync.mark_joined(SHARED_DM, NOW)
    await bot.repos.sync.load_joined()
    await bot.repos.sync.save_next_batch("s0")
    return bot


async def handled(ako: Ako, event_id: str) -> bool:
    return await ako.repos.sync.is_processed(event_id)


async def test_an_ordinary_chat_message_costs_no_query_and_no_write(ako, db):
    with StatementCounter(db) as counted:
        outcome = await ako.handle_sync(batch("s1", {ROOM: [said("hello all"), said("see you at 3")]}), "s0")
    assert outcome is Batch.NOTHING
    assert (counted.statements, counted.transactions) == ([], 0)
    assert await db.fetchval("SELECT COUNT(*) FROM processed_events") == 0, "no record is left of a chat message"


async def test_a_quiet_stream_saves_its_position_now_and_then_and_at_a_stop(ako, db, monkeypatch):
    await ako.handle_sync(batch("s1", {ROOM: [said("hi")]}), "s0")
    assert await ako.repos.sync.next_batch() == "s0", "not at once"
    monkeypatch.setattr("bot.runtime.QUIET_POSITION_EVERY", 0.0)
    with StatementCounter(db) as counted:
        await ako.handle_sync(batch("s2", {ROOM: [said("hi again")]}), "s1")
    assert await ako.repos.sync.next_batch() == "s2" and counted.transactions == 1


async def test_a_command_commits_its_records_its_reply_and_the_position_together(ako, db):
    ask = said("!schools", sender=OPERATOR)
    with StatementCounter(db) as counted:
        outcome = await ako.handle_sync(batch("s1", {SHARED_DM: [said("just chat"), ask]}), "s0")
    assert outcome is Batch.POSITION_SAVED
    assert counted.transactions == 1, counted.statements  # one commit: no separate one for the position
    assert await ako.repos.sync.next_batch() == "s1" and await handled(ako, ask["event_id"])
    [reply] = await ako.repos.outbox.unsent()
    assert reply.content["m.relates_to"]["m.in_reply_to"]["event_id"] == ask["event_id"]


async def test_a_refused_command_carries_the_position_with_its_refusal(ako, db):
    ask = said("!school add z.test Zed")  # a learner may not
    with StatementCounter(db) as counted:
        await ako.handle_sync(batch("s1", {SHARED_DM: [ask]}), "s0")
    assert counted.transactions == 2  # the command's, rolled back; the refusal's, with the position
    assert await ako.repos.sync.next_batch() == "s1"
    [reply] = await ako.repos.outbox.unsent()
    assert "operator" in reply.content["body"].lower()


class Killed(BaseException):
    """The process dying between two events: nothing after it runs, no handler catches it."""


async def test_a_crash_between_two_commands_of_a_batch_loses_neither(ako, db, monkeypatch):
    first, second = said("!schools", sender=OPERATOR), said("!classes", sender=OPERATOR)
    sync = batch("s1", {SHARED_DM: [first, said("chat"), second]})
    real = ako.dispatcher.handle

    async def dies_at_the_second(command, also=None):
        if command.event_id == second["event_id"]:
            raise Killed
        return await real(command, also=also)

    monkeypatch.setattr(ako.dispatcher, "handle", dies_at_the_second)
    with pytest.raises(Killed):
        await ako.handle_sync(sync, "s0")
    assert await handled(ako, first["event_id"]) and not await handled(ako, second["event_id"])
    assert await ako.repos.sync.next_batch() == "s0", "the position did not move past the unhandled command"

    monkeypatch.setattr(ako.dispatcher, "handle", real)  # restarted: the same batch again
    await ako.handle_sync(sync, "s0")
    assert await handled(ako, second["event_id"]) and await ako.repos.sync.next_batch() == "s1"
    replies = [r.content["m.relates_to"]["m.in_reply_to"]["event_id"] for r in await ako.repos.outbox.unsent()]
    assert sorted(replies) == sorted([first["event_id"], second["event_id"]]), "each answered once"


async def test_an_unreadable_event_after_a_command_keeps_the_position_until_it_is_recorded(ako, db):
    ask = said("!schools", sender=OPERATOR)
    locked = {"type": "m.room.encrypted", "sender": LEARNER_A, "event_id": "$locked", "content": {}}
    outcome = await ako.handle_sync(batch("s1", {SHARED_DM: [ask, locked]}), "s0")
    assert ako.e2ee.unreadable == ["$locked"]
    assert outcome is Batch.CHANGED and await ako.repos.sync.next_batch() == "s1"  # saved alone, after both


async def test_a_thread_reply_to_a_topic_is_counted_in_one_transaction_and_another_thread_costs_one_read(ako, db):
    h = OutboxHarness(db, ako.clock, ako.gateway)
    c = await classroom(h)
    await h.run(LEARNER_A, c.class_room, '!topic "Pendulums"')
    root = (await h.deliver())[(await h.repos.topics.by_number(c.klass.id, 1)).root_txn_id]
    await ako.repos.sync.mark_joined(c.class_room, NOW)
    reply = said("I think it is 9.8", thread_root=root)
    elsewhere = said("in some other thread", thread_root="$not-a-topic")
    with StatementCounter(db) as counted:
        await ako.handle_sync(batch("s1", {c.class_room: [reply, said("plain chat")]}), "s0")
    assert counted.transactions == 1
    assert await ako.repos.sync.next_batch() == "s1"
    [activity] = await h.repos.topics.activity(c.klass.id)
    assert activity.replies == 1
    with StatementCounter(db) as counted:
        await ako.handle_sync(batch("s2", {c.class_room: [elsewhere]}), "s1")
    assert (len(counted.statements), counted.transactions) == (1, 0), "under no topic: one read, no write"
    assert not await handled(ako, elsewhere["event_id"])
    assert (await h.repos.topics.activity(c.klass.id))[0].replies == 1


async def test_a_learners_assignments_and_submit_each_cost_one_commit_and_few_statements(ako, db):
    """Issue 18's round trip: what `!assignments` and `!submit` cost between the sync batch and their
    committed reply, in statements. The budgets are written by hand from what each must do: the
    position and the handled-mark (2), who the caller is (1), the room with its class (1), the
    assignments (1) or the one named (1), the learner's submissions, extensions, grades and returns (4)
    or the extension, the next version, the new one and reading it back (4), the reply, its room's
    owner and whom it is about (3), and the records journal putting the handled-mark (and the
    submission) on the reply (6; 8 with the submission's room to find): 18 and 20."""
    h = OutboxHarness(db, ako.clock, ako.gateway)
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, '!assign new "Essay" due 2026-12-20 17:00 points 20')
    await h.deliver()
    work = c.work[LEARNER_A]
    await ako.repos.sync.mark_joined(work, NOW)

    async def cost(text: str, token: str, since: str) -> tuple[int, int]:
        with StatementCounter(db) as counted:
            outcome = await ako.handle_sync(batch(token, {work: [said(text)]}), since)
        assert outcome is Batch.POSITION_SAVED
        await h.deliver()
        return len(counted.statements), counted.transactions

    reads, commits = await cost("!assignments", "s1", "s0")
    assert commits == 1 and reads <= 18, reads
    writes, commits = await cost("!submit A1 my essay", "s2", "s1")
    assert commits == 1 and writes <= 20, writes
    for title in ('"Lab report"', '"Quiz"'):
        await h.run(TEACHER_A, c.class_room, f"!assign new {title} due 2026-12-20 17:00 points 20")
    await h.deliver()
    assert (await cost("!assignments", "s3", "s2"))[0] == reads, "a learner's status costs the same for three assignments as for one"
    listing = (await h.outbox_rows())[-1][2].splitlines()
    assert [line.split(" — ")[-1] for line in listing[1:]] == ["submitted v1, on time", "not submitted yet", "not submitted yet"], listing
