"""Issue 9 end to end: the cross-school staffroom, co-authored programmes and the public library,
on three real federating Synapse servers with the bot as a process on A.

The teachers of A and B take up their staffroom invitations (sent when the ``cluster`` fixture
named them staff; the ``staffroom`` fixture) and meet in a subject room; they co-author a
programme of three items (``co_author``: the ``programme`` fixture, and tests of their own); the B
teacher puts it into a class at school B starting next Monday, where a learner hands in (the
``used`` fixture); a learner and a user of an unregistered server try to author; a programme is
published in the library, which a user on C reads. Each test builds what it changes itself, so
none relies on another having run.

Run with ``-s`` to see the conversation (the README's example session was copied from it).
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.matrix_user import MatrixError, MatrixUser, unique_localpart

from .helpers import accept as accept_rooms
from .helpers import join_invite, open_dm

NZ = ZoneInfo("Pacific/Auckland")
TITLE = "Forces and motion"
CLASS_NAME = "Physics at Kura B"
CODE = "PRGB1"
LAB_NOTES = "My forces lab: the trolley went 1.2 m/s"



def show(who: str, text: str) -> None:
    print(f"\n{who}> " + text.replace("\n", f"\n{' ' * len(who)}  "))


async def say(user: MatrixUser, room: str, text: str, who: str) -> str:
    """Run a command, print it and the answer, return the answer's body."""
    reply = await user.command(room, text)
    show(who, text)
    show("ako", reply["body"])
    return reply["body"]


def named(name: str):
    def match(invite: dict) -> bool:
        return any(
            ev.get("type") == "m.room.name" and (ev.get("content") or {}).get("name") == name for ev in invite["state"]
        )

    return match


async def join_named(user: MatrixUser, name: str) -> str:
    """Join the one invited room of that name."""
    return (await accept_rooms(user, name)).one()


async def accept_class_room(user: MatrixUser, name: str) -> str:
    """Join the class's space and class room (they share the name); return the class room."""
    return (await accept_rooms(user, name, 2)).one("class")


async def members(user: MatrixUser, room: str) -> set[str]:
    resp = await user.client.joined_members(room)
    assert hasattr(resp, "members"), resp
    return {m.user_id for m in resp.members}


async def wait_members(user: MatrixUser, room: str, wanted: set[str], timeout: float = 20) -> set[str]:
    """The room's joined members as the user's own server sees them, once ``wanted`` are among them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await members(user, room)
        if wanted <= found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.3)


async def state_of(user: MatrixUser, room: str, event_type: str, key: str = "") -> dict | None:
    resp = await user.client.room_get_state_event(room, event_type, key)
    content = getattr(resp, "content", None)
    return content if isinstance(content, dict) and "errcode" not in content else None


async def api(user: MatrixUser, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """A raw client-server API call as the user, for what nio does not offer."""
    async with aiohttp.ClientSession() as http:
        async with http.request(
            method, user.hs.client_url + path, json=body, headers={"Authorization": f"Bearer {user.client.access_token}"}
        ) as resp:
            return resp.status, await resp.json()


def nz_text(moment: datetime) -> str:
    local = moment.astimezone(NZ)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()} (Pacific/Auckland)"


def next_monday() -> date:
    today = datetime.now(NZ).date()
    return today + timedelta(days=(7 - today.weekday()) % 7 or 7)


@pytest.fixture(scope="module")
async def people(cluster, hs_b, hs_c):
    ben = await MatrixUser.create(hs_b, unique_localpart("benp"))  # a learner at school B
    carl = await MatrixUser.create(hs_c, unique_localpart("carlp"))  # a server no school is registered for
    try:
        a_dm, b_dm, ben_dm = await asyncio.gather(
            open_dm(cluster.teacher_a, cluster.bot_id), open_dm(cluster.teacher_b, cluster.bot_id), open_dm(ben, cluster.bot_id)
        )
        yield SimpleNamespace(
            bot=cluster.bot_id, a=cluster.teacher_a, b=cluster.teacher_b, ben=ben, carl=carl, a_dm=a_dm, b_dm=b_dm, ben_dm=ben_dm
        )
    finally:
        await ben.close()
        await carl.close()


@pytest.fixture(scope="module")
async def staffroom(people):
    """Teachers A and B in the cluster's staffroom: (its space, its general room)."""
    a, b = people.a, people.b
    spaces = await asyncio.gather(join_named(a, "Ako staffroom"), join_named(b, "Ako staffroom"))
    generals = await asyncio.gather(join_named(a, "Staffroom"), join_named(b, "Staffroom"))
    assert spaces[0] == spaces[1] and generals[0] == generals[1]
    return SimpleNamespace(space=spaces[0], general=generals[0])


