"""Issue 6 end to end: trust across schools, against real federating Synapse servers.

A (the bot's server), B (a registered school), C (a server of no school), and, for this module
only, D: a rogue server under this machine's own host name (``vm:<port>``), because server ACLs
compare host names without ports and A, B and C all share the host name ``localhost``.

One class (TRUST1) taught by A's teacher, with Ana (A), Ben (B) and Bea (B), their work, grades
and feedback, is shared by the module (the ``trust`` fixture); the tests read it and add what
they change themselves (``!forget`` forgets a learner of its own; blocking C lifts the block
again), so none relies on another: spoofing, lookalike ids, power levels, invites that claim to be
class rooms, privacy probes, a scan of every event the bot sent, `!export me`, `!forget`, an
invite flood from C, and blocking C and D. The figures go to docs/security.md when
AKO_SECURITY_DOC names it and every test here passed (tests/security_doc.py).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
import re
import secrets
import socket
import sqlite3
import time
from dataclasses import dataclass, field

import aiohttp
import pytest

from devtools.homeserver import create_state, free_ports, start_homeservers, stop_homeservers
import commands
from tests import security_doc
from tests.matrix_user import MatrixUser, unique_localpart
from tests.authorisation_table import BY_COMMAND, LEARNER_HOLDS, allows
from tests.unit.test_authorisation_matrix import sample_args

from .helpers import accept, db_rows, enrol, open_dm

CODE, NAME = "TRUST1", "Trust 1"
SECRET_BEN = "Ben's private essay: rivers of the Rhine basin"
SECRET_ANA = "Ana's private essay: the Waikato and its taniwha"
FEEDBACK_BEN = "Ben, a clear argument; cite the 1995 flood"
FEEDBACK_ANA = "Ana, lovely detail; watch the word count"
TEACHER_NAME = "Whaea Aroha"

FIGURES: dict = {"matrix_live": {}, "spoofing": {}, "privacy": {}, "scan": {}, "forget": {}, "rogue": {}}


# --- small steps


def bot_membership(bot_id: str, membership: str):
    def match(ev: dict) -> bool:
        return ev["type"] == "m.room.member" and ev["state_key"] == bot_id and ev["content"]["membership"] == membership

    return match


async def membership_of(viewer: MatrixUser, room_id: str, user_id: str) -> str | None:
    resp = await viewer.client.room_get_state_event(room_id, "m.room.member", user_id)
    return (getattr(resp, "content", None) or {}).get("membership")


async def eventually(check, timeout: float = 30, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {check.__name__ if hasattr(check, '__name__') else check}")
        await asyncio.sleep(every)


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- the class


@dataclass
class Trust:
    bot_id: str
    teacher: MatrixUser
    ana: MatrixUser  # learner on A
    ben: MatrixUser  # learner on B
    bea: MatrixUser  # learner on B, stays
    dms: dict[str, str]
    class_room: str
    staff_room: str
    work: dict[str, str]  # learner id → work room
    events: dict[str, str] = field(default_factory=dict)  # name → event id, from the teacher's view


@pytest.fixture(scope="module")
async def trust(cluster, hs_a, hs_b):
    teacher, bot_id = cluster.teacher_a, cluster.bot_id
    ana, ben, bea = await asyncio.gather(
        MatrixUser.create(hs_a, unique_localpart("ana")),
        MatrixUser.create(hs_b, unique_localpart("ben")),
        MatrixUser.create(hs_b, unique_localpart("bea")),
    )
    try:
        dm_list = await asyncio.gather(*(open_dm(u, bot_id) for u in (teacher, ana, ben, bea)))
        dms = dict(zip((teacher.user_id, ana.user_id, ben.user_id, bea.user_id), dm_list))
        reply = await teacher.command(dms[teacher.user_id], f'!class new "{NAME}" {CODE}')
        assert f"class code **{CODE}**" in reply["body"], reply["body"]
        rooms = await accept(teacher, {NAME, f"{NAME} — staff"}, 3)
        class_room, staff_room = rooms.one("class"), rooms.one("staff")
        work_rooms = await asyncio.gather(*(enrol(u, bot_id, CODE, dms[u.user_id]) for u in (ana, ben, bea)))
        work = dict(zip((ana.user_id, ben.user_id, bea.user_id), work_rooms))
        await accept(teacher, {f"{NAME} — work of {u}" for u in work}, 3)
        reply = await teacher.command(class_room, '!assign new "River essay" due in 14 days points 20\nWrite about a river.')
        assert "Posted **A1" in reply["body"], reply["body"]
        t = Trust(bot_id, teacher, ana, ben, bea, dms, class_room, staff_room, work)

        # work, grades and feedback: the private things the rest of the module protects
        for learner, secret in ((ben, SECRET_BEN), (ana, SECRET_ANA)):
            mark = learner.mark(work[learner.user_id])
            receipt = await learner.command(work[learner.user_id], f"!submit A1 {secret}")
            assert "Received" in receipt["body"], receipt["body"]
            t.events[f"submit {learner.user_id}"] = learner.timeline(work[learner.user_id])[mark]["event_id"]
            t.events[f"receipt {learner.user_id}"] = receipt["event_id"]
        grade = await teacher.command(work[ben.user_id], f"!grade A1 13.5/20 {FEEDBACK_BEN}")
        assert "13.5/20" in grade["body"], grade["body"]
        t.events[f"grade {ben.user_id}"] = grade["event_id"]
        done = await teacher.command(staff_room, f"!grade A1 {ana.user_id} 11/20 {FEEDBACK_ANA}")
        assert "went to their work room only" in done["body"], done["body"]
        book = await teacher.command(staff_room, "!grades")
        assert ben.user_id in book["body"] and "13.5/20" in book["body"], book["body"]
        t.events["gradebook"] = book["event_id"]
        yield t
    finally:
        for u in (ana, ben, bea):
            await u.close()
        security_doc.record("e2e", dict(FIGURES), __file__)


async def grades_of(cluster, learner: str) -> list[tuple]:
    return db_rows(cluster, "SELECT score, max_score, feedback FROM grades WHERE learner = ? ORDER BY id", (learner,))


# --- 1. spoofing


def replying_to(event_id: str, bot_id: str):
    def match(e: dict) -> bool:
        return e["sender"] == bot_id and (e["content"].get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id") == event_id

    return match


def redaction_of(event_id: str):
    return lambda e: e["type"] == "m.room.redaction" and event_id in (e.get("redacts"), e["content"].get("redacts"))


def _refusal_pattern(name: str) -> re.Pattern:
    """A polite refusal: the dispatcher's (commands/dispatch.py), or a handler's "Only … can …" sentence."""
    n = re.escape(name)
    return re.compile(rf"^(Only .+ can use !{n}\.|Only .+ can [^\n]+\.|!{n} works in (a class room|your work room for the class|a direct message with me)\.)$")


# Rows whose refusal of a learner depends on records this module does not make (a reminder R1 of
# the class; a programme outside the library, refused as "not found"): the unit matrix covers them.
_NOT_LIVE = {"remind cancel", "programme show"}


def learner_refused_cells() -> list[tuple]:
    """The cells tests/authorisation_table.py (written from the spec) refuses a learner of the class,
    in the class room and in their own work room."""
    return [
        (cmd, kind)
        for cmd in commands.load().all()
        for kind, room in (("class", "class room"), ("work", "own work room"))
        if cmd.name not in _NOT_LIVE and not allows(BY_COMMAND[cmd.name], set(LEARNER_HOLDS), room)
    ]


async def test_every_command_a_learner_may_not_run_is_refused_over_matrix_on_a_and_b(trust):
    """The unit matrix runs every cell through the dispatcher; here the cells the spec's table refuses a
    learner in the class room and their work room go through real Matrix, from learners on A and on B."""
    t = trust
    cells = learner_refused_cells()
    sent = []
    for i, (cmd, kind) in enumerate(cells):
        learner = (t.ana, t.ben)[i % 2]
        room = t.class_room if kind == "class" else t.work[learner.user_id]
        line, body = sample_args(cmd)
        text = f"!{cmd.name} {line}".strip() + (f"\n{body}" if body else "")
        sent.append((cmd, learner, room, await learner.send(room, text)))
    wrong = []
    for cmd, learner, room, event_id in sent:
        if cmd.private and room == t.class_room:  # taken out of the class room, refused in the work room (issue 16)
            await learner.wait_for(room, redaction_of(event_id), since=0, timeout=60)
            reply = await learner.wait_for(
                t.work[learner.user_id], lambda e, n=cmd.name: f"You ran `!{n}` in the class room" in e["content"]["body"],
                since=0, timeout=60,
            )
            body = reply["content"]["body"].rsplit("Nothing was recorded: ", 1)[-1]
            if [e for e in learner.timeline(room) if replying_to(event_id, t.bot_id)(e)]:
                wrong.append((cmd.name, True, "answered in the class room"))
        else:
            reply = await learner.wait_for(room, replying_to(event_id, t.bot_id), since=0, timeout=60)
            body = reply["content"]["body"]
        if reply["content"].get("msgtype") != "m.notice" or not _refusal_pattern(cmd.name).match(body):
            wrong.append((cmd.name, room == t.class_room, body[:120]))
    assert len(cells) >= 60 and wrong == [], wrong
    FIGURES["matrix_live"]["cells the spec's table denies a learner (class room, work room), sent over Matrix by learners on A and B"] = (
        f"{len(cells)} sent, {len(cells) - len(wrong)} answered with the declared refusal, **{len(wrong)} acted on**"
    )


async def test_a_user_on_c_with_a_teachers_name_and_avatar_gains_nothing(cluster, trust, new_user, hs_c):
    t = trust
    avatar = await t.teacher.upload(b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(64), "face.png", "image/png")
    await t.teacher.client.set_displayname(TEACHER_NAME)
    await t.teacher.client.set_avatar(avatar)
    carl = await new_user(hs_c, "carl")
    await carl.client.set_displayname(TEACHER_NAME)
    await carl.client.set_avatar(avatar)  # the very same picture
    group = (await t.teacher.client.room_create(name="Open day", invite=[t.bot_id, carl.user_id])).room_id
    await carl.wait_invite(lambda i: i["room_id"] == group, timeout=30)
    await carl.join(group)
    await t.teacher.wait_for(group, bot_membership(t.bot_id, "join"), since=0, timeout=30)
    before = await grades_of(cluster, t.ben.user_id)
    probes = {
        f"!roster {CODE}": f"Only a teacher of {NAME} can use !roster.",
        f"!grade {CODE} A1 {t.ben.user_id} 0/20 from your teacher": f"Only a teacher of {NAME} can use !grade.",
        f"!submissions {CODE} A1": f"Only a teacher of {NAME} can use !submissions.",
        f"!class remove {CODE} {t.ben.user_id}": f"Only a teacher of {NAME} can use !class remove.",
    }
    for command, answer in probes.items():
        reply = await carl.command(group, command)
        if command.startswith("!grade"):  # private by content: taken out, and nothing of it said there (issue 16)
            answer = f"I removed a message from {carl.user_id}: `!grade` is answered only in private, and I have no private room with them."
        assert reply["body"] == answer, (command, reply["body"])
    assert await grades_of(cluster, t.ben.user_id) == before
    assert db_rows(cluster, "SELECT role FROM class_members WHERE user_id = ?", (t.ben.user_id,)) == [("learner",)]
    FIGURES["spoofing"]["display name + avatar of a teacher, on C: teacher commands tried / refused"] = f"{len(probes)} / {len(probes)}"


LOOKALIKES = {
    "Cyrillic е in the name": lambda uid: uid.replace("e", "е", 1),
    "right-to-left override": lambda uid: uid.replace(":", "\u202e:", 1),
    "zero-width space": lambda uid: uid.replace("@", "@\u200b", 1),
    "fullwidth @": lambda uid: uid.replace("@", "＠", 1),
}


async def test_lookalike_ids_never_act_on_the_real_user(cluster, trust):
    t = trust
    ben = t.ben.user_id
    before = await grades_of(cluster, ben)
    tried = 0
    for what, fake in LOOKALIKES.items():
        lookalike = fake(ben)
        assert lookalike != ben
        for command in (f"!grade A1 {lookalike} 0/20 {what}", f"!class remove {lookalike}", f"!extend A1 {lookalike} in 30 days"):
            reply = await t.teacher.command(t.staff_room, command)
            assert "is not" in reply["body"] and "Usage:" in reply["body"], (what, reply["body"])  # refused, with the usage
            tried += 1
    # a mention pill whose link is a lookalike, labelled with the real learner's name
    fake = LOOKALIKES["Cyrillic е in the name"](ben)
    mark = t.teacher.mark(t.staff_room)
    sent = await t.teacher.send(
        t.staff_room, "!grade A1 Ben 0/20 pill", formatted_body=f'!grade A1 <a href="https://matrix.to/#/{fake}">Ben</a> 0/20 pill'
    )
    reply = await t.teacher.wait_for(
        t.staff_room, lambda e: (e["content"].get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id") == sent, since=mark
    )
    assert "not a valid Matrix user id" in reply["content"]["body"], reply["content"]["body"]
    tried += 1
    assert await grades_of(cluster, ben) == before
    assert db_rows(cluster, "SELECT COUNT(*) FROM extensions WHERE learner = ?", (ben,)) == [(0,)]
    assert db_rows(cluster, "SELECT role FROM class_members WHERE user_id = ?", (ben,)) == [("learner",)]
    FIGURES["spoofing"]["lookalike ids (Cyrillic, RTL override, zero-width, fullwidth, pill): commands tried / acted on the real user"] = f"{tried} / 0"


async def test_power_level_100_in_a_staff_members_room_gains_nothing(cluster, trust, new_user, hs_b):
    t = trust
    host = cluster.teacher_b  # staff of B: the bot accepts their invite, and is not admin there
    newbie = await new_user(hs_b, "newbie")
    room = (await host.client.room_create(name="Study group", invite=[t.bot_id, t.ben.user_id, newbie.user_id])).room_id
    await host.wait_for(room, bot_membership(t.bot_id, "join"), since=0, timeout=30)
    for user in (t.ben, newbie):
        await user.wait_invite(lambda i: i["room_id"] == room, timeout=30)
        await user.join(room)
    pl = dict((await host.client.room_get_state_event(room, "m.room.power_levels")).content)
    pl["users"] = {**pl.get("users", {}), t.ben.user_id: 100, newbie.user_id: 100}
    resp = await host.client.room_put_state(room, "m.room.power_levels", pl)
    assert not type(resp).__name__.endswith("Error"), resp
    assert pl["users"].get(t.bot_id, 0) < 100  # the bot is no admin here
    probes = [
        (t.ben, f"!roster {CODE}", f"Only a teacher of {NAME} can use !roster."),
        (t.ben, f"!grade {CODE} A1 {t.ana.user_id} 20/20", f"Only a teacher of {NAME} can use !grade."),
        (t.ben, '!class new "Ben\'s own class"', "Only staff of a registered school can use !class new."),
        (newbie, f"!submissions {CODE} A1", f"Only a teacher of {NAME} can use !submissions."),
        (newbie, f"!forget {t.ana.user_id}", "Only a school admin can use !forget."),
        (newbie, f"!school block {hs_b.server_name}", "Only an operator of this Ako can use !school block."),
    ]
    for user, command, answer in probes:
        if command.startswith("!grade"):  # private by content: refused in Ben's work room, not in this room (issue 16)
            mark = user.mark(t.work[user.user_id])
            await user.send(room, command)
            reply = (await user.wait_for(t.work[user.user_id], lambda e: "You ran `!grade`" in e["content"]["body"], since=mark))["content"]
            assert reply["body"].endswith("Nothing was recorded: " + answer), (command, reply["body"])
            continue
        reply = await user.command(room, command)
        assert reply["body"] == answer, (command, reply["body"])
    assert await grades_of(cluster, t.ana.user_id) == [(11.0, 20.0, FEEDBACK_ANA)]
    FIGURES["spoofing"]["power level 100 from a room admin (a learner, a new account): teacher/admin commands tried / refused"] = f"{len(probes)} / {len(probes)}"


async def test_a_teacher_cannot_change_power_levels_in_a_class_room(trust):
    t = trust
    pl = dict((await t.teacher.client.room_get_state_event(t.class_room, "m.room.power_levels")).content)
    raise_self = {**pl, "users": {**pl["users"], t.teacher.user_id: 100}}
    lower_learner = {**pl, "users": {**pl["users"], t.ana.user_id: -1}}
    codes = []
    for content in (raise_self, lower_learner):
        resp = await t.teacher.client.room_put_state(t.class_room, "m.room.power_levels", content)
        assert type(resp).__name__.endswith("Error"), resp
        codes.append((resp.status_code, resp.transport_response.status))
    assert all(code == ("M_FORBIDDEN", 403) for code in codes), codes
    after = (await t.teacher.client.room_get_state_event(t.class_room, "m.room.power_levels")).content
    assert after["users"] == pl["users"]
    FIGURES["spoofing"]["a teacher raising their own / lowering a learner's power in a class room"] = "403 M_FORBIDDEN / 403 M_FORBIDDEN"


CLASS_LIKE = [{"type": "nz.ako.class", "state_key": "", "content": {"name": NAME, "code": CODE, "server": "localhost"}}]


async def test_an_invite_that_claims_to_be_a_class_room_is_not_trusted(cluster, trust, new_user, hs_c):
    t = trust
    class_rooms = "SELECT 1 FROM rooms WHERE class_id = (SELECT id FROM classes WHERE code = ?)"
    rooms_before = len(db_rows(cluster, class_rooms, (CODE,)))
    carl = await new_user(hs_c, "claimant")
    topic = f"Class room of {NAME}. Class code {CODE}. Type !help for commands."
    declined = []
    for who, direct in ((carl, False), (carl, True), (t.ben, False)):
        resp = await who.client.room_create(name=NAME, topic=topic, invite=[t.bot_id], is_direct=direct, initial_state=CLASS_LIKE)
        declined.append((who, resp.room_id))
    for who, room in declined:
        await who.wait_for(room, bot_membership(t.bot_id, "leave"), since=0, timeout=30)
    # trusted inviters get the bot, but the room's claims are not believed
    staff_room = (await cluster.teacher_b.client.room_create(name=NAME, topic=topic, invite=[t.bot_id], initial_state=CLASS_LIKE)).room_id
    ben_dm = (await t.ben.client.room_create(name=NAME, topic=topic, invite=[t.bot_id], is_direct=True, initial_state=CLASS_LIKE)).room_id
    await cluster.teacher_b.wait_for(staff_room, bot_membership(t.bot_id, "join"), since=0, timeout=30)
    await t.ben.wait_for(ben_dm, bot_membership(t.bot_id, "join"), since=0, timeout=30)
    assert db_rows(cluster, "SELECT kind, class_id, owner FROM rooms WHERE room_id = ?", (staff_room,)) == []
    async def recorded():  # written just after the bot's join
        return db_rows(cluster, "SELECT kind, class_id, owner FROM rooms WHERE room_id = ?", (ben_dm,))

    assert await eventually(recorded, timeout=10) == [("dm", None, t.ben.user_id)]
    reply = await cluster.teacher_b.command(staff_room, "!roster")
    assert "name the class by its code" in reply["body"], reply["body"]
    assert len(db_rows(cluster, class_rooms, (CODE,))) == rooms_before  # no room was taken for one of the class's
    FIGURES["spoofing"]["invites whose stripped state claims to be a class room: declined (C, C direct, B learner) / joined but not trusted (staff, learner DM)"] = "3 / 2 (no class recorded)"


# --- 2. privacy


async def _probe_room(user: MatrixUser, room: str, event_ids: list[str]) -> list[str]:
    """Every way a client can read a room's events; returns the errcodes (each must be an error)."""
    c = user.client
    calls = [("/messages", c.room_messages(room, start=None, limit=50)), ("/state", c.room_get_state(room))]
    for e in event_ids:
        calls += [("/context", c.room_context(room, e)), ("/event", c.room_get_event(room, e))]
    calls.append(("/join", c.join(room)))
    codes = []
    for name, call in calls:
        resp = await call
        assert type(resp).__name__.endswith("Error"), f"{user.user_id} read {room} with {name}: {type(resp).__name__}"
        codes.append(f"{name} {resp.transport_response.status} {resp.status_code}")
    return codes


