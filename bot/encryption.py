"""End-to-end encryption on matrix-nio: the crypto store, key upkeep, whose devices get room keys,
and what happens to a message the bot cannot decrypt.

The policy (README, "End-to-end encryption"):
- Devices of users on a registered school's server (any server when ``allow_guests``) and the bot's
  own other devices are trusted on first use: the keys first seen for a device id are kept, and a
  later change of them is refused by nio.
- Devices of users on any other server are blacklisted: no room key is ever shared with them.
- Room-key requests from other users are not answered (nio only answers the bot's own verified
  devices). Forwarding keys would hand a device history it was not there for, against the
  ``joined`` history visibility of work rooms; a learner's new device asks the bot to repeat.
- A message that cannot be decrypted waits a short while for its key (keys and messages travel
  separately over federation). Then it gets no action, is logged at WARNING, and its sender is
  told once per room how to fix it.
"""

from __future__ import annotations

import enum
import json
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Awaitable, Callable

import nio
from nio.exceptions import EncryptionError, LocalProtocolError, OlmUnverifiedDeviceError

from commands.context import Message
from storage.db import Database
from storage.encryption import EncryptionRecords, Undecrypted
from storage.models import server_of
from storage.sync import SyncState

log = logging.getLogger("ako.e2ee")

# How long an undecryptable message waits for its room key before the bot gives up on it.
# AKO_KEY_WAIT (seconds) shortens it for the test suite.
KEY_WAIT = timedelta(seconds=15)
MEGOLM = "m.megolm.v1.aes-sha2"

Enqueue = Callable[[list[Message]], Awaitable[None]]
Handle = Callable[[str, dict], Awaitable[None]]


class Trust(enum.Enum):
    TRUST = "trusted on first use"
    BLOCK = "blacklisted"


def trust_for(user_id: str, *, bot_user_id: str, registered_servers: frozenset[str] | set[str], allow_guests: bool) -> Trust:
    """Whether a device of ``user_id`` may receive the bot's room keys."""
    if user_id == bot_user_id or allow_guests or server_of(user_id) in registered_servers:
        return Trust.TRUST
    return Trust.BLOCK


def store_dir(data_dir: Path) -> Path:
    return data_dir / "crypto"


def store_file(data_dir: Path, user_id: str, device_id: str) -> Path:
    """nio's crypto database for one device (its own naming)."""
    return store_dir(data_dir) / f"{user_id}_{device_id}.db"


def client_config(enabled: bool, **settings) -> nio.AsyncClientConfig:
    """The client's config: with encryption, nio's SQLite crypto store; the sync token stays ours."""
    if not enabled:
        return nio.AsyncClientConfig(**settings, encryption_enabled=False)
    return nio.AsyncClientConfig(**settings, encryption_enabled=True, store=nio.store.SqliteStore, store_sync_tokens=False)


def cannot_read_text(device_id: str | None, enabled: bool) -> str:
    if not enabled:
        return (
            "I could not read your message: it is end-to-end encrypted, and encryption is turned off for me "
            "(`bot.encryption = false`). Please write to me in an unencrypted room, or ask your school's IT admin."
        )
    return (
        f"I could not read your message: your app did not share its key with my device (`{device_id}`), "
        "so I have not acted on it. Please send it again. If this keeps happening, your app is probably set to "
        "send only to verified devices, and my device cannot be verified with cross-signing: allow unverified "
        "devices for this room, or remove me and invite me again, or talk to me in an unencrypted room."
    )


