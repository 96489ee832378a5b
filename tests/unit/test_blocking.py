"""Rogue servers (issue 6): `!school block`, the server ACL it writes, and the invite policy under a
flood of invites from unknown users."""

from __future__ import annotations

import time
import tracemalloc
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import Config
from bot.routing import route_invite
from bot.runtime import Ako
from commands.server_acl import acl_allows, host_of, server_acl

from .fakes import BOT, LEARNER_A, LEARNER_B, OPERATOR, SHARED_DM, TEACHER_A, FakeRooms, classroom

ROGUE = "@eve:c.test"
ACL = "m.room.server_acl"

FIGURES: dict = {}


def acls(h) -> dict[str, dict]:
    """The newest server ACL written to each room."""
    found = {}
    for _, room, _, _, content in h.matrix.states(ACL):
        found[room] = content
    return found


async def test_block_removes_the_servers_users_and_denies_it_in_every_class_room(harness):
    h = harness
    c = await classroom(h)
    await h.say(OPERATOR, SHARED_DM, "!school add c.test \"Kura C\"")  # C is a school for a moment:
    await h.say(TEACHER_A, c.class_room, f"!class add {ROGUE}")  # Eve joins as a learner…
    await h.db.execute("DELETE FROM schools WHERE server = 'c.test'")  # …and C is no school any more
    hand_invited = "@mallory:c.test"  # invited to the class room by a teacher's own client
    h.matrix.joined[c.class_room] = {TEACHER_A, LEARNER_A, LEARNER_B, ROGUE, hand_invited}
    all_rooms = [r.room_id for r in await h.repos.rooms.all_of_class(c.klass.id)]

    answer = await h.say(OPERATOR, SHARED_DM, "!school block c.test")
    assert "c.test is now blocked" in answer and "Removed 2 of its users from 1 class" in answer

    assert await h.repos.classes.role_of(c.klass.id, ROGUE) is None
    kicked = {(a[1], a[2]) for a in h.matrix.actions if a[0] == "kick"}
    assert (c.class_room, ROGUE) in kicked and (c.class_room, hand_invited) in kicked
    assert not {u for _, u in kicked} & {LEARNER_A, LEARNER_B, TEACHER_A}
    written = acls(h)
    assert set(all_rooms) <= set(written)
    for content in written.values():
        assert content == {"allow": ["*"], "deny": ["c.test"], "allow_ip_literals": True}
        assert not acl_allows(content, "c.test") and acl_allows(content, "a.test") and acl_allows(content, "b.test")

    # from now on: no joining, no adding, no commands, and new rooms deny it from the start
    assert "blocked" in await h.say(ROGUE, SHARED_DM, "!join PHYS12")
    assert "blocked" in await h.say(TEACHER_A, c.class_room, f"!class add {hand_invited}")
    h.matrix.actions.clear()
    await h.say(TEACHER_A, SHARED_DM, '!class new "Chemistry" CHEM1')
    chem = await h.repos.classes.by_code("CHEM1")
    new_rooms = {r.room_id for r in await h.repos.rooms.all_of_class(chem.id)}
    assert new_rooms and new_rooms <= set(acls(h))
    listing = await h.say(OPERATOR, SHARED_DM, "!school blocked")
    assert "c.test" in listing

    # unblocking writes an ACL that denies nothing; the allow list is never empty
    assert "no longer blocked" in await h.say(OPERATOR, SHARED_DM, "!school unblock c.test")
    assert all(content == {"allow": ["*"], "deny": [], "allow_ip_literals": True} for content in acls(h).values())
    assert "not the server of a school" in await h.say(TEACHER_A, c.class_room, f"!class add {ROGUE}")  # still no school