async def test_a_learner_cannot_read_another_learners_work(trust):
    t = trust
    ben, ana, bea = t.ben.user_id, t.ana.user_id, t.bea.user_id
    ben_events = [t.events[f"submit {ben}"], t.events[f"receipt {ben}"], t.events[f"grade {ben}"]]
    ana_events = [t.events[f"submit {ana}"], t.events[f"receipt {ana}"]]
    codes = []
    codes += await _probe_room(t.ana, t.work[ben], ben_events)  # a learner on A, the rooms' own server
    codes += await _probe_room(t.bea, t.work[ben], ben_events)  # a learner on B, the owner's server
    codes += await _probe_room(t.bea, t.work[ana], ana_events)
    codes += await _probe_room(t.ana, t.staff_room, [t.events["gradebook"]])
    FIGURES["privacy"]["client-server probes (/messages, /state, /context, /event, /join) on another learner's work room or the staff room, by learners on A and B"] = (
        f"{len(codes)} tried, {len(codes)} refused ({'; '.join(f'{k} ×{v}' for k, v in sorted(Counter(codes).items()))}), 0 leaks"
    )

    # through the bot: every command that shows work, grades or feedback
    leaks = tried = 0
    for learner, room in ((t.ana, t.dms[ana]), (t.ana, t.class_room), (t.bea, t.dms[bea]), (t.bea, t.work[bea])):
        code = f" {CODE}" if room in t.dms.values() else ""
        for command in (f"!submissions{code} A1", f"!grades{code}", f"!export grades{code}", f"!roster{code}", f"!assign show{code} A1", f"!mywork{code}"):
            reply = await learner.command(room, command)
            tried += 1
            seen = " ".join(n["body"] for n in learner.notices(room)[-5:]) + reply["body"]
            for secret in (SECRET_BEN, FEEDBACK_BEN, "13.5/20", SECRET_ANA if learner is t.bea else "\0", FEEDBACK_ANA if learner is t.bea else "\0"):
                if secret in seen:
                    leaks += 1
            if command.startswith(("!submissions", "!export grades", "!roster")):
                assert "Only a teacher" in reply["body"], (command, reply["body"])
    assert leaks == 0
    own = await t.ana.command(t.dms[ana], f"!grades {CODE}")
    assert "11/20" in own["body"] and FEEDBACK_ANA in own["body"] and "13.5" not in own["body"]
    FIGURES["privacy"]["bot commands by learners (!submissions, !grades, !export grades, !roster, !assign show, !mywork) in DMs, class room, work room"] = (
        f"{tried} tried, teacher-only ones refused, 0 leaks; a learner's !grades shows only their own"
    )


