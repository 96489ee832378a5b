"""End-to-end encryption on matrix-nio: the crypto store, key upkeep, whose devices get room keys,
and what happens to a message the bot cannot decrypt.

The policy (README, "End-to-end encryption"; decided in bot/device_trust.py):
- With ``exclude_insecure_devices`` (the default), devices of users on a registered school's server
  (any server when ``allow_guests``) get room keys when their owner's cross-signing identity signed
  them; the identity is pinned on first use, and a change is logged and pinned anew.
- Without it, such devices are trusted on first use (nio refuses a device whose keys change later).
- Devices of users on any other server, or on a blocked one, are blacklisted: no room key ever.
- Ako's own device is signed by Ako's own cross-signing identity (bot/identity.py), so that clients
  which exclude insecure devices send to it and show its messages.
- Room-key requests from other users are not answered (nio only answers the bot's own verified
  devices). Forwarding keys would hand a device history it was not there for, against the
  ``joined`` history visibility of work rooms; a learner's new device asks the bot to repeat.
  One exception, which needs no request: a device that was in the room but refused a room key
  because its owner's signature had not reached Ako yet gets that key once it is signed
  (bot/late_keys.py).
- A message that cannot be decrypted waits a short while for its key (keys and messages travel
  separately over federation). Then it gets no action, is logged at WARNING, and its sender is
  told once per room how to fix it.
"""

from __future__ import annotations

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

from . import identity as identity_mod
from .recovery import Recovery
from .device_trust import UNSIGNED, Trust, UserIdentity, decide, identities_from_query
from .late_keys import LateKeys, Owed
from storage.encryption import EncryptionRecords, Undecrypted
from storage.sync import SyncState

log = logging.getLogger("ako.e2ee")

# How long an undecryptable message waits for its room key before the bot gives up on it.
# AKO_KEY_WAIT (seconds) shortens it for the test suite.
KEY_WAIT = timedelta(seconds=15)
MEGOLM = "m.megolm.v1.aes-sha2"

Enqueue = Callable[[list[Message]], Awaitable[None]]
Handle = Callable[[str, dict], Awaitable[None]]


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
        "so I have not acted on it. Please send it again. If this keeps happening, your app may be set to send only "
        "to devices you have verified yourself: my device is cross-signed by my own identity, but not verified by you. "
        "Allow devices their owner has verified (Element does this by default), or talk to me in an unencrypted room."
    )