async def co_author(people, title: str) -> SimpleNamespace:
    """Teacher A creates a programme and adds teacher B as an author; A adds a lab, B a resource and
    a test: version 5, items I1–I3. Every answer is checked on the way."""
    a, b = people.a, people.b
    body = await say(a, people.a_dm, f'!programme new "{title}"', "teacher A")
    pid = re.search(r"Created \*\*(P\d+) — ", body).group(1)
    room = await join_named(a, f"{title} — programme {pid}")
    body = await say(a, room, f"!programme author add {pid} {b.user_id}", "teacher A")
    assert body == f"**{pid} v2** · {a.user_id} added {b.user_id} as an author"
    assert await join_named(b, f"{title} — programme {pid}") == room

    body = await say(
        a, room,
        f'!programme add {pid} "Forces lab" due week 1 fri 17:00 points 20\n'
        "Measure how a trolley speeds up under **three** different pulls; write up *F = ma*.",
        "teacher A",
    )
    assert body == f"**{pid} v3** · {a.user_id} added I1 “Forces lab” — assignment, due week 1 fri 17:00, 20 points"
    body = await say(
        b, room,
        f'!programme resource {pid} "Newton\'s laws"\nRead [Newton\'s laws of motion](https://en.wikipedia.org/wiki/Newton%27s_laws_of_motion) before the lab.',
        "teacher B",
    )
    assert body == f"**{pid} v4** · {b.user_id} added I2 “Newton's laws” — resource"
    body = await say(b, room, f'!programme add {pid} "Motion test" due week 2 fri 17:00 points 40\nForty minutes, calculators allowed.', "teacher B")
    assert body == f"**{pid} v5** · {b.user_id} added I3 “Motion test” — assignment, due week 2 fri 17:00, 40 points"
    return SimpleNamespace(pid=pid, room=room, title=title)


@pytest.fixture(scope="module")
async def programme(people):
    """A co-authored programme (version 5) the tests read but do not change."""
    return await co_author(people, TITLE)


@pytest.fixture(scope="module")
async def used(people, programme):
    """Teacher B's class at school B (PRGB1) with the programme put in from next Monday, and Ben's
    work handed in for its first assignment."""
    b, ben = people.b, people.ben
    body = await say(b, people.b_dm, f'!class new "{CLASS_NAME}" {CODE}', "teacher B")
    assert f"class code **{CODE}**" in body
    class_room = await accept_class_room(b, CLASS_NAME)
    body = await say(ben, people.ben_dm, f"!join {CODE}", "ben (learner, B)")
    assert f"Welcome to **{CLASS_NAME}**" in body
    ben_work = await join_named(ben, f"{CLASS_NAME} — work of {ben.user_id}")
    assert await accept_class_room(ben, CLASS_NAME) == class_room
    mark = b.mark(class_room)
    use = await say(b, people.b_dm, f"!programme use {programme.pid} {CODE} start next monday", "teacher B")
    assert use.startswith(f"Put **{programme.pid} — {TITLE}**"), use
    body = await say(ben, ben_work, f"!submit A1 {LAB_NOTES}", "ben")
    assert "Received **A1 — Forces lab**, version 1" in body
    return SimpleNamespace(class_room=class_room, ben_work=ben_work, use=use, mark=mark)


# --- the staffroom