def _private_items(cluster) -> list[tuple[str, int, str, re.Pattern]]:
    """(learner, class id, what, pattern) for every submission text, grade and feedback the bot holds."""
    items = []
    rows = db_rows(
        cluster,
        "SELECT s.learner, a.class_id, s.text FROM submissions s JOIN assignments a ON a.id = s.assignment_id WHERE length(s.text) >= 12",
    )
    items += [(learner, cid, "submission", re.compile(re.escape(text[:60]))) for learner, cid, text in rows]
    rows = db_rows(cluster, "SELECT g.learner, a.class_id, g.score, g.max_score, g.feedback FROM grades g JOIN assignments a ON a.id = g.assignment_id")
    for learner, cid, score, maximum, feedback in rows:
        shown = f"{score:.4f}".rstrip("0").rstrip(".") + "/" + f"{maximum:.4f}".rstrip("0").rstrip(".")
        items.append((learner, cid, "grade", re.compile(rf"(?<![\d.]){re.escape(shown)}(?![\d])")))
        if len(feedback) >= 8:
            items.append((learner, cid, "feedback", re.compile(re.escape(feedback[:60]))))
    rows = db_rows(cluster, "SELECT r.learner, a.class_id, r.note FROM returns r JOIN assignments a ON a.id = r.assignment_id WHERE length(r.note) >= 8")
    items += [(learner, cid, "return note", re.compile(re.escape(note[:60]))) for learner, cid, note in rows]
    return items