@pytest.mark.parametrize(
    "server, refusal",
    [("a.test", "my own server"), ("b.test", "the server of Kura B"), ("a.test:8448", None)],
)
async def test_block_never_denies_the_bots_server_a_school_or_an_operator(harness, server, refusal):
    h = harness
    await classroom(h)
    answer = await h.say(OPERATOR, SHARED_DM, f"!school block {server}")
    if refusal:
        assert refusal in answer and "cannot be blocked" in answer
        assert not await h.repos.blocked.all()
        return
    # a.test:8448 is another server on the bot's host name: Ako blocks it, the ACL cannot
    assert "cannot deny a.test:8448" in answer and "host name" in answer
    for content in acls(h).values():
        assert "a.test" not in content["deny"] and acl_allows(content, BOT.split(":", 1)[1])


server_names = st.from_regex(r"[a-e]\.test(:84[0-9]{2})?", fullmatch=True)


class _Stub:
    def __init__(self, values):
        self.values = values

    async def all(self):
        return self.values


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(server_names, max_size=5, unique=True),
    st.lists(server_names, min_size=1, max_size=6, unique=True),
    server_names,
)
async def test_the_acl_never_denies_a_protected_server(schools, blocked, operator_server):
    """server_acl itself, as a property: whatever is blocked, the bot's, the schools' and the
    operators' servers stay allowed, the allow list is never empty, and every other blocked host is denied."""
    ctx = SimpleNamespace(
        settings=SimpleNamespace(bot_user_id="@ako:a.test", operators=frozenset({f"@it:{operator_server}"})),
        repos=SimpleNamespace(schools=_Stub([SimpleNamespace(server=s, name=s) for s in schools]), blocked=_Stub(sorted(blocked))),
    )
    acl = await server_acl(ctx)
    protected = {"a.test", operator_server, *schools}
    assert acl.content["allow"] == ["*"]
    assert all(acl_allows(acl.content, s) for s in protected)
    protected_hosts = {host_of(s) for s in protected}
    for b in blocked:
        assert acl_allows(acl.content, b) == (host_of(b) in protected_hosts)
        assert (b in acl.not_denied) == (host_of(b) in protected_hosts)
    FIGURES["acl property examples"] = FIGURES.get("acl property examples", 0) + 1


def test_acl_matching_follows_the_spec():
    content = {"allow": ["*"], "deny": ["*.evil.example", "c.test"], "allow_ip_literals": False}
    assert not acl_allows(content, "c.test:8448")  # ports are not compared
    assert not acl_allows(content, "x.evil.example") and acl_allows(content, "evil.example")
    assert not acl_allows(content, "127.0.0.1:8448")  # an IP literal, refused
    assert not acl_allows({"allow": [], "deny": []}, "a.test"), "an empty allow list shuts everyone out"
    assert host_of("[::1]:8448") == "[::1]" and host_of("Localhost:8481") == "localhost"


# --- the invite policy under a flood


class _FloodClient:
    """What answering an invite may ask of the homeserver: counts joins and rejections."""

    def __init__(self):
        self.joins = 0
        self.leaves = 0

    async def join(self, room_id):
        self.joins += 1
        return SimpleNamespace(room_id=room_id)

    async def room_leave(self, room_id):
        self.leaves += 1
        return SimpleNamespace()


def _invite(room: int, inviter: str, direct: bool, claims_class: bool = False):
    """An invite as nio gives it: stripped state, with the bot's own membership event."""
    state = [SimpleNamespace(state_key=BOT, membership="invite", sender=inviter, content={"is_direct": direct, "membership": "invite"})]
    if claims_class:  # stripped state that pretends to be one of Ako's class rooms
        state += [
            SimpleNamespace(type="m.room.name", state_key="", sender=inviter, content={"name": "Physics 12"}),
            SimpleNamespace(type="nz.ako.class", state_key="", sender=inviter, content={"code": "PHYS12", "server": "a.test"}),
        ]
    return SimpleNamespace(invite_state=state)


def _bot(db, client) -> Ako:
    config = Config.model_validate(
        {
            "matrix": {"homeserver": "http://127.0.0.1:1", "user_id": BOT, "password": "secret-pw"},
            "bot": {"operators": [OPERATOR], "data_dir": "/nonexistent"},
        }
    )
    ako = Ako(config)
    ako.assemble(db, client, FakeRooms())
    return ako