async def test_staff_of_both_schools_are_in_the_staffroom_and_a_subject_room(people, staffroom):
    a, b = people.a, people.b
    # invited when the cluster fixture named them staff (`!staff add`)
    space, general = staffroom.space, staffroom.general
    child = await state_of(b, space, "m.space.child", general)  # as B's server holds it
    assert child is not None and child.get("via")
    assert {a.user_id, b.user_id, people.bot} <= await wait_members(b, general, {a.user_id, b.user_id})

    body = await say(a, people.a_dm, '!staffroom subject "Physics"', "teacher A")
    assert body.startswith("Started the **Physics** room in the staffroom and invited you.")
    physics = await join_named(a, "Physics — staffroom")
    body = await say(b, people.b_dm, '!staffroom subject "physics"', "teacher B")
    assert body == f"I've invited you to the **Physics** room of the staffroom with {a.user_id}."
    assert await join_named(b, "Physics — staffroom") == physics
    assert await state_of(b, space, "m.space.child", physics) is not None
    assert {a.user_id, b.user_id} <= await wait_members(b, physics, {a.user_id, b.user_id})
    body = await say(b, people.b_dm, "!staffroom", "teacher B")
    assert "- **Physics** — 2 staff" in body


async def test_removed_staff_leave_the_staffroom(people, staffroom, cluster, hs_b):
    dana = await MatrixUser.create(hs_b, unique_localpart("danap"))
    try:
        admin_dm = await open_dm(cluster.admin_b, cluster.bot_id)
        body = await say(cluster.admin_b, admin_dm, f"!staff add {dana.user_id}", "admin B")
        assert f"{dana.user_id} is now staff." in body and "to the cluster's staffroom" in body
        assert await join_named(dana, "Staffroom") == staffroom.general
        body = await say(cluster.admin_b, admin_dm, f"!staff remove {dana.user_id}", "admin B")
        assert "I've removed them from the staffroom" in body
        left = await dana.wait_for(
            staffroom.general,
            lambda e: e["type"] == "m.room.member" and e["state_key"] == dana.user_id and e["content"]["membership"] == "leave",
            since=0,
        )
        assert left["sender"] == people.bot
        assert dana.user_id not in await members(people.b, staffroom.general)
    finally:
        await dana.close()


# --- co-authoring across schools


async def test_teachers_on_a_and_b_co_author_a_programme_of_three_items(people):
    a, b = people.a, people.b
    title = f"{TITLE}, drafted"
    made = await co_author(people, title)
    pid, room = made.pid, made.room

    body = await say(b, room, f"!programme show {pid}", "teacher B")
    assert f"**{pid} — {title}** · version 5 · by {a.user_id}, {b.user_id} · not in the library" in body
    order = [line.split("**")[1] for line in body.splitlines() if re.match(r"^\d\. \*\*", line)]
    assert order == ["I1 Forces lab", "I2 Newton's laws", "I3 Motion test"]

    # each school's server holds the programme: its items as state, and every change as an event
    for user in (a, b):
        whole = await state_of(user, room, "nz.ako.programme")
        assert whole["version"] == 5 and whole["items"] == ["I1", "I2", "I3"] and whole["authors"] == [a.user_id, b.user_id]
        lab = await state_of(user, room, "nz.ako.programme.item", "I1")
        assert lab["title"] == "Forces lab" and lab["due"] == "week 1 fri 17:00" and lab["points"] == 20
        assert (await state_of(user, room, "nz.ako.programme.item", "I2"))["kind"] == "resource"
    history = [e["content"]["body"] for e in reversed(await b.messages(room)) if e["type"] == "m.room.message"
               and e["sender"] == people.bot and e["content"]["body"].startswith(f"**{pid} v")]
    # B's server backfilled what happened before B joined (history_visibility: shared)
    assert [h.split(" · ")[0] for h in history] == [f"**{pid} v{n}**" for n in range(1, 6)], history
    body = await say(a, people.a_dm, f"!programme history {pid}", "teacher A")
    assert len([line for line in body.splitlines() if line.startswith("- v")]) == 5
    assert "v4 · " in body and f"{b.user_id} added I2 “Newton's laws” — resource" in body