def scan_outbox(cluster) -> dict:
    """Every event the bot sent (its outbox): private content only where SPEC §4 allows it."""
    operators = {cluster.operator.user_id}  # (operators live in the bot's config)
    rooms = {r: (kind, cid, owner) for r, kind, cid, owner in db_rows(cluster, "SELECT room_id, kind, class_id, owner FROM rooms")}
    teachers: dict[int, set[str]] = {}
    for cid, user in db_rows(cluster, "SELECT class_id, user_id FROM class_members WHERE role = 'teacher'"):
        teachers.setdefault(cid, set()).add(user)

    def allowed(room: str, learner: str, cid: int) -> bool:
        kind, room_class, owner = rooms.get(room, (None, None, None))
        if kind == "work":
            return room_class == cid and owner == learner
        if kind == "staff":
            return room_class == cid
        if kind == "dm":
            return owner == learner or owner in teachers.get(cid, set()) or owner in operators
        return False

    items = _private_items(cluster)
    events = db_rows(cluster, "SELECT room_id, content, event_id FROM outbox WHERE event_type = 'm.room.message'")
    private = leaks = room_mentions = 0
    found = []
    for room, content, event_id in events:
        content = json.loads(content)
        mentions = content.get("m.mentions") or {}
        room_mentions += bool(mentions.get("room"))
        body = content.get("body") or ""
        # A score alone ("17/20") is nobody's grade: it is private only with the learner it belongs to,
        # named in the event, mentioned by it, or owning the room it is in.
        named = set(mentions.get("user_ids") or ()) | {rooms.get(room, (None, None, None))[2]}
        hits = [
            (learner, cid, what, pattern.pattern)
            for learner, cid, what, pattern in items
            if pattern.search(body) and (what != "grade" or learner in named or learner in body)
        ]
        if hits:
            private += 1
        for learner, cid, what, text in hits:
            # The same text (a shared submission text, say) may belong to several learners: it leaks only
            # if no learner it belongs to may see this room.
            owners = [(l, c) for l, c, _, t in hits if t == text]
            if not any(allowed(room, l, c) for l, c in owners):
                leaks += 1
                found.append((room, rooms.get(room), what, learner, body[:120]))
    return {"events": len(events), "private": private, "items": len(items), "leaks": leaks, "found": found, "room_mentions": room_mentions}


