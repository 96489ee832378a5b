"""The device-trust policy, and what happens to a message the bot cannot decrypt (issue 8)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from nio.exceptions import EncryptionError

from bot.device_trust import Trust, decide
from bot.encryption import Encryption, cannot_read_text
from storage.encryption import EncryptionRecords
from storage.sync import SyncState

from .conftest import NOW
from .fakes import FrozenClock

BOT = "@ako:school-a.example"
SCHOOLS = frozenset({"school-a.example", "school-b.example"})


def legacy(user, allow_guests, blocked=frozenset(), registered=SCHOOLS):
    """The decision with exclude_insecure_devices = false: trust on first use per device."""
    return decide(
        user, "DEV", "ED", registered_servers=registered, blocked_servers=blocked, allow_guests=allow_guests,
        bot_user_id=BOT, exclude_insecure=False, identity=None,
    )[0]


@pytest.mark.parametrize(
    "user, allow_guests, expected",
    [
        ("@ben:school-b.example", False, Trust.TRUST),
        ("@ana:school-a.example", False, Trust.TRUST),
        ("@carl:rogue.example", False, Trust.BLOCK),
        ("@carl:rogue.example", True, Trust.TRUST),  # guests allowed: their devices may read the bot's replies
        (BOT, False, Trust.TRUST),  # the bot's own other devices
        ("@ben:school-b.example.evil", False, Trust.BLOCK),  # the server name must match exactly
        ("@x:school-b.example:8448", False, Trust.BLOCK),
    ],
)
def test_trust_policy_without_cross_signing(user, allow_guests, expected):
    assert legacy(user, allow_guests) is expected


def test_nothing_is_trusted_before_any_school_is_registered():
    assert legacy("@ben:school-b.example", False, registered=frozenset()) is Trust.BLOCK


def test_a_blocked_server_never_gets_keys_even_with_guests_allowed():
    assert legacy("@carl:rogue.example", True, blocked=frozenset({"rogue.example"})) is Trust.BLOCK
    assert legacy("@ben:school-b.example", False, blocked=frozenset({"school-b.example"})) is Trust.BLOCK


class FakeOlm:
    class account:
        identity_keys = {"ed25519": "ED", "curve25519": "CU"}
        shared = True


class Decrypted:
    def __init__(self, source):
        self.source = source


class FakeClient:
    """Just what Encryption uses of nio for undecryptable messages."""

    def __init__(self, enabled=True):
        self.olm = FakeOlm() if enabled else None
        self.device_id = "BOTDEVICE"
        self.keys: dict[str, dict] = {}  # session id -> decrypted source
        self.key_requests: list[str] = []

    def decrypt_event(self, event):
        if event.session_id not in self.keys:
            raise EncryptionError("no session")
        return Decrypted(self.keys[event.session_id])

    async def request_room_key(self, event):
        self.key_requests.append(event.session_id)


def encrypted(event_id, sender="@ben:school-b.example", session="S1"):
    return {
        "type": "m.room.encrypted",
        "event_id": event_id,
        "sender": sender,
        "origin_server_ts": 1,
        "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "xx", "sender_key": "K", "session_id": session, "device_id": "PHONE"},
    }


async def setup(db, enabled=True):
    await db.execute("INSERT INTO schools (server, name, added_by, added_at) VALUES ('school-b.example', 'B', 'x', 'x')")
    clock = FrozenClock(NOW)
    sent = []

    async def enqueue(messages):
        sent.extend(messages)

    client = FakeClient(enabled)
    e = Encryption(client, db, bot_user_id=BOT, allow_guests=False, clock=clock, enqueue=enqueue)
    e.key_wait = timedelta(seconds=15)
    handled = []

    async def handle(room_id, event):
        handled.append((room_id, event))

    return e, client, clock, sent, handled, handle


async def test_a_late_key_lets_the_bot_act(db):
    e, client, clock, sent, handled, handle = await setup(db)
    await e.cannot_decrypt("!dm", encrypted("$1"))
    assert client.key_requests == ["S1"]
    assert await e.seconds_to_next_give_up() == 15
    await e.retry_waiting(handle)
    assert handled == [] and sent == []
    client.keys["S1"] = {"type": "m.room.message", "event_id": "$1", "sender": "@ben:school-b.example", "content": {"body": "!help"}}
    clock.advance(seconds=5)
    await e.retry_waiting(handle)
    assert handled == [("!dm", client.keys["S1"])] and sent == []
    assert await EncryptionRecords(db).waiting() == []
    assert await e.seconds_to_next_give_up() is None


async def test_no_key_in_time_no_action_and_the_sender_is_told_once_per_room(db):
    e, client, clock, sent, handled, handle = await setup(db)
    await e.cannot_decrypt("!dm", encrypted("$1"))
    await e.cannot_decrypt("!dm", encrypted("$1"))  # a replayed sync keeps one record
    clock.advance(seconds=16)
    await e.retry_waiting(handle)
    assert handled == []
    assert len(sent) == 1 and sent[0].room_id == "!dm" and sent[0].reply_to == "$1"
    assert sent[0].mentions == ("@ben:school-b.example",)
    assert "could not read your message" in sent[0].markdown and "BOTDEVICE" in sent[0].markdown
    assert await SyncState(db).is_processed("$1")
    # The key turning up now changes nothing: the sender was asked to send it again.
    client.keys["S1"] = {"type": "m.room.message", "event_id": "$1", "sender": "@ben:school-b.example", "content": {"body": "!help"}}
    await e.cannot_decrypt("!dm", encrypted("$1"))
    await e.retry_waiting(handle)
    assert handled == []
    # A second failure in the same room: no second notice. In another room: told there too.
    await e.cannot_decrypt("!dm", encrypted("$2", session="S2"))
    await e.cannot_decrypt("!work", encrypted("$3", session="S3"))
    clock.advance(seconds=16)
    await e.retry_waiting(handle)
    assert [m.room_id for m in sent] == ["!dm", "!work"]
    assert await EncryptionRecords(db).notices() == [("!dm", "@ben:school-b.example"), ("!work", "@ben:school-b.example")]


async def test_own_and_malformed_events(db):
    e, client, clock, sent, handled, handle = await setup(db)
    await e.cannot_decrypt("!dm", encrypted("$own", sender=BOT))
    assert await EncryptionRecords(db).waiting() == []
    bad = encrypted("$bad")
    del bad["content"]["ciphertext"]
    await e.cannot_decrypt("!dm", bad)  # nothing to wait for: told at once
    assert len(sent) == 1 and await SyncState(db).is_processed("$bad")


async def test_with_encryption_off_the_sender_learns_why(db):
    e, client, clock, sent, handled, handle = await setup(db, enabled=False)
    await e.cannot_decrypt("!dm", encrypted("$1"))
    assert len(sent) == 1 and "encryption is turned off" in sent[0].markdown
    assert sent[0].markdown == cannot_read_text(None, enabled=False)


async def test_the_notice_answers_in_the_thread_of_the_message(db):
    e, client, clock, sent, handled, handle = await setup(db)
    event = encrypted("$t")
    event["content"]["m.relates_to"] = {"rel_type": "m.thread", "event_id": "$root"}
    await e.cannot_decrypt("!class", event)
    clock.advance(seconds=16)
    await e.retry_waiting(handle)
    assert sent[0].thread_root == "$root" and sent[0].reply_to == "$t"


def test_encryption_is_on_by_default():
    from bot.config import BotSection

    section = BotSection(operators=["@it:school-a.example.org"])
    assert section.encryption and section.encrypt_work_rooms