async def test_the_b_teacher_uses_it_in_a_class_at_school_b_from_next_monday(people, programme, used):
    b, ben = people.b, people.ben
    class_room, ben_work, mark, body = used.class_room, used.ben_work, used.mark, used.use
    monday = next_monday()
    lab_due = datetime.combine(monday + timedelta(days=4), datetime.min.time().replace(hour=17), NZ)
    test_due = datetime.combine(monday + timedelta(days=11), datetime.min.time().replace(hour=17), NZ)
    day = f"{monday:%a} {monday.day} {monday:%b %Y}"
    assert body.startswith(f"Put **{programme.pid} — {TITLE}** (version 5) into {CLASS_NAME} ({CODE}), starting {day} (Pacific/Auckland):")
    assert f"- **A1 — Forces lab** (I1) · due {nz_text(lab_due)} · 20 points · posted" in body
    assert f"- **A2 — Motion test** (I3) · due {nz_text(test_due)} · 40 points · posted" in body

    # posted in the class room like !assign new, and written there as state on B's server
    def bot_post(start: str):
        return lambda e: e["sender"] == people.bot and e["type"] == "m.room.message" and e["content"]["body"].startswith(start)

    for start in ("**A1 — Forces lab** · 20 points", "**A2 — Motion test** · 40 points", "**Resource — Newton's laws**"):
        await b.wait_for(class_room, bot_post(start), since=mark)
    for key, due, title in (("A1", lab_due, "Forces lab"), ("A2", test_due, "Motion test")):
        record = await state_of(b, class_room, "nz.ako.assignment", key)
        assert record["title"] == title and record["timezone"] == "Pacific/Auckland" and record["class"] == CODE
        assert datetime.fromisoformat(record["due"]) == due
    use = await state_of(b, class_room, "nz.ako.programme.use", programme.pid)
    assert use["version"] == 5 and use["start"] == monday.isoformat() and use["items"] == {"I1": "A1", "I2": None, "I3": "A2"}
    # the learner sees them with their due dates in the class's zone
    body = await say(ben, ben_work, "!assignments", "ben")
    assert f"**A1 — Forces lab** · due {nz_text(lab_due)}" in body and f"**A2 — Motion test** · due {nz_text(test_due)}" in body


async def test_a_learner_cannot_create_or_edit_programmes(people, programme):
    ben = people.ben
    body = await say(ben, people.ben_dm, '!programme new "My own unit"', "ben")
    assert body == "Only staff of a registered school can use !programme new."
    for line in (f'!programme add {programme.pid} "Skip the test" due week 1 mon 09:00', f"!programme remove {programme.pid} I3",
                 f"!programme author add {programme.pid} {ben.user_id}"):
        body = await ben.command(people.ben_dm, line)
        assert body["body"].startswith("Only staff of a registered school can use !programme"), body["body"]
    body = (await ben.command(people.ben_dm, f"!programme show {programme.pid}"))["body"]
    # what the library holds depends on what other tests published: only the refusal itself is asserted
    assert body.startswith(f"There is no programme {programme.pid} you can see") and body.endswith("`!library` lists the shared ones."), body
    assert programme.title not in body


async def test_a_user_on_an_unregistered_server_cannot_author(people, programme):
    a, carl = people.a, people.carl
    body = await say(a, people.a_dm, f"!programme author add {programme.pid} {carl.user_id}", "teacher A")
    assert body.startswith(f"{carl.user_id} is not staff of a registered school, so they cannot author programmes.")
    # carl cannot even open a DM with the bot (it declines unregistered servers): a room with teacher A, then
    group = await a.client.room_create(name="Programmes with a visitor", invite=[people.bot, carl.user_id])
    await join_invite(carl, group.room_id)
    await a.wait_for(group.room_id, lambda e: e["type"] == "m.room.member" and e["state_key"] == people.bot
                     and e["content"]["membership"] == "join", since=0, timeout=30)
    body = await say(carl, group.room_id, f'!programme add {programme.pid} "Spam" due day 1', "carl (school C)")
    assert body == "Only staff of a registered school can use !programme add."
    whole = await state_of(a, programme.room, "nz.ako.programme")
    assert whole["items"] == ["I1", "I2", "I3"] and carl.user_id not in whole["authors"]