async def test_every_event_the_bot_sent_keeps_work_grades_and_feedback_private(cluster, trust):
    # the fixture's gradebook and two grade notices, and a learner's own grades in her DM
    own = await trust.ana.command(trust.dms[trust.ana.user_id], f"!grades {CODE}")
    assert "11/20" in own["body"], own["body"]
    await asyncio.sleep(1)  # let the outbox drain
    result = scan_outbox(cluster)
    assert result["items"] >= 5 and result["private"] >= 4
    assert result["leaks"] == 0, result["found"]
    FIGURES["scan"]["before !forget: events the bot sent / carrying work, grades or feedback / outside the owner's work room, the class's staff room, teachers' and the owner's DMs"] = (
        f"{result['events']} / {result['private']} / **{result['leaks']}**"
    )


async def test_export_me_gives_a_learner_all_the_bot_holds_about_them(trust):
    t = trust
    ben, dm = t.ben, t.dms[t.ben.user_id]
    mark = ben.mark(dm)
    reply = await ben.command(dm, "!export me")
    assert "Everything I hold about" in reply["body"], reply["body"]
    file_event = await ben.wait_for(dm, lambda e: e["sender"] == t.bot_id and e["content"].get("msgtype") == "m.file", since=mark)
    data = json.loads(await ben.download(file_event["content"]["url"]))
    text = json.dumps(data, ensure_ascii=False)
    assert data["user_id"] == ben.user_id
    assert SECRET_BEN in text and FEEDBACK_BEN in text and data["records"]["grades"][0]["score"] == 13.5
    assert SECRET_ANA not in text and FEEDBACK_ANA not in text and t.ana.user_id not in text
    assert {c["code"] for c in data["classes"]} == {CODE} and data["messages_about_you"]
    FIGURES["forget"]["!export me (a learner on B)"] = (
        f"JSON file in their DM: {sum(len(v) for v in data['records'].values())} records in "
        f"{sum(1 for v in data['records'].values() if v)} tables, {len(data['messages_about_you'])} of the bot's messages about them; "
        "nothing about anyone else"
    )