class Encryption:
    """Everything the sync loop and the outbox need for encrypted rooms. Harmless when encryption is off."""

    def __init__(self, client: nio.AsyncClient, db: Database, *, bot_user_id: str, allow_guests: bool, clock, enqueue: Enqueue):
        self.client = client
        self.records = EncryptionRecords(db)
        self.sync_state = SyncState(db)
        self.db = db
        self.bot_user_id = bot_user_id
        self.allow_guests = allow_guests
        self.clock = clock
        self.enqueue = enqueue
        wait = os.environ.get("AKO_KEY_WAIT")
        self.key_wait = timedelta(seconds=float(wait)) if wait else KEY_WAIT

    @property
    def enabled(self) -> bool:
        return self.client.olm is not None

    # --- start-up and upkeep

    async def start(self) -> None:
        if not self.enabled:
            return
        await self._check_own_keys()
        waiting = await self.records.waiting()
        log.info(
            "End-to-end encryption on: device %s, identity key %s%s",
            self.client.device_id,
            self.client.olm.account.identity_keys["ed25519"],
            f"; {len(waiting)} message(s) still waiting for their keys" if waiting else "",
        )

    async def _check_own_keys(self) -> None:
        """The server must hold this device's keys as the crypto store has them."""
        c = self.client
        try:
            resp = await c.send(
                "POST",
                "/_matrix/client/v3/keys/query",
                json.dumps({"device_keys": {c.user_id: [c.device_id]}}),
                headers={"Authorization": f"Bearer {c.access_token}", "Content-Type": "application/json"},
            )
            published = (await resp.json()).get("device_keys", {}).get(c.user_id, {}).get(c.device_id)
        except Exception as e:  # the first upkeep uploads what is missing anyway
            log.warning("Could not check this device's published keys (%s: %s)", type(e).__name__, e)
            return
        ours = c.olm.account.identity_keys["ed25519"]
        if not published:
            if c.olm.account.shared:
                log.warning("The server has no keys for device %s; uploading them again", c.device_id)
                c.olm.account.shared = False
            return
        if published.get("keys", {}).get(f"ed25519:{c.device_id}") != ours:
            log.error(
                "Device %s has other keys on the server than in the crypto store %s: others will not be able to "
                "send to this bot. Stop Ako, delete session.json in the data folder to start a new device, and start it.",
                c.device_id,
                c.store_path,
            )

    async def upkeep(self) -> None:
        """Before each sync: upload, query and claim keys, apply the trust policy, send to-device messages."""
        c = self.client
        if not self.enabled:
            return
        try:
            if c.should_upload_keys:
                _report(await c.keys_upload(), "Uploading this device's keys")
            if c.should_query_keys:
                _report(await c.keys_query(), "Querying device keys")
            if c.should_claim_keys:
                _report(await c.keys_claim(c.get_users_for_key_claiming()), "Claiming one-time keys")
            await self.apply_trust_policy()
            if c.outgoing_to_device_messages:
                for resp in await c.send_to_device_messages():
                    _report(resp, "Sending a to-device message")
        except Exception as e:  # network trouble: the sync backs off, and the next upkeep tries again
            log.warning("Key upkeep failed (%s: %s); trying again after the next sync", type(e).__name__, e)

    async def apply_trust_policy(self) -> None:
        """Trust on first use for registered schools' users, blacklist everyone else's devices.

        Run after every key query and before every send, so a device is never unclassified when
        room keys are shared (the outbox also sends fail-closed, see :meth:`send`).
        """
        if not self.enabled:
            return
        servers = await self.records.registered_servers()
        for device in list(self.client.device_store):
            if device.deleted:
                continue
            decision = trust_for(device.user_id, bot_user_id=self.bot_user_id, registered_servers=servers, allow_guests=self.allow_guests)
            if decision is Trust.TRUST and not device.verified:
                self.client.verify_device(device)
                log.info("Trusting device %s of %s on first use (ed25519 %s)", device.id, device.user_id, device.ed25519)
            elif decision is Trust.BLOCK and not device.blacklisted:
                self.client.blacklist_device(device)
                log.info("Blacklisted device %s of %s: %s is no registered school's server, it gets no room keys", device.id, device.user_id, server_of(device.user_id))

    # --- sending

    async def send(self, room_id: str, event_type: str, content: dict, txn_id: str):
        """room_send, encrypted when the room is. Fail-closed: nio raises on a device the policy has not
        classified yet instead of sharing the room key with it; we classify and try again."""
        if not self.enabled:
            return await self.client.room_send(room_id, event_type, content, tx_id=txn_id)
        await self._know_room(room_id)
        await self.apply_trust_policy()
        for _ in range(3):
            try:
                return await self.client.room_send(room_id, event_type, content, tx_id=txn_id, ignore_unverified_devices=False)
            except OlmUnverifiedDeviceError as e:
                log.info("Device %s of %s appeared while sending to %s; applying the trust policy", e.device.id, e.device.user_id, room_id)
                await self.apply_trust_policy()
        return await self.client.room_send(room_id, event_type, content, tx_id=txn_id, ignore_unverified_devices=False)

    async def _know_room(self, room_id: str) -> None:
        """nio refuses to send to a room it has not synced yet (a room the bot just made, or any room
        right after a restart): tell it about the room, and whether it is encrypted, from the server."""
        c = self.client
        if room_id in c.rooms:
            return
        encrypted = room_id in c.encrypted_rooms
        if not encrypted:
            resp = await c.room_get_state_event(room_id, "m.room.encryption")
            if isinstance(resp, nio.RoomGetStateEventError):
                if resp.status_code not in ("M_NOT_FOUND", "M_FORBIDDEN"):
                    # Unknown is not "unencrypted": never risk a plaintext message in an encrypted room.
                    raise RuntimeError(f"cannot tell whether {room_id} is encrypted: {resp.status_code} {resp.message}")
            else:
                encrypted = True
        if room_id in c.rooms:  # a sync brought it in meanwhile
            return
        c.rooms[room_id] = nio.MatrixRoom(room_id, c.user_id, encrypted)
        if encrypted:
            c.encrypted_rooms.add(room_id)
        log.debug("Learned of %s before its first sync (encrypted: %s)", room_id, encrypted)

    # --- messages the bot could not decrypt

    async def cannot_decrypt(self, room_id: str, source: dict) -> None:
        """An encrypted timeline event nio could not decrypt: wait for its key, or give up at once."""
        sender, event_id = source.get("sender"), source.get("event_id")
        if not sender or not event_id or sender == self.bot_user_id:
            return
        if await self.sync_state.is_processed(event_id):
            return
        event = _megolm(room_id, source)
        session_id = event.session_id if event else "?"
        item = Undecrypted(event_id, room_id, sender, session_id, source, self.clock.now())
        if event is None or not self.enabled:
            reason = "encryption is off" if not self.enabled else f"not a {MEGOLM} event nio can read"
            await self._give_up(item, reason)
            return
        if not await self.records.wait_for_key(item):
            return
        log.info("Waiting for the room key of %s from %s in %s (session %s)", event_id, sender, room_id, session_id)
        try:
            await self.client.request_room_key(event)  # to the bot's own other devices, if any hold it
        except (LocalProtocolError, OSError, TimeoutError):
            pass

    async def retry_waiting(self, handle: Handle) -> None:
        """After each sync: decrypt the waiting messages whose keys have arrived, give up on the old ones."""
        waiting = await self.records.waiting()
        if not waiting:
            return
        now = self.clock.now()
        for item in waiting:
            try:
                await self._retry(item, now, handle)
            except Exception:
                log.exception("Retrying %s in %s failed", item.event_id, item.room_id)

    async def _retry(self, item: Undecrypted, now, handle: Handle) -> None:
        """Act on the message if its key has come; give up on it once it has waited long enough."""
        event = _megolm(item.room_id, item.source)
        decrypted = None
        if event is not None and self.enabled and self._have_key(event):
            try:
                decrypted = self.client.decrypt_event(event)
            except EncryptionError:
                decrypted = None
        if decrypted is not None and not isinstance(decrypted, (nio.BadEvent, nio.UnknownBadEvent)):
            log.info("Decrypted %s from %s in %s once its key arrived", item.event_id, item.sender, item.room_id)
            await handle(item.room_id, decrypted.source)
            await self.records.done_waiting(item.event_id)
        elif now - item.received_at >= self.key_wait:
            why = "no room key arrived" if decrypted is None else "its content is malformed"
            await self._give_up(item, f"{why} within {self.key_wait.total_seconds():.0f} s")

    def _have_key(self, event: nio.MegolmEvent) -> bool:
        """Whether the room key has arrived (asking nio to decrypt without it logs a warning each time)."""
        store = getattr(self.client.olm, "inbound_group_store", None)
        return store is None or store.get(event.room_id, event.sender_key, event.session_id) is not None

    async def seconds_to_next_give_up(self) -> float | None:
        oldest = await self.records.waiting()
        if not oldest:
            return None
        due = oldest[0].received_at + self.key_wait
        return max(0.0, (due - self.clock.now()).total_seconds())

    async def _give_up(self, item: Undecrypted, reason: str) -> None:
        """No action on the message (a key arriving later changes nothing); the sender is told once per room."""
        now = self.clock.now()
        async with self.db.transaction():
            await self.records.done_waiting(item.event_id)
            await self.sync_state.mark_processed(item.event_id, item.room_id, now)
            told = await self.records.record_notice(item.room_id, item.sender, item.event_id, now)
            if told:
                text = cannot_read_text(self.client.device_id, self.enabled)
                relates = (item.source.get("content") or {}).get("m.relates_to") or {}  # relations stay in clear text
                thread = relates.get("event_id") if relates.get("rel_type") == "m.thread" else None
                await self.enqueue([Message(item.room_id, text, mentions=(item.sender,), reply_to=item.event_id, thread_root=thread)])
        log.warning(
            "Could not decrypt %s from %s in %s (session %s): %s; no action taken%s",
            item.event_id,
            item.sender,
            item.room_id,
            item.session_id,
            reason,
            ", told the sender how to fix it" if told else " (the sender was told before)",
        )


def _megolm(room_id: str, source: dict) -> nio.MegolmEvent | None:
    try:
        event = nio.MegolmEvent.from_dict(source)
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(event, nio.MegolmEvent) or event.algorithm != MEGOLM:
        return None
    event.room_id = room_id
    return event


def _report(resp, what: str) -> None:
    if isinstance(resp, nio.ErrorResponse):
        log.warning("%s failed: %s %s", what, resp.status_code, resp.message)