async def invite(ako: Ako, room_id: str, info) -> None:
    """An invite as the sync loop hands it on: routed, then answered."""
    await ako.answer_invite(route_invite(room_id, info.invite_state, ako.known))


async def test_a_thousand_invites_from_unknown_users_in_a_minute_join_nothing(harness):
    """1,000 invites from users of an unregistered server (half of them "direct", some with stripped
    state claiming to be a class room): no join, nothing recorded, memory and time bounded."""
    h = harness
    await classroom(h)
    client = _FloodClient()
    ako = _bot(h.db, client)
    rooms_before = await h.db.fetchval("SELECT COUNT(*) FROM rooms")
    tracemalloc.start()
    started = time.perf_counter()
    for i in range(1000):
        await invite(ako, f"!flood{i}:c.test", _invite(i, f"@spam{i}:c.test", direct=i % 2 == 0, claims_class=i % 3 == 0))
    handled = time.perf_counter() - started
    _, peak_while_handling = tracemalloc.get_traced_memory()
    await ako.invites_answered()  # the delayed rejections (2 s each, concurrently)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert client.joins == 0
    assert client.leaves == 1000, "every invite is rejected, once"
    assert await h.db.fetchval("SELECT COUNT(*) FROM rooms") == rooms_before
    assert await ako.invites_answered() == 0, "nothing is left under way"
    assert peak < 20 * 1024 * 1024  # how long it took is reported, not asserted
    FIGURES["flood"] = {"invites": 1000, "joins": client.joins, "rejected": client.leaves, "seconds": round(handled, 2), "peak_mib": round(peak / 2**20, 1)}


async def test_an_invite_that_claims_to_be_a_class_room_is_not_trusted(harness):
    """A learner of a registered school may open a DM with the bot; a group room is not trusted
    whatever its stripped state says, and a DM is recorded as theirs, not as a class room."""
    h = harness
    c = await classroom(h)
    client = _FloodClient()
    ako = _bot(h.db, client)
    await invite(ako, "!fake-class:b.test", _invite(1, LEARNER_B, direct=False, claims_class=True))
    await ako.invites_answered()
    assert client.joins == 0 and client.leaves == 1
    await invite(ako, "!fake-dm:b.test", _invite(2, LEARNER_B, direct=True, claims_class=True))
    room = await h.repos.rooms.get("!fake-dm:b.test")
    assert client.joins == 1 and room.kind == "dm" and room.class_id is None and room.owner == LEARNER_B
    # a teacher command in it needs the class code: the room is not the class
    assert "name the class by its code" in await h.say(TEACHER_A, "!fake-dm:b.test", "!roster")
    await invite(ako, "!blocked:c.test", _invite(3, ROGUE, direct=True))
    assert client.joins == 1
    assert c.klass.code == "PHYS12"


async def test_block_queues_the_acl_for_the_outbox_instead_of_writing_it_in_the_handler(harness):
    """Issue 16, item 11: a rate limit on state events must never hold the database: the handler
    queues one ACL per class room, and the outbox writes them after the block is committed."""
    from commands.context import RoomChange

    h = harness
    c = await classroom(h)
    queued: list[RoomChange] = []
    deliver = h.dispatcher.enqueue

    async def keep_state_changes(messages):
        queued.extend(m for m in messages if isinstance(m, RoomChange) and m.kind == "state")
        await deliver([m for m in messages if not (isinstance(m, RoomChange) and m.kind == "state")])

    async def written_by_the_handler(*args, **kwargs):
        raise AssertionError("the handler wrote a state event itself")

    h.dispatcher.enqueue = keep_state_changes
    h.matrix.set_state = written_by_the_handler
    answer = await h.say(OPERATOR, SHARED_DM, "!school block c.test")
    assert "c.test is now blocked" in answer and "on its way to" in answer, answer
    rooms = {r.room_id for r in await h.repos.rooms.all_of_class(c.klass.id)}
    assert rooms and rooms <= {m.room_id for m in queued}
    assert all(m.event_type == ACL and m.content["deny"] == ["c.test"] for m in queued)
