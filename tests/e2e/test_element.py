"""Issue 13 end to end: Ako with people whose client behaves as Element does today.

The learners and teachers here use ``ElementUser``: matrix-js-sdk (the SDK under Element Web) with
its Rust crypto, cross-signed at login, in ``OnlySignedDevicesIsolationMode`` ("exclude insecure
devices", MSC4153): room keys only for devices cross-signed by their owner, and messages from any
other device fail to decrypt and are hidden. Everything they read from Ako must decrypt, with no
warning shield.

Ako runs here with the product's defaults (encryption on, work and staff rooms encrypted,
``exclude_insecure_devices`` on): its own account and data folder on school A, schools A and B
registered by its operator. Each test makes its own class and users; the restart test leaves Ako
running.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.botproc import BotProcess, write_bot_config
from tests.element_user import ElementUser, element_client  # noqa: F401  (fixture)
from tests.matrix_user import MatrixUser, unique_localpart

from .helpers import open_dm

NZ = ZoneInfo("Pacific/Auckland")
NO_SHIELD = {"colour": "NONE", "reason": None}


@dataclass
class Ako:
    bot_id: str
    bot: BotProcess
    admin_a: MatrixUser  # school A's admin, names staff
    hs_a: object
    hs_b: object

    @property
    def device_id(self) -> str:
        return json.loads((self.bot.data_dir / "session.json").read_text())["device_id"]

    async def master_key(self) -> str | None:
        """Ako's master key as the homeserver publishes it to every client (/keys/query)."""
        c = self.admin_a.client
        resp = await c.send(
            "POST",
            "/_matrix/client/v3/keys/query",
            json.dumps({"device_keys": {self.bot_id: []}}),
            headers={"Authorization": f"Bearer {c.access_token}", "Content-Type": "application/json"},
        )
        body = await resp.json()
        keys = list(((body.get("master_keys") or {}).get(self.bot_id) or {}).get("keys", {}).values())
        return keys[0] if keys else None


@pytest.fixture(scope="module")
async def ako(element_client, hs_a, hs_b, tmp_path_factory):
    base = tmp_path_factory.mktemp("ako-element")
    password = "ako-element-password"
    bot_id, _ = hs_a.register(unique_localpart("akoel"), password)
    operator = await MatrixUser.create(hs_a, unique_localpart("elop"))
    admin_a = await MatrixUser.create(hs_a, unique_localpart("eladmin"))
    # encryption, encrypt_work_rooms, exclude_insecure_devices: the product's defaults
    cfg = write_bot_config(
        base / "config.toml", hs_a, bot_id, password, [operator.user_id], base / "data",
        bot={"encryption": None, "encrypt_work_rooms": None},
    )
    proc = BotProcess(cfg, base / "data").start()
    try:
        dm = await open_dm(operator, bot_id)
        for line in (
            f'!school add {hs_a.server_name} "Kura A"',
            f'!school add {hs_b.server_name} "Kura B"',
            f"!school admin {hs_a.server_name} {admin_a.user_id}",
        ):
            reply = await operator.command(dm, line)
            assert "Registered" in reply["body"] or "school admin" in reply["body"], reply["body"]
        yield Ako(bot_id, proc, admin_a, hs_a, hs_b)
    finally:
        proc.stop()
        await operator.close()
        await admin_a.close()


def readable(event: dict, encrypted: bool = True) -> dict:
    """The event decrypted, with no warning shield, as Element would show it; else fail saying why.
    ``encrypted=False`` for the class room, which is not encrypted (anyone in the class reads it)."""
    if not encrypted:
        assert event["wire_type"] == "m.room.message" and event["shield"] is None, event
        return event["content"]
    assert event["wire_type"] == "m.room.encrypted", f"sent in the clear: {event}"
    assert event["decryption_failure"] is None, f"Element cannot decrypt it ({event['decryption_failure']}): {event}"
    assert event["shield"] == NO_SHIELD, f"Element marks it with a shield {event['shield']}: {event}"
    return event["content"]


async def ask(user: ElementUser, room: str, line: str, *, encrypted: bool = True, **kw) -> str:
    """A command from an Element user; Ako's answer must be readable. Its body."""
    answer = await user.command(room, line, timeout=kw.pop("timeout", 40), **kw)
    return readable(answer, encrypted)["body"]