async def test_forget_deletes_the_learners_records_and_redacts_the_bots_events_about_them(cluster, trust, hs_b):
    t = trust
    # a learner of this test's own on B, with work, a grade and feedback
    fay = await MatrixUser.create(hs_b, unique_localpart("fay"))
    try:
        await _forget(cluster, t, fay)
    finally:
        await fay.close()


async def _forget(cluster, t: Trust, fay: MatrixUser) -> None:
    who = fay.user_id
    secret, feedback = "Fay's private essay: the Clutha in flood", "Fay, a careful essay; cite the gauge data"
    work = await enrol(fay, t.bot_id, CODE)
    await t.teacher.wait_invite(lambda i: i["room_id"] == work, timeout=30)
    await t.teacher.join(work)
    receipt = await fay.command(work, f"!submit A1 {secret}")
    assert "Received" in receipt["body"], receipt["body"]
    submitted = receipt["m.relates_to"]["m.in_reply_to"]["event_id"]
    grade = await t.teacher.command(work, f"!grade A1 12/20 {feedback}")
    assert "12/20" in grade["body"], grade["body"]
    book = await t.teacher.command(t.staff_room, "!grades")
    assert who in book["body"] and "12/20" in book["body"], book["body"]
    grades_of_ana = await grades_of(cluster, t.ana.user_id)
    admin = cluster.admin_b
    dm = await open_dm(admin, t.bot_id)
    about = db_rows(
        cluster,
        "SELECT o.room_id, o.event_id FROM outbox o WHERE o.event_id IS NOT NULL AND (o.id IN (SELECT outbox_id FROM outbox_about WHERE user_id = ?) "
        "OR o.room_id IN (SELECT room_id FROM rooms WHERE owner = ?))",
        (who, who),
    )
    assert (t.staff_room, book["event_id"]) in about and (work, grade["event_id"]) in about
    # the events must end up redacted on the rooms' server, read by the teacher, who stays in the
    # class's rooms; those the teacher cannot read (the learner's DM with the bot, and what the bot
    # said in the work room before the teacher joined it: its history is visible from joining) are
    # read by the learner, on B, who can still read them up to their leave
    class_rooms = {t.class_room, t.staff_room, work}
    targets, in_dm = [], []
    for room, event_id in [(room, e) for room, e in about if room in class_rooms] + [(work, submitted)]:
        resp = await t.teacher.client.room_get_event(room, event_id)
        (in_dm if type(resp).__name__.endswith("Error") else targets).append((room, event_id))
    in_dm += [(room, e) for room, e in about if room not in class_rooms]
    assert (t.staff_room, book["event_id"]) in targets
    refusal = await cluster.admin_a.command(await open_dm(cluster.admin_a, t.bot_id), f"!forget {who}")
    assert "Only a school admin of" in refusal["body"], refusal["body"]  # A's admin cannot forget B's learner
    ask = await admin.command(dm, f"!forget {who}")
    assert "!confirm" in ask["body"], ask["body"]
    done = await admin.command(dm, "!confirm", timeout=60)
    assert f"Forgot {who}" in done["body"], done["body"]

    from storage.privacy import FORGOTTEN

    left = {}
    for table, column in FORGOTTEN:
        try:
            n = db_rows(cluster, f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (who,))[0][0]
        except sqlite3.OperationalError:
            continue
        if n:
            left[f"{table}.{column}"] = n
    assert left == {}, left
    outbox_left = [r for r in db_rows(cluster, "SELECT room_id, content FROM outbox") if secret in r[1] or feedback in r[1]]
    assert outbox_left == []


    async def all_redacted():
        for room, event_id in targets:
            resp = await t.teacher.client.room_get_event(room, event_id)
            assert not type(resp).__name__.endswith("Error"), (room, event_id, resp)
            source = resp.event.source
            if source.get("content"):
                return False
        return True

    await eventually(all_redacted, timeout=30)

    async def dm_redacted():
        for room, event_id in in_dm:
            resp = await fay.client.room_get_event(room, event_id)
            if not type(resp).__name__.endswith("Error") and resp.event.source.get("content"):
                return False
        return True

    await eventually(dm_redacted, timeout=30)
    # the kicks and the bot's leave go through the outbox after the records are deleted
    await eventually(lambda: _is(membership_of(t.teacher, t.class_room, who), "leave"))
    await eventually(lambda: _is(membership_of(t.teacher, work, t.bot_id), "leave"))
    assert await grades_of(cluster, t.ana.user_id) == grades_of_ana == [(11.0, 20.0, FEEDBACK_ANA)]
    rows = int(re.search(r"deleted (\d+) records", done["body"]).group(1))
    FIGURES["forget"]["!forget by the learner's school admin (after !confirm); A's admin refused"] = (
        f"{rows} records deleted, 0 left in the {len(FORGOTTEN)} tables that name a person; {len(targets)} events in the class's rooms "
        f"redacted (the bot's receipts, grade notice, gradebook, and their own !submit) and read back as redacted on A, "
        f"plus {len(in_dm)} in their DM with the bot or from before the teacher joined their work room, read back as redacted on B; removed from the class's rooms; the bot left their work room"
    )