# --- the public library


async def test_the_library_is_world_readable_and_holds_no_learner_data(people, used, hs_a):
    b, carl = people.b, people.carl
    # a programme of its own (publishing changes it), put into the class where Ben handed in work
    programme = await co_author(people, f"{TITLE}, for everyone")
    title = programme.title
    body = await say(b, people.b_dm, f"!programme use {programme.pid} {CODE} start next monday", "teacher B")
    assert body.startswith(f"Put **{programme.pid} — {title}**"), body
    body = await say(b, people.b_dm, f"!programme publish {programme.pid}", "teacher B")
    alias = f"#{people.bot[1:].split(':')[0].lower()}-library:{hs_a.server_name}"  # named for the bot (README)
    assert body.startswith(f"**{programme.pid} v6** · {b.user_id} listed it in the library")
    assert f"It is in the library room {alias}: anyone can read it there" in body
    body = await say(people.ben, people.ben_dm, "!library", "ben")
    assert f"- **{programme.pid} — {title}** · v6 · 3 items" in body

    # the alias resolves from C's server (over federation)
    resolved = await carl.client.room_resolve_alias(alias)
    library = getattr(resolved, "room_id", None)
    assert library, resolved

    # on the library's own server, a non-member reads it without joining: it is world-readable,
    # and it is listed in the public room directory
    visitor = await MatrixUser.create(hs_a, unique_localpart("visitor"))
    try:
        status, listing = await api(visitor, "GET", "/_matrix/client/v3/publicRooms?limit=100")
        assert status == 200 and library in [r["room_id"] for r in listing["chunk"]], listing
        entry = next(r for r in listing["chunk"] if r["room_id"] == library)
        assert entry["world_readable"] is True and entry.get("canonical_alias") == alias
        peeked = json.dumps(await visitor.messages(library), ensure_ascii=False)
        assert f"**{programme.pid} — {title}** · version 6" in peeked
        assert library not in visitor.client.rooms  # read without joining
    finally:
        await visitor.close()

    # a user on C who is not a member: Synapse does not peek over federation (C's server has no
    # copy of the room), so they join by the alias — the room is public — and read from there
    try:
        await carl.messages(library)
        print("\n(C read the library without joining)")
    except MatrixError as e:
        print(f"\n(C cannot read without joining: {e.errcode}; joining by alias)")
        assert e.errcode in ("M_FORBIDDEN", "M_NOT_FOUND")
        await carl.join(alias)
    events = await carl.messages(library, limit=200)
    post = next(e for e in events if e["type"] == "m.room.message" and e["sender"] == people.bot)
    show("ako (library room, as read by carl on C)", post["content"]["body"])
    assert post["content"]["body"].startswith(f"**{programme.pid} — {title}** · version 6 · by {people.a.user_id}, {b.user_id}")
    assert "1. **Forces lab** — assignment, due week 1 fri 17:00, 20 points" in post["content"]["body"]
    state = {(e["type"], e["state_key"]): e["content"] for e in (await carl.client.room_get_state(library)).events}
    assert state[("m.room.history_visibility", "")]["history_visibility"] == "world_readable"
    assert state[("m.room.join_rules", "")]["join_rule"] == "public"
    assert state[("m.room.canonical_alias", "")]["alias"] == alias
    assert [i["title"] for i in state[("nz.ako.library.entry", programme.pid)]["items"]] == ["Forces lab", "Newton's laws", "Motion test"]
    # materials only: nothing of the class, its learners or their work
    everything = json.dumps(events, ensure_ascii=False) + json.dumps(list(state.values()), ensure_ascii=False)
    for secret in (people.ben.user_id, LAB_NOTES, "trolley went", CODE, CLASS_NAME, used.class_room, used.ben_work):
        assert secret not in everything, secret
    # and it is read-only for visitors
    with pytest.raises(MatrixError) as refused:
        await carl.send(library, "hello from C")
    assert refused.value.errcode == "M_FORBIDDEN"