async def sees_signed(user: ElementUser, user_id: str, device_id: str, timeout: float = 30) -> dict:
    """Wait until ``user``'s client knows the device (it learns of new devices from its sync) and
    sees it signed by its owner's identity."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await user.device_status(user_id, device_id)
        if status is not None and status["signed_by_owner"]:
            return status
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{user.user_id} does not see device {device_id} of {user_id} as signed by its owner: {status}")
        await asyncio.sleep(0.5)


async def join_invites(user: ElementUser, name: str, count: int) -> list[dict]:
    """Take ``count`` invites to rooms whose name contains ``name`` and join them."""
    invites = [await user.wait_invite(name_contains=name, timeout=40) for _ in range(count)]
    for invite in invites:
        await user.join(invite["room_id"])
    return invites


@dataclass
class Class:
    name: str
    code: str
    teacher: ElementUser
    teacher_dm: str
    class_room: str
    staff_room: str


async def new_class(ako: Ako, opened, tmp_path, prefix: str) -> Class:
    """A teacher on A (Element) made staff, who makes a class in her encrypted DM with Ako."""
    n = unique_localpart("")
    name, code = f"{prefix} {n}", f"{prefix[:4].upper()}{n}"
    teacher = await opened(await ElementUser.create(ako.hs_a, unique_localpart("elteacher"), log_dir=tmp_path))
    adm = await open_dm(ako.admin_a, ako.bot_id)
    reply = await ako.admin_a.command(adm, f"!staff add {teacher.user_id}")
    assert "is now staff" in reply["body"], reply["body"]
    dm = await teacher.dm(ako.bot_id)
    assert await teacher.is_encrypted(dm)
    body = await ask(teacher, dm, f'!class new "{name}" {code}')
    assert code in body, body
    class_room = staff_room = ""
    for invite in await join_invites(teacher, name, 3):  # space, class room, staff room
        if invite["name"].endswith("— staff"):
            staff_room = invite["room_id"]
        elif invite["room_type"] != "m.space":
            class_room = invite["room_id"]
    assert class_room and staff_room
    assert await teacher.is_encrypted(staff_room), "encrypt_work_rooms: the staff room is encrypted"
    return Class(name, code, teacher, dm, class_room, staff_room)


async def learner_joins(ako: Ako, klass: Class, opened, tmp_path) -> tuple[ElementUser, str, str]:
    """A learner on B (Element) opens an encrypted DM with Ako, reads `!help`, joins by code.
    Returns the learner, her DM and her (encrypted) work room."""
    learner = await opened(await ElementUser.create(ako.hs_b, unique_localpart("ellearner"), log_dir=tmp_path))
    dm = await learner.dm(ako.bot_id)
    assert await learner.is_encrypted(dm), "Element makes every new DM encrypted"
    body = await ask(learner, dm, "!help")
    assert "!join" in body, body
    body = await ask(learner, dm, f"!join {klass.code}")
    assert f"Welcome to **{klass.name}**" in body, body
    work = ""
    for invite in await join_invites(learner, klass.name, 3):  # space, class room, work room
        if "work of" in (invite["name"] or ""):
            work = invite["room_id"]
    assert work and await learner.is_encrypted(work)
    return learner, dm, work


async def test_learner_on_b_reads_help_and_joins_by_code_in_an_encrypted_dm(ako, opened, tmp_path):
    klass = await new_class(ako, opened, tmp_path, "Biology")
    learner, dm, work = await learner_joins(ako, klass, opened, tmp_path)
    roster = await ask(klass.teacher, klass.class_room, "!roster", encrypted=False)
    assert learner.user_id in roster, roster
    # Ako's device, as her client sees it: signed by Ako's own identity
    await sees_signed(learner, ako.bot_id, ako.device_id)
    body = await ask(learner, work, "!help")
    assert "!submit" in body, body


async def test_answers_given_before_her_new_login_was_verified_become_readable_once_it_is(ako, opened, tmp_path):
    """For a while Ako can see a learner's device as unsigned though her identity signs it: the
    signature reaches Ako's server over federation after her device's keys (this failed CI once).
    Here the window is made wide and certain: a learner on B, cross-signed on her phone, logs in on
    a laptop whose Element lets an unverified login send (isolation "all devices") and writes to
    Ako before verifying it. Ako refuses the unsigned laptop a room key, so its answer cannot be
    read there; once she verifies the laptop from her phone, that same answer becomes readable
    (bot/late_keys.py), with no shield, and nothing is sent twice."""
    localpart = unique_localpart("elnewlogin")
    phone = await opened(await ElementUser.create(ako.hs_b, localpart, log_dir=tmp_path))
    laptop = await opened(
        await ElementUser.create(ako.hs_b, localpart, log_dir=tmp_path, cross_sign=False, isolation="all_devices")
    )
    assert not laptop.login_info["device_signed_by_owner"]
    dm = await laptop.dm(ako.bot_id)
    early = await laptop.command(dm, "!help", timeout=40)
    assert early["decryption_failure"] is not None, f"an unsigned device got a room key: {early}"
    await phone.cross_sign_device(laptop.device_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 40
    while (seen := await laptop.get_event(dm, early["event_id"], timeout=5))["decryption_failure"] is not None:
        assert loop.time() < deadline, f"Ako's answer stays unreadable after her new login was verified: {seen}"
        await asyncio.sleep(1)
    assert "!join" in readable(seen)["body"]
    assert "!join" in await ask(laptop, dm, "!help")
    answers = [
        e for e in await laptop.events(dm)
        if e["sender"] == ako.bot_id and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == early["command_event_id"]
    ]
    assert [e["event_id"] for e in answers] == [early["event_id"]], answers


async def test_a_file_and_submit_as_a_reply_in_the_encrypted_work_room_then_the_grade(ako, opened, tmp_path):
    klass = await new_class(ako, opened, tmp_path, "Chemistry")
    t = klass.teacher
    learner, dm, work = await learner_joins(ako, klass, opened, tmp_path)
    await t.wait_invite(room_id=work, timeout=40)
    await t.join(work)
    day = (datetime.now(NZ) + timedelta(days=10)).date()
    body = await ask(t, klass.class_room, f'!assign new "Titration" due {day.isoformat()} 17:00 points 10', encrypted=False)
    assert "A1" in body, body

    sent = await learner.send_file(work, b"Titres: 24.10, 24.05, 24.10 mL\n", "titres.txt", "text/plain")
    assert sent["encrypted_file"], "Element encrypts a file it sends into an encrypted room"
    body = await ask(learner, work, "!submit A1", reply_to=sent["event_id"])
    assert "Received **A1" in body and "version 1" in body and "titres.txt" in body, body

    mark = await learner.mark(work)
    body = await ask(t, work, "!grade A1 9/10 Careful work; quote the mean titre.")
    grade = await learner.wait_event(work, since=mark, sender=ako.bot_id, body_contains="your grade is", timeout=40)
    content = readable(grade)
    assert "**9/10**" in content["body"] and "quote the mean titre" in content["body"], content["body"]
    mywork = await ask(learner, dm, f"!mywork {klass.code}")
    assert "9/10" in mywork, mywork


async def test_five_restarts_and_a_lost_crypto_store_keep_one_identity_and_every_message_readable(ako, opened, tmp_path):
    klass = await new_class(ako, opened, tmp_path, "Physics")
    t, bot = klass.teacher, ako.bot
    try:
        learner, dm, work = await learner_joins(ako, klass, opened, tmp_path)
        master = await ako.master_key()
        assert master, "Ako publishes a master key"
        first_device = ako.device_id
        marks = {room: await learner.mark(room) for room in (dm, work)}
        tmark = await t.mark(klass.staff_room)

        async def round_trip(label: str) -> None:
            assert await ako.master_key() == master, f"{label}: Ako's master key changed"
            body = await ask(learner, dm, "!classes", timeout=60)
            assert klass.name in body, body
            body = await ask(learner, work, "!help", timeout=60)
            assert "!submit" in body, body
            body = await ask(t, klass.staff_room, "!roster", timeout=60)
            assert learner.user_id in body, body
            identity = await learner.user_identity(ako.bot_id)
            assert identity["known"] and not identity["needs_user_approval"], f"{label}: {identity}"

        for i in range(5):
            if i % 2:
                bot.kill()  # a crash, as far as Ako can tell
            else:
                bot.stop()
            bot.start()
            await round_trip(f"restart {i + 1}")
        assert ako.device_id == first_device

        bot.stop()  # the crypto store is lost: a new device, signed by the same identity
        shutil.rmtree(bot.data_dir / "crypto")
        bot.start()
        assert ako.device_id != first_device
        await sees_signed(learner, ako.bot_id, ako.device_id)
        await sees_signed(t, ako.bot_id, ako.device_id)
        await round_trip("after the crypto store was lost")

        # Everything Ako said to them on the way, read again: all decrypted, no shield.
        for room, mark in marks.items():
            said = [e for e in await learner.events(room, since=mark) if e["sender"] == ako.bot_id]
            assert len(said) >= 6, said
            for event in said:
                readable(event)
        said = [e for e in await t.events(klass.staff_room, since=tmark) if e["sender"] == ako.bot_id]
        assert len(said) >= 6, said
        for event in said:
            readable(event)
    finally:
        if not bot.is_running():  # the next test needs Ako
            bot.start()


async def test_a_nio_device_signed_later_gets_the_keys_it_was_refused_and_reads_the_answer(ako, opened, tmp_path):
    """bot/late_keys.py with a matrix-nio client: Ako refuses room keys to a device its owner has not
    cross-signed; once the owner signs it, Ako gives it the keys it was refused, and the client
    decrypts the answer in its place (the test client does so, as Element does)."""
    klass = await new_class(ako, opened, tmp_path, "Latin")
    t = klass.teacher
    late = await opened(await MatrixUser.create(
        ako.hs_a, unique_localpart("latesigned"), encrypted=True, store_dir=tmp_path / "latesigned", cross_signed=False
    ))
    room = await t.create_room(name="Signed later, encrypted", invite=[ako.bot_id, late.user_id])
    await late.wait_invite(lambda i: i["room_id"] == room, timeout=40)
    await late.join(room)
    for who in (ako.bot_id, late.user_id):
        await t.wait_member(room, who, timeout=40)
    mark = late.mark(room)
    answer = await t.command(room, "!schools", timeout=40)
    said = readable(answer)["body"]
    seen = await late.wait_for(room, lambda e: e["event_id"] == answer["event_id"], since=mark, timeout=30)
    assert seen["type"] == "m.room.encrypted", "a device not cross-signed could read Ako"
    assert f"Blacklisted device {late.client.device_id} of {late.user_id}" in ako.bot.log_text()

    await late.cross_sign_device()
    now = await late.wait_for(
        room, lambda e: e["event_id"] == answer["event_id"] and e["type"] == "m.room.message", since=mark, timeout=60
    )
    assert now["content"]["body"] == said
    assert f"Device {late.client.device_id} of {late.user_id} is now signed by its owner: gave it" in ako.bot.log_text()


async def test_no_room_key_for_a_device_not_cross_signed_nor_for_an_unregistered_server(ako, opened, tmp_path, hs_c):
    klass = await new_class(ako, opened, tmp_path, "History")
    t = klass.teacher
    # on school A (registered), but its device is not cross-signed by its owner
    insecure = await opened(await MatrixUser.create(
        ako.hs_a, unique_localpart("insecure"), encrypted=True, store_dir=tmp_path / "insecure", cross_signed=False
    ))
    # Element on C, cross-signed, but C is no school of the cluster
    carla = await opened(await ElementUser.create(hs_c, unique_localpart("carla"), log_dir=tmp_path))
    room = await t.create_room(name="Mixed, encrypted", invite=[ako.bot_id, insecure.user_id, carla.user_id])
    await insecure.wait_invite(lambda i: i["room_id"] == room, timeout=40)
    await insecure.join(room)
    await carla.wait_invite(room_id=room, timeout=40)
    await carla.join(room)
    for who in (ako.bot_id, insecure.user_id, carla.user_id):
        await t.wait_member(room, who, timeout=40)

    imark = insecure.mark(room)
    cmark = await carla.mark(room)
    answers = []
    for line in ("!help", "!schools"):
        answer = await t.command(room, line, timeout=40)
        readable(answer)  # the teacher, cross-signed on A, reads Ako
        answers.append(answer["event_id"])
    await asyncio.sleep(3)  # no key turns up later either
    for event_id in answers:
        seen = await insecure.wait_for(room, lambda e, eid=event_id: e["event_id"] == eid, since=imark, timeout=30)
        assert seen["type"] == "m.room.encrypted", "a device not cross-signed could read Ako"
        c = seen["content"]
        assert insecure.client.olm.inbound_group_store.get(room, c["sender_key"], c["session_id"]) is None
        got = await carla.wait_event(room, since=cmark, event_id=event_id, timeout=30, key_grace=3)
        assert got["decryption_failure"] == "MEGOLM_UNKNOWN_INBOUND_SESSION_ID", got
    # Ako decided so, and said why (not a lost key on the way)
    log = ako.bot.log_text()
    assert f"Blacklisted device {insecure.client.device_id} of {insecure.user_id}" in log
    assert f"Blacklisted device {carla.device_id} of {carla.user_id}" in log