# --- 3. rogue servers


FLOOD = 60  # real users, each creating a room that invites the bot (room creation is the cost: ~0.4 s each on C)


async def test_a_flood_of_invites_from_unknown_users_joins_nothing(cluster, trust, hs_c):
    """Invites from new users of C (no school), sent concurrently: no join, nothing recorded, bounded
    memory. (tests/unit/test_blocking.py sends 1,000 through the same policy in a few seconds.)"""
    t = trust
    count = FLOOD
    pid = cluster.bot.pid
    rss_before = rss_kib(pid)

    async def one(session: aiohttp.ClientSession, i: int) -> str:
        _, token = await asyncio.to_thread(hs_c.register, unique_localpart("flood"), "flood-pw")
        body = {"invite": [t.bot_id], "is_direct": i % 2 == 0, "preset": "private_chat"}
        if i % 3 == 0:
            body |= {"name": NAME, "initial_state": CLASS_LIKE}
        async with session.post(f"{hs_c.client_url}/_matrix/client/v3/createRoom", json=body, headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["room_id"], token

    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        gate = asyncio.Semaphore(20)

        async def gated(i):
            async with gate:
                return await one(session, i)

        rooms = await asyncio.gather(*(gated(i) for i in range(count)))
        sent = time.monotonic() - started
        seen: dict[str, str] = {}

        async def settled():
            for room, token in rooms:
                if seen.get(room) == "leave":
                    continue
                url = f"{hs_c.client_url}/_matrix/client/v3/rooms/{room}/state/m.room.member/{t.bot_id}"
                async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
                    seen[room] = (await r.json()).get("membership") if r.status == 200 else "?"
            return all(v == "leave" for v in seen.values())

        try:
            await eventually(settled, timeout=60, every=1)
        except AssertionError:
            pass  # reported below: a rejection C never heard of leaves the invite pending there
    joins = sum(1 for v in seen.values() if v == "join")
    declined = sum(1 for v in seen.values() if v == "leave")
    rss_after = rss_kib(pid)
    assert joins == 0
    assert declined >= 0.95 * count, seen
    assert db_rows(cluster, "SELECT COUNT(*) FROM rooms WHERE owner LIKE ?", (f"%:{hs_c.server_name}",)) == [(0,)]
    assert rss_after - rss_before < 60 * 1024, (rss_before, rss_after)
    FIGURES["rogue"][f"invites from {count} new users on C (no school), sent concurrently in {sent:.1f} s"] = (
        f"**{joins} joins**, {declined} declined within {time.monotonic() - started:.0f} s; bot RSS {rss_before // 1024} → {rss_after // 1024} MiB"
    )


def _another_loopback_name() -> str | None:
    """A host name other than localhost that resolves to this machine (the machine's own name,
    usually). Synapse refuses to federate with IP-literal server names in loopback ranges."""
    for name in (socket.gethostname(), "localhost.localdomain", "ip6-localhost"):
        try:
            if name and name != "localhost" and socket.gethostbyname(name).startswith("127."):
                return name
        except OSError:
            continue
    return None


@pytest.fixture(scope="module")
def hs_d(tmp_path_factory):
    """A rogue homeserver on another host name (this machine's name, e.g. vm:<port>)."""
    host = _another_loopback_name()
    if host is None:
        pytest.skip("no second host name for this machine: server ACLs cannot tell loopback servers apart")
    base = tmp_path_factory.mktemp("rogue")
    state_dir = base / "hs-a"
    state_dir.mkdir()
    create_state(state_dir, *free_ports(2), log=lambda msg: print(f"[hs-d] {msg}"), host=host)
    servers = start_homeservers(base, 1, log=lambda msg: print(f"[hs-d] {msg}"))
    FIGURES["d_server"] = servers[0].server_name
    yield servers[0]
    stop_homeservers(servers)


async def _sneak_in(teacher: MatrixUser, user: MatrixUser, room: str) -> None:
    """A teacher's own client invites someone the bot would never add (teachers may invite)."""
    resp = await teacher.client.room_invite(room, user.user_id)
    assert not type(resp).__name__.endswith("Error"), resp
    await user.wait_invite(lambda i: i["room_id"] == room, timeout=30)
    await user.join(room)


async def test_blocking_c_removes_its_users_though_no_acl_can_tell_it_from_a(cluster, trust, new_user, hs_c):
    t = trust
    cuser = await new_user(hs_c, "sneaky")
    await _sneak_in(t.teacher, cuser, t.class_room)
    assert await membership_of(t.teacher, t.class_room, cuser.user_id) == "join"
    reply = await cluster.operator.command(cluster.operator_dm, f"!school block {hs_c.server_name}")
    try:
        await _blocked_c(cluster, t, new_user, hs_c, cuser, reply["body"])
    finally:  # other tests use C: lift the block again
        reply = await cluster.operator.command(cluster.operator_dm, f"!school unblock {hs_c.server_name}")
        assert "unblock" in reply["body"].lower() or "no longer" in reply["body"].lower(), reply["body"]


async def _blocked_c(cluster, t: Trust, new_user, hs_c, cuser: MatrixUser, body: str) -> None:
    assert f"{hs_c.server_name} is now blocked" in body and "Removed 1 of its users" in body, body
    assert f"cannot deny {hs_c.server_name}" in body and "host name" in body, body
    await eventually(lambda: _is(membership_of(t.teacher, t.class_room, cuser.user_id), "leave"))

    async def acl_written():  # the outbox writes it after the kick it queued before
        content = getattr(await t.teacher.client.room_get_state_event(t.class_room, "m.room.server_acl"), "content", None)
        return content if content and "allow" in content else None

    acl = await eventually(acl_written)
    assert acl["allow"] == ["*"] and "localhost" not in acl["deny"]
    late = await new_user(hs_c, "late")
    dm = (await late.client.room_create(invite=[t.bot_id], is_direct=True)).room_id
    await late.wait_for(dm, bot_membership(t.bot_id, "leave"), since=0, timeout=30)
    FIGURES["rogue"][f"`!school block {hs_c.server_name}` (C shares the host name localhost with A and B)"] = (
        "its user in the class room (invited by a teacher's own client) removed; no ACL entry (it would deny A and B too), "
        "and the reply says so; its new invites declined"
    )


async def _is(coro, value):
    return (await coro) == value


async def test_blocking_d_denies_it_by_server_acl_on_every_server(cluster, trust, hs_d):
    t = trust
    dave = await MatrixUser.create(hs_d, unique_localpart("dave"))
    try:
        await _sneak_in(t.teacher, dave, t.class_room)
        reply = await cluster.operator.command(cluster.operator_dm, f"!school block {hs_d.server_name}")
        body = reply["body"]
        host = hs_d.server_name.rsplit(":", 1)[0]
        assert "Removed 1 of its users" in body and f"deny: {host}" in body, body
        await eventually(lambda: _is(membership_of(t.teacher, t.class_room, dave.user_id), "leave"))

        async def acl_seen_by(user: MatrixUser, room: str):
            resp = await user.client.room_get_state_event(room, "m.room.server_acl")
            content = getattr(resp, "content", None) or {}
            return content if host in content.get("deny", []) else None

        on_a = await eventually(lambda: acl_seen_by(t.teacher, t.class_room))
        on_b = await eventually(lambda: acl_seen_by(t.bea, t.class_room))  # federated to school B's server
        work_on_b = await eventually(lambda: acl_seen_by(t.bea, t.work[t.bea.user_id]))
        for content in (on_a, on_b, work_on_b):
            assert content["allow"] == ["*"] and "localhost" not in content["deny"]
        rooms = db_rows(cluster, "SELECT COUNT(*) FROM rooms WHERE class_id IS NOT NULL")[0][0]
        # the ACL is enforced: D's user, invited again by hand, cannot get back in
        await t.teacher.client.room_invite(t.class_room, dave.user_id)
        back = await dave.client.join(t.class_room)
        assert type(back).__name__.endswith("Error"), back
        FIGURES["rogue"][f"`!school block {hs_d.server_name}` (a rogue server on another host)"] = (
            f"its user removed; m.room.server_acl {{allow: [*], deny: [{host}]}} written to all {rooms} class rooms, "
            f"read back on A and on B; a new hand-made invite cannot bring its user back ({back.status_code})"
        )
    finally:
        await dave.close()


async def test_nothing_private_left_the_entitled_rooms_in_the_whole_run(cluster, trust):
    await asyncio.sleep(1)
    result = scan_outbox(cluster)
    assert result["leaks"] == 0, result["found"]
    assert result["room_mentions"] == 0  # no command in this run was a teacher asking for @room
    FIGURES["scan"]["end of the run: events the bot sent / carrying work, grades or feedback / outside the entitled rooms"] = (
        f"{result['events']} / {result['private']} / **{result['leaks']}**"
    )
    FIGURES["scan"]["events mentioning @room"] = result["room_mentions"]