class Encryption:
    """Everything the sync loop and the outbox need for encrypted rooms. Harmless when encryption is off."""

    def __init__(
        self,
        client: nio.AsyncClient,
        db: Database,
        *,
        bot_user_id: str,
        allow_guests: bool,
        clock,
        enqueue: Enqueue,
        exclude_insecure: bool = True,
        data_dir: Path | None = None,
        password: str | None = None,
        new_store: bool = False,
    ):
        self.client = client
        self.records = EncryptionRecords(db)
        self.sync_state = SyncState(db)
        self.db = db
        self.bot_user_id = bot_user_id
        self.allow_guests = allow_guests
        self.exclude_insecure = exclude_insecure
        self.data_dir = data_dir
        self.password = password
        self.clock = clock
        self.enqueue = enqueue
        wait = os.environ.get("AKO_KEY_WAIT")
        self.key_wait = timedelta(seconds=float(wait)) if wait else KEY_WAIT
        self.identities: dict[str, UserIdentity] = {}  # users' cross-signing identities, as last queried
        self._unqueried: set[str] = set()  # users whose identity must be asked for before deciding about them
        self.identity_status: identity_mod.Status | None = None
        self.new_store = new_store  # the crypto store was made at this start: it knows no encrypted room
        self._asked: set[str] = set()  # rooms whose encryption was asked of the server
        self._learned = 0  # how many identity answers were learned: a change means decisions to make again
        self._decided_for: tuple | None = None
        self.recovery = Recovery(client, data_dir) if data_dir is not None else None  # key backup (bot/recovery.py)
        self.late_keys = LateKeys(clock.now)

    @property
    def enabled(self) -> bool:
        return self.client.olm is not None

    # --- start-up and upkeep

    async def start(self) -> None:
        if not self.enabled:
            return
        await self._check_own_keys()
        await self._cross_sign_this_device()
        self._remember_first_keys()
        # decisions made before (by another policy, or before a user reset their identity) are made again
        self._unqueried = {d.user_id for d in self.client.device_store}
        waiting = await self.records.waiting()
        log.info(
            "End-to-end encryption on: device %s, identity key %s%s; room keys go to %s",
            self.client.device_id,
            self.client.olm.account.identity_keys["ed25519"],
            f"; {len(waiting)} message(s) still waiting for their keys" if waiting else "",
            "devices cross-signed by their owner" if self.exclude_insecure else "devices trusted on first use",
        )

    def _remember_first_keys(self) -> None:
        """Every room key nio makes is noted with its first key (bot/late_keys.py). nio has no hook for
        this, so its one maker of room keys (also used when it rotates one) is wrapped."""
        olm = self.client.olm
        make = olm.create_outbound_group_session

        def make_and_remember(room_id: str) -> None:
            make(room_id)
            self.late_keys.made(room_id, olm.outbound_group_sessions[room_id])

        olm.create_outbound_group_session = make_and_remember

    async def _cross_sign_this_device(self) -> None:
        """Ako's identity signs this device, so clients that exclude insecure devices talk to it."""
        c = self.client
        if self.data_dir is None:
            return
        try:
            if c.should_upload_keys:  # a new device: its keys must be on the server before they are signed
                _report(await c.keys_upload(), "Uploading this device's keys")
            self.identity_status = await identity_mod.ensure(c, self.data_dir, self.password)
            log.info("Cross-signing: %s", "; ".join(self.identity_status.lines(c.device_id)[:2]))
        except identity_mod.IdentityError as e:
            self.identity_status = identity_mod.Status(None, False, False, str(e))
            log.error("Cross-signing: %s Clients that exclude insecure devices (Element) will not talk to this device.", e)
        except Exception as e:  # network trouble: the next start tries again; until then the device is unsigned
            self.identity_status = identity_mod.Status(None, False, False, f"{type(e).__name__}: {e}")
            log.error("Cross-signing this device failed (%s: %s); it stays unsigned until the next start", type(e).__name__, e)

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
            if self.recovery is not None:  # room keys that arrived or were made since the last sync go to the backup
                await self.recovery.upkeep()
        except Exception as e:  # network trouble: the sync backs off, and the next upkeep tries again
            log.warning("Key upkeep failed (%s: %s); trying again after the next sync", type(e).__name__, e)

    async def apply_trust_policy(self) -> None:
        """Decide about every device nio knows (bot/device_trust.py): room keys for some, none for others.

        Run after every key query and before every send, so a device is never unclassified when
        room keys are shared (the outbox also sends fail-closed, see :meth:`send`).
        """
        if not self.enabled:
            return
        c = self.client
        for raw in getattr(c, "take_key_queries", lambda: [])():  # what nio's own key queries returned
            await self._learn(raw)
        if self.exclude_insecure:
            undecided = {d.user_id for d in c.device_store if not d.deleted and not d.verified and not d.blacklisted}
            ask = self._unqueried | (undecided - set(self.identities))
            if ask:
                await self._query_identities(sorted(ask))
        servers = await self.records.registered_servers()
        blocked = await self.records.blocked_servers()
        devices = [d for d in c.device_store if not d.deleted]
        # the decisions change only with the devices, their owners' identities, or the schools
        inputs = (len(devices), servers, blocked, self._learned)
        if inputs == self._decided_for and not any(not d.verified and not d.blacklisted for d in devices):
            return
        self._decided_for = inputs
        for device in devices:
            decision, why = decide(
                device.user_id,
                device.id,
                device.ed25519,
                registered_servers=servers,
                blocked_servers=blocked,
                allow_guests=self.allow_guests,
                bot_user_id=self.bot_user_id,
                exclude_insecure=self.exclude_insecure,
                identity=self.identities.get(device.user_id),
            )
            if decision is Trust.TRUST and (device.blacklisted or not device.verified):
                c.unblacklist_device(device)
                c.verify_device(device)
                log.info("Room keys go to device %s of %s: %s (ed25519 %s)", device.id, device.user_id, why, device.ed25519)
                await self._give_late_keys(device, self.late_keys.signed(device.user_id, device.id))
            elif decision is Trust.BLOCK:
                if why == UNSIGNED:
                    self.late_keys.refused_unsigned(device.user_id, device.id)
                else:
                    self.late_keys.refused_otherwise(device.user_id, device.id)
                if not device.blacklisted:
                    c.unverify_device(device)
                    c.blacklist_device(device)
                    log.info("Blacklisted device %s of %s: %s; it gets no room keys", device.id, device.user_id, why)

    async def _give_late_keys(self, device, owed: list[Owed]) -> None:
        """Send a newly signed device the room keys it was refused while it looked unsigned."""
        if not owed:
            return
        c, olm = self.client, self.client.olm
        session = olm.session_store.get(device.curve25519)
        if session is None:
            _report(await c.keys_claim({device.user_id: [device.id]}), "Claiming a one-time key")
            session = olm.session_store.get(device.curve25519)
        if session is None:
            log.warning("Device %s of %s is now signed, but no Olm session could be made with it: %d room key(s) not given", device.id, device.user_id, len(owed))
            return
        for o in owed:
            content = {"algorithm": MEGOLM, "room_id": o.room_id, "session_id": o.session_id, "session_key": o.session_key}
            # nio's own encryption of a to-device message (it has no public one for a room key)
            sealed = olm._olm_encrypt(session, device, "m.room_key", content)
            olm.outgoing_to_device_messages.append(nio.ToDeviceMessage("m.room.encrypted", device.user_id, device.id, sealed))
            self.late_keys.given(device.user_id, device.id, o.session_id)
        log.info(
            "Device %s of %s is now signed by its owner: gave it the %d room key(s) it was refused while it looked unsigned (%s)",
            device.id,
            device.user_id,
            len(owed),
            ", ".join(sorted({o.room_id for o in owed})),
        )
        for resp in await c.send_to_device_messages():
            _report(resp, "Sending a room key")

    async def _query_identities(self, users: list[str]) -> None:
        """Ask the server for users' cross-signing keys (nio keeps none of them)."""
        for i in range(0, len(users), 200):
            chunk = users[i : i + 200]
            resp = await self.client.send(
                "POST",
                "/_matrix/client/v3/keys/query",
                json.dumps({"device_keys": {u: [] for u in chunk}}),
                headers={"Authorization": f"Bearer {self.client.access_token}", "Content-Type": "application/json"},
            )
            if resp.status != 200:
                raise RuntimeError(f"querying cross-signing keys failed: {resp.status}")
            await self._learn(await resp.json())
            self._unqueried -= set(chunk)

    async def _learn(self, raw: dict) -> None:
        """Keep each user's checked identity; pin master keys on first use, and log a change."""
        now = self.clock.now()
        self._learned += 1
        for user_id, found in identities_from_query(raw).items():
            self.identities[user_id] = found
            self._unqueried.discard(user_id)
            if found.master is None:
                continue
            pinned = await self.records.pinned_identity(user_id)
            if pinned is None:
                await self.records.pin_identity(user_id, found.master, now)
            elif pinned != found.master:
                log.warning(
                    "The cross-signing identity of %s changed (master key %s, was %s): pinning the new one. Their devices "
                    "signed by it get room keys; if they did not reset it themselves, someone else may control the account.",
                    user_id,
                    found.master,
                    pinned,
                )
                await self.records.pin_identity(user_id, found.master, now)

    # --- sending

    async def send(self, room_id: str, event_type: str, content: dict, txn_id: str):
        """room_send, encrypted when the room is. Fail-closed: nio raises on a device the policy has not
        classified yet instead of sharing the room key with it; we classify and try again."""
        if not self.enabled:
            return await self.client.room_send(room_id, event_type, content, tx_id=txn_id)
        await self._know_room(room_id)
        if room_id not in self.client.encrypted_rooms:  # no room key is shared: no device to decide about
            return await self.client.room_send(room_id, event_type, content, tx_id=txn_id, ignore_unverified_devices=True)
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
        right after a restart): tell it about the room, and whether it is encrypted, from the server.

        nio remembers which rooms are encrypted in the crypto store. A new store (the old one lost,
        or a rebuild) knows none, and a sync resumed from Ako's own token brings no room state: so
        with a new store every room is asked about once before Ako sends into it."""
        c = self.client
        unsure = room_id not in c.rooms or (self.new_store and room_id not in self._asked)
        if room_id not in c.encrypted_rooms and unsure:
            if await self._encrypted_on_server(room_id):
                c.encrypted_rooms.add(room_id)
            self._asked.add(room_id)
        encrypted = room_id in c.encrypted_rooms
        if room_id in c.rooms:
            c.rooms[room_id].encrypted = c.rooms[room_id].encrypted or encrypted
        else:
            c.rooms[room_id] = nio.MatrixRoom(room_id, c.user_id, encrypted)
            log.debug("Learned of %s before its first sync (encrypted: %s)", room_id, encrypted)

    async def _encrypted_on_server(self, room_id: str) -> bool:
        resp = await self.client.room_get_state_event(room_id, "m.room.encryption")
        if isinstance(resp, nio.RoomGetStateEventError):
            if resp.status_code not in ("M_NOT_FOUND", "M_FORBIDDEN"):
                # Unknown is not "unencrypted": never risk a plaintext message in an encrypted room.
                raise RuntimeError(f"cannot tell whether {room_id} is encrypted: {resp.status_code} {resp.message}")
            return False
        return True

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
