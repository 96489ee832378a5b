"""The Element-mode test client itself, without Ako, against real federated homeservers.

Two users whose clients behave as Element does today (matrix-js-sdk Rust crypto, cross-signed at
login, OnlySignedDevicesIsolationMode) read each other in an encrypted DM with no warning. A
matrix-nio device, which has no cross-signing (as Ako's device had none), is shut out both ways:
its messages fail to decrypt with UNSIGNED_SENDER_DEVICE and it gets no room key. That is the
problem issue 13 fixes, shown with the client that proves the fix.
"""

from __future__ import annotations

import asyncio

from tests.element_user import ElementUser, element_client  # noqa: F401  (fixture)
from tests.matrix_user import MatrixUser, unique_localpart

ENCRYPTION = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}


async def test_two_element_users_read_each_other_in_an_encrypted_dm(element_client, hs_a, hs_b, opened, tmp_path):
    alice, bob = await asyncio.gather(
        ElementUser.create(hs_a, unique_localpart("alice"), log_dir=tmp_path),
        ElementUser.create(hs_b, unique_localpart("bob"), log_dir=tmp_path),
    )
    await opened(alice)
    await opened(bob)
    assert alice.master_key and bob.master_key, "each client set up its own identity at login"
    assert alice.login_info["device_signed_by_owner"] and bob.login_info["device_signed_by_owner"]

    room = await alice.dm(bob.user_id, wait_join=False)
    invite = await bob.wait_invite(sender=alice.user_id)
    assert invite["room_id"] == room and invite["is_direct"]
    await bob.join(room)
    await alice.wait_member(room, bob.user_id)
    assert await alice.is_encrypted(room) and await bob.is_encrypted(room)

    sent = await alice.send(room, "Kia ora Bob, this is encrypted.")
    seen = await bob.wait_event(room, sender=alice.user_id, body_contains="Kia ora Bob", since=0)
    assert seen["event_id"] == sent
    assert seen["wire_type"] == "m.room.encrypted" and seen["encrypted"]
    assert seen["decryption_failure"] is None
    assert seen["shield"] == {"colour": "NONE", "reason": None}

    mark = await alice.mark(room)
    answer = await bob.send(room, "Kia ora Alice.", reply_to=sent)
    back = await alice.wait_event(room, since=mark, sender=bob.user_id, in_reply_to=sent)
    assert back["event_id"] == answer and back["content"]["body"] == "Kia ora Alice."
    assert back["decryption_failure"] is None and back["shield"] == {"colour": "NONE", "reason": None}

    # each sees the other's device as cross-signed by its owner (not verified by a person)
    status = await alice.device_status(bob.user_id, bob.device_id)
    assert status["signed_by_owner"] is True and status["cross_signing_verified"] is False
    assert (await bob.device_status(alice.user_id, alice.device_id))["signed_by_owner"] is True

    # a file, encrypted as Element encrypts attachments, in a thread
    mark = await bob.mark(room)
    sent_file = await alice.send_file(room, b"titres: 24.10 24.05", "titres.txt", "text/plain", thread_root=sent)
    assert sent_file["encrypted_file"] is True
    got = await bob.wait_event(room, since=mark, event_id=sent_file["event_id"])
    assert got["decryption_failure"] is None and got["content"]["msgtype"] == "m.file"
    assert got["content"]["file"]["url"] == sent_file["mxc"] and "url" not in got["content"]
    assert got["content"]["m.relates_to"]["rel_type"] == "m.thread"


async def nio_and_element_in_an_encrypted_room(hs_a, hs_b, opened, tmp_path, *, isolation: str, cross_signed: bool):
    """A matrix-nio user on A (its device cross-signed by its owner or not) and an Element-mode
    user on B, both joined to an encrypted room the nio user made."""
    nio = await opened(await MatrixUser.create(
        hs_a, unique_localpart("niouser"), encrypted=True, store_dir=tmp_path / "nio", cross_signed=cross_signed
    ))
    element = await opened(
        await ElementUser.create(hs_b, unique_localpart("elena"), isolation=isolation, log_dir=tmp_path)
    )
    resp = await nio.client.room_create(name="nio and Element", invite=[element.user_id], initial_state=[ENCRYPTION])
    room = resp.room_id
    await element.wait_invite(room_id=room)
    await element.join(room)
    await nio.wait_for(
        room,
        lambda e: e["type"] == "m.room.member" and e["state_key"] == element.user_id and e["content"]["membership"] == "join",
        since=0,
        timeout=30,
    )
    return nio, element, room


async def test_a_device_without_cross_signing_is_shut_out_in_element_mode(element_client, hs_a, hs_b, opened, tmp_path):
    """What Ako's device met before it was cross-signed."""
    nio, element, room = await nio_and_element_in_an_encrypted_room(
        hs_a, hs_b, opened, tmp_path, isolation="only_signed", cross_signed=False
    )
    status = await element.device_status(nio.user_id, nio.client.device_id)
    assert status is not None and status["signed_by_owner"] is False

    # Its messages reach the Element client's device with their key, and are refused.
    sent = await nio.send(room, "Can you read me?")
    seen = await element.wait_event(room, event_id=sent, since=0)
    assert seen["decryption_failure"] == "UNSIGNED_SENDER_DEVICE", seen
    assert seen["wire_type"] == "m.room.encrypted" and "Can you read me?" not in str(seen["content"])

    # And the Element client shares no room key with it.
    mark = nio.mark(room)
    answer = await element.send(room, "Only for cross-signed devices.")
    got = await nio.wait_for(room, lambda e: e["event_id"] == answer, since=mark, timeout=30)
    await asyncio.sleep(2)  # no key arrives later either
    got = next(e for e in nio.timeline(room) if e["event_id"] == answer)
    assert got["type"] == "m.room.encrypted", "the nio device could read a message in Element's mode"
    content = got["content"]
    assert nio.client.olm.inbound_group_store.get(room, content["sender_key"], content["session_id"]) is None


async def test_in_the_older_all_devices_mode_the_same_message_shows_a_red_shield(element_client, hs_a, hs_b, opened, tmp_path):
    nio, element, room = await nio_and_element_in_an_encrypted_room(
        hs_a, hs_b, opened, tmp_path, isolation="all_devices", cross_signed=False
    )
    sent = await nio.send(room, "Readable, but from an unsigned device.")
    seen = await element.wait_event(room, event_id=sent, since=0)
    assert seen["decryption_failure"] is None
    assert seen["content"]["body"] == "Readable, but from an unsigned device."
    assert seen["shield"] == {"colour": "RED", "reason": "UNSIGNED_DEVICE"}


async def test_a_nio_device_cross_signed_by_its_owner_is_read_without_a_shield(element_client, hs_a, hs_b, opened, tmp_path):
    """The same nio client once its device is signed by its owner's identity (bot/identity.py, as
    Ako now does for its own device): Element's mode reads it, with no warning."""
    nio, element, room = await nio_and_element_in_an_encrypted_room(
        hs_a, hs_b, opened, tmp_path, isolation="only_signed", cross_signed=True
    )
    assert (await element.device_status(nio.user_id, nio.client.device_id))["signed_by_owner"] is True
    sent = await nio.send(room, "Signed by my own identity.")
    seen = await element.wait_event(room, event_id=sent, since=0)
    assert seen["decryption_failure"] is None and seen["content"]["body"] == "Signed by my own identity."
    assert seen["shield"] == {"colour": "NONE", "reason": None}
